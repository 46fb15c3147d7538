"""Two template engines: Jinja2 for the pages readers see, Django templates for the admin and emails."""

import re
from pathlib import Path

import pytest
from csp.middleware import CSPMiddleware
from django.contrib import messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.template.backends import django as django_backend
from django.template.backends import jinja2 as jinja2_backend
from django.template.loader import get_template
from django.test import Client

from articles import views
from newsletter.models import Subscriber
from newsletter.tokens import make_token
from tests.support.factories import SubscriberFactory

PUBLIC_PAGES = [
    "404.html",
    "500.html",
    "articles/home.html",
    "articles/article_detail.html",
    "articles/topic.html",
    "articles/author.html",
    "articles/search.html",
    "articles/write.html",
    "articles/write_thanks.html",
    "newsletter/subscribe.html",
    "newsletter/confirm.html",
    "newsletter/unsubscribe.html",
    "newsletter/preferences.html",
    "newsletter/preferences_request.html",
]


def templates_of(engine_name: str, project_only: bool = False) -> set[str]:
    """Every template name the engine can load, from the files in its folders."""
    names = set()
    for directory in engines[engine_name].template_dirs:
        if project_only and "site-packages" in Path(directory).parts:
            continue
        names |= {path.relative_to(directory).as_posix() for path in Path(directory).rglob("*") if path.is_file()}
    return names


def test_no_template_name_exists_in_both_engines():
    # Otherwise the engine listed first in TEMPLATES would silently win.
    assert templates_of("jinja2") & templates_of("django") == set()


def test_the_public_pages_are_jinja2_templates():
    jinja2_templates = templates_of("jinja2")
    assert set(PUBLIC_PAGES) <= jinja2_templates
    for name in jinja2_templates:  # loading each also proves it compiles
        assert isinstance(get_template(name), jinja2_backend.Template), name


def test_the_admin_and_email_templates_are_still_django_templates():
    project_templates = templates_of("django", project_only=True)
    assert {"admin/two_factor/verify.html", "newsletter/campaign_email.html", "newsletter/emails/confirm.txt"} <= (
        project_templates
    )
    for name in project_templates | {"admin/base_site.html", "admin/change_form.html"}:
        assert isinstance(get_template(name), django_backend.Template), name


def test_public_templates_always_escape_what_they_show():
    rendered = engines["jinja2"].from_string("<p>{{ title }}</p>").render({"title": '<script>alert("x")</script>'})
    assert rendered == "<p>&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</p>"


def test_flash_messages_reach_a_public_page(rf, db):
    request = rf.get("/write/thanks/")
    request.session = {}
    request._messages = FallbackStorage(request)
    messages.success(request, "Your piece is saved & queued.")
    html = views.write_thanks(request).content.decode()
    assert '<p class="message message--success">Your piece is saved &amp; queued.</p>' in html


def test_public_templates_get_the_nonce_the_csp_header_allows(rf):
    request = rf.get("/")
    template = engines["jinja2"].from_string('<script nonce="{{ CSP_NONCE }}"></script>')

    def page(request: HttpRequest) -> HttpResponse:
        return HttpResponse(template.render(request=request))

    response = CSPMiddleware(page)(request)
    assert isinstance(response, HttpResponse)
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    assert nonce is not None
    assert response.content.decode() == f'<script nonce="{nonce.group(1)}"></script>'


def test_a_reader_confirms_with_the_csrf_token_the_page_carries(db):
    reader = SubscriberFactory.create(status=Subscriber.Status.PENDING, confirmed_at=None)
    url = f"/newsletter/confirm/{make_token(reader.pk, 'confirm')}/"
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(url).content.decode()
    token = re.search(r'<input type="hidden" name="csrfmiddlewaretoken" value="([^"]+)">', page)
    assert token is not None
    assert browser.post(url, {"csrfmiddlewaretoken": token.group(1)}).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_static_urls_follow_the_storage_and_debug(settings):
    static = engines["jinja2"].env.globals["static"]  # type: ignore[attr-defined]
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }
    settings.STATIC_URL = "/first/"
    assert static("articles/site.css") == "/first/articles/site.css"
    settings.STATIC_URL = "/second/"  # a new storage: the URL remembered for the first is not served
    assert static("articles/site.css") == "/second/articles/site.css"
    # The manifest storage serves names unhashed only with DEBUG on; without it, the tests
    # have no manifest, and the lookup must run (and fail) rather than answer from memory.
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}
    }
    settings.DEBUG = True
    for _ in range(2):  # the first use sets the storage up, the second is remembered
        assert static("articles/site.css") == "/second/articles/site.css"
    settings.DEBUG = False
    with pytest.raises(ValueError, match="manifest"):
        static("articles/site.css")
