"""Line breaks and other control characters are refused in every one-line field, at every door:
the public forms, the API, the admin and the CSV import. Nothing is saved; the answer names the field."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError
from django.test import Client

from articles.models import Article, Author, SiteSettings, Topic
from euro_prospects import ratelimit
from euro_prospects.text import spreadsheet_cell, validate_single_line
from newsletter.models import Subscriber
from tests.support.factories import ArticleFactory, AuthorFactory, CampaignFactory, SubscriberFactory, TopicFactory

HEADER_INJECTION = "Grid news\r\nReply-To: x@evil.example\r\n\r\nFake body"


@pytest.mark.parametrize(
    "value", [HEADER_INJECTION, "a\nb", "a\rb", "nul\x00byte", "bell\x07", "del\x7f", "nel\x85", "ls\u2028", "ps\u2029"]
)
def test_the_validator_refuses_every_control_character(value):
    with pytest.raises(ValidationError) as caught:
        validate_single_line(value)
    assert "single line" in caught.value.messages[0]


@pytest.mark.parametrize("value", ["Grid news", "Énergie \u2013 l\u2019hiver", "Kraków\u00a0Łódź", ""])
def test_the_validator_lets_ordinary_text_through(value):
    validate_single_line(value)


# --- the public /write/ form ---------------------------------------------------------


@pytest.fixture
def write_post(db):
    ratelimit.reset("write:127.0.0.1")
    topic = TopicFactory.create(name="Energy", slug="energy")
    yield {
        "name": "Petra Novakova",
        "email": "petra@example.org",
        "bio": "Petra studies energy markets.\n\nShe lives in Brno.",
        "title": "Why the interconnector matters",
        "standfirst": "A cable under the sea could change prices on both shores.",
        "body": "First paragraph.\n\nSecond paragraph.",
        "topics": [topic.pk],
        "consent": "on",
        "website": "",
    }
    ratelimit.reset("write:127.0.0.1")


@pytest.mark.parametrize("field", ["title", "name", "standfirst"])
def test_the_write_form_refuses_a_line_break_in_a_one_line_field(client, write_post, field):
    response = client.post("/write/", {**write_post, field: HEADER_INJECTION})
    assert response.status_code == 400
    page = response.content.decode()
    message = "Enter a single line of text, without line breaks or control characters (found U+000D)."
    # The message stands under the field it is about.
    assert re.search(rf'id="id_{field}".*?<p class="field-error" role="alert">{re.escape(message)}</p>', page, re.S)
    assert page.count('class="field-error"') == 1
    assert not Article.objects.exists()
    assert not Author.objects.exists()


def test_the_write_form_still_takes_paragraphs_in_the_body_and_bio(client, write_post):
    response = client.post("/write/", write_post)
    assert response.status_code == 302
    assert Article.objects.get().title == "Why the interconnector matters"


# --- the API -------------------------------------------------------------------------


@pytest.fixture
def as_eva(eva: Any) -> Any:
    from tests.support.people import client_with_token

    return client_with_token(eva)


@pytest.mark.parametrize(
    "field", ["title", "slug", "standfirst", "hero_image_alt", "hero_image_credit", "meta_title", "meta_description"]
)
def test_the_api_refuses_a_control_character_in_a_one_line_field_of_a_new_article(as_eva, field):
    response = as_eva.post(
        "/api/v1/articles/", {"title": "Grid news", field: "Grid\r\nReply-To: x@evil.example"}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not Article.objects.exists()


def test_the_api_refuses_the_header_injection_title_when_changing_an_article(as_eva):
    article = ArticleFactory.create(title="Grid news", status=Article.Status.DRAFT, published_at=None)
    response = as_eva.patch(f"/api/v1/articles/{article.pk}/", {"title": HEADER_INJECTION}, format="json")
    assert response.status_code == 400
    assert "single line" in response.json()["errors"]["title"][0]
    article.refresh_from_db()
    assert article.title == "Grid news"


def test_the_api_refuses_a_control_character_in_a_subscriber_name(db):
    response = Client().post(
        "/api/v1/subscribers/",
        {"email": "reader@example.org", "name": "Reader\r\nBcc: x@evil.example"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    assert not Subscriber.objects.exists()


def test_the_sign_up_form_refuses_a_control_character_in_the_name(client, db):
    response = client.post("/newsletter/subscribe/", {"email": "reader@example.org", "name": "Reader\nBcc: x"})
    assert response.status_code == 400
    assert not Subscriber.objects.exists()


# --- the admin ------------------------------------------------------------------------


def post_admin_form(client: Client, url: str, **changes: Any) -> Any:
    """POST the admin form at ``url`` as it is shown, with ``changes``."""
    form = client.get(url).context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field, forms.FileField):
            continue  # no new upload
        if value is True:
            data[name] = "on"
        elif value not in (None, False):
            data[name] = value
    data.update(changes)
    return client.post(url, data)


@pytest.mark.parametrize(
    ("make", "url", "field"),
    [
        (TopicFactory.create, "/admin/articles/topic/{pk}/change/", "name"),
        (AuthorFactory.create, "/admin/articles/author/{pk}/change/", "name"),
        (AuthorFactory.create, "/admin/articles/author/{pk}/change/", "role"),
        (SiteSettings.load, "/admin/articles/sitesettings/{pk}/change/", "site_name"),
        (SiteSettings.load, "/admin/articles/sitesettings/{pk}/change/", "newsletter_sender_name"),
        (SubscriberFactory.create, "/admin/newsletter/subscriber/{pk}/change/", "name"),
        (CampaignFactory.create, "/admin/newsletter/campaign/{pk}/change/", "subject"),
    ],
)
def test_the_admin_refuses_a_control_character_in_a_one_line_field(admin_client, make, url, field):
    obj = make()
    before = getattr(obj, field)
    response = post_admin_form(admin_client, url.format(pk=obj.pk), **{field: HEADER_INJECTION})
    assert response.status_code == 200  # the form again, with the error
    assert response.context["adminform"].form.errors[field] == [
        "Enter a single line of text, without line breaks or control characters (found U+000D)."
    ]
    obj.refresh_from_db()
    assert getattr(obj, field) == before


def test_the_admin_saves_the_same_forms_without_control_characters(admin_client):
    topic = TopicFactory.create(name="Energy")
    response = post_admin_form(admin_client, f"/admin/articles/topic/{topic.pk}/change/", name="Energy and grids")
    assert response.status_code == 302
    assert Topic.objects.get().name == "Energy and grids"


@pytest.mark.parametrize("field", ["title", "standfirst", "hero_image_credit"])
def test_the_article_admin_refuses_a_control_character(admin_client, field):
    from tests.articles.test_admin import ADD_URL, form_data

    response = admin_client.post(ADD_URL, form_data(**{field: HEADER_INJECTION}))
    assert response.status_code == 200
    assert "single line" in response.context["adminform"].form.errors[field][0]
    assert not Article.objects.exists()


# --- CSV cells for spreadsheets ------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil.example","Click")', '\'=HYPERLINK("http://evil.example","Click")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Ada Reader", "Ada Reader"),
        ("", ""),
        (True, True),
    ],
)
def test_a_cell_a_spreadsheet_would_run_gets_a_quote(value, cell):
    assert spreadsheet_cell(value) == cell
