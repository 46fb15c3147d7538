"""Shared preview links: a draft's page for someone without an account, for a while, until revoked."""

import re
from datetime import timedelta

import pytest
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from articles import previews
from articles.models import PreviewLink, PreviewLinkOpen
from tests.support.people import author_of

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def change_url(article):
    return f"/admin/articles/article/{article.pk}/change/"


def make_link(client, user, article, label="Legal review"):
    """As an editor would: the button on the article's page; the link is in the success message."""
    client.force_login(user)
    response = client.post(f"/admin/articles/article/{article.pk}/preview-links/new/", {"_preview_label": label})
    assert response.status_code == 302
    page = client.get(change_url(article)).content.decode()
    found = re.search(r"<code>https?://[^/]+(/preview/[^<]+/)</code>", page)
    assert found, "the new link is shown once on the article's page"
    client.logout()
    return found.group(1)


def test_a_reader_without_an_account_sees_the_draft_marked_and_hidden_from_search(client, eva, coras_draft):
    path = make_link(client, eva, coras_draft)
    response = client.get(path, HTTP_USER_AGENT=FIREFOX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Grid talks stall again" in page
    assert 'data-anatomy="draft-mark"' in page
    assert "Draft preview" in page
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_page_cache_never_keeps_a_preview(client, eva, coras_draft):
    path = make_link(client, eva, coras_draft)
    assert client.get(path).status_code == 200
    PreviewLink.objects.update(revoked_at=PreviewLink.objects.get().created_at)
    assert client.get(path).status_code == 410  # not an old copy from a cache


def test_each_opening_is_recorded_with_a_coarse_browser_and_no_address(client, eva, coras_draft):
    path = make_link(client, eva, coras_draft)
    client.get(path, HTTP_USER_AGENT=FIREFOX, REMOTE_ADDR="203.0.113.9")
    client.get(path, HTTP_USER_AGENT="Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)")
    link = PreviewLink.objects.get()
    assert link.opens == 2
    assert sorted(PreviewLinkOpen.objects.values_list("browser", flat=True)) == [
        "Firefox on Windows",
        "Link preview or robot",
    ]
    stored = " ".join(str(value) for row in PreviewLinkOpen.objects.values() for value in row.values())
    assert "203.0.113.9" not in stored
    assert "128.0" not in stored
    client.force_login(eva)
    admin_page = client.get(change_url(coras_draft)).content.decode()
    assert "Legal review" in admin_page
    assert "2 times" in admin_page
    assert "Firefox on Windows" in admin_page


def test_an_expired_link_answers_410_with_a_clear_page(client, eva, coras_draft, time_machine, settings):
    path = make_link(client, eva, coras_draft)
    time_machine.move_to(timezone.now() + timedelta(days=settings.PREVIEW_LINK_DAYS, minutes=1))
    response = client.get(path)
    assert response.status_code == 410
    assert "This preview link has expired." in response.content.decode()
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert PreviewLink.objects.get().opens == 0


def test_the_lifetime_is_a_setting(client, eva, coras_draft, settings):
    settings.PREVIEW_LINK_DAYS = 2
    make_link(client, eva, coras_draft)
    link = PreviewLink.objects.get()
    assert link.expires_at - link.created_at == pytest.approx(timedelta(days=2), abs=timedelta(seconds=5))


def test_a_revoked_link_stops_working_at_once(client, eva, coras_draft):
    path = make_link(client, eva, coras_draft)
    link = PreviewLink.objects.get()
    client.force_login(eva)
    response = client.post(f"/admin/articles/article/{coras_draft.pk}/preview-links/{link.pk}/revoke/")
    assert response.status_code == 302
    client.logout()
    response = client.get(path)
    assert response.status_code == 410
    assert "withdrawn" in response.content.decode()


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        signing.dumps([1, "guessed-key"], salt="another.purpose"),
        signing.dumps("not a list", salt=previews.SALT),
        "%00%0a",
    ],
)
def test_a_forged_token_answers_404_never_500(client, eva, coras_draft, token):
    make_link(client, eva, coras_draft)
    response = client.get(f"/preview/{token}/")
    assert response.status_code == 404
    assert "does not work" in response.content.decode()


def test_a_signed_token_with_the_wrong_key_answers_404(client, eva, coras_draft):
    make_link(client, eva, coras_draft)
    link = PreviewLink.objects.get()
    forged = signing.dumps([link.pk, "not-the-key"], salt=previews.SALT)
    assert client.get(f"/preview/{forged}/").status_code == 404


def test_the_pieces_author_may_share_it_and_another_author_may_not(client, cora, otto, coras_draft):
    path = make_link(client, cora, coras_draft, label="Translator")
    assert client.get(path).status_code == 200
    with pytest.raises(PermissionDenied):
        previews.create_preview_link(article=coras_draft, by=otto)
    client.force_login(otto)
    response = client.post(f"/admin/articles/article/{coras_draft.pk}/preview-links/new/", {"_preview_label": "x"})
    assert response.status_code == 404
    assert PreviewLink.objects.count() == 1
    assert author_of(cora).name == "Cora Lindqvist"


def test_preview_and_status_tokens_never_reach_a_log():
    from euro_prospects.observability import redact_reader_tokens

    line = 'GET /preview/WzEsImsiXQ:sig/ HTTP/1.1 (referer "https://site.example/write/status/WzEsMl0:sig/?sent=1")'
    assert redact_reader_tokens(line) == (
        'GET /preview/[token]/ HTTP/1.1 (referer "https://site.example/write/status/[token]/?sent=1")'
    )
    assert redact_reader_tokens("GET /articles/a-piece/preview/ HTTP/1.1") == "GET /articles/a-piece/preview/ HTTP/1.1"
