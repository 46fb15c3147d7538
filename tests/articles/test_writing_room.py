"""The writing room: autosave, edit conflicts and previews (articles/writing.py, articles/admin_views.py)."""

import re

import pytest

from articles import services, writing
from articles.models import Article
from tests.articles.test_admin import change_url, form_data
from tests.support.factories import ArticleFactory

Status = Article.Status


def autosave_url(article):
    return f"/admin/articles/article/{article.pk}/autosave/"


def opened_version(client, article):
    """The version the change page carries in its hidden field, as the browser would post it back."""
    page = client.get(change_url(article)).content.decode()
    found = re.search(r'name="opened_version" value="([^"]*)"', page)
    assert found, "the change page carries no opened_version"
    return found.group(1)


def versions(article):
    return article.history.count()


def test_autosave_keeps_the_text_without_a_version_per_call(client, cora, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    before = versions(coras_draft)
    for number in range(5):
        response = client.post(
            autosave_url(coras_draft),
            {"title": "Grid talks stall again", "body": f"<p>Words, draft {number}.</p>", "opened_version": version},
        )
        assert response.status_code == 200, response.content
        version = response.json()["version"]
    coras_draft.refresh_from_db()
    assert coras_draft.body == "<p>Words, draft 4.</p>"
    assert versions(coras_draft) == before + 1
    latest = coras_draft.history.first()
    assert (latest.history_change_reason, latest.history_user) == ("Autosaved", cora)
    assert latest.body == "<p>Words, draft 4.</p>"


def test_autosave_is_refused_when_someone_saved_after_the_page_opened(client, cora, eva, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    services.update_article(article=coras_draft, by=eva, standfirst="An editor's sharper summary.")
    response = client.post(autosave_url(coras_draft), {"body": "<p>Mine.</p>", "opened_version": version})
    assert response.status_code == 409
    assert "eva saved this piece" in response.json()["error"]
    coras_draft.refresh_from_db()
    assert coras_draft.body == "<p>Words.</p>"


def test_autosave_leaves_pieces_past_review_to_the_save_button(client, eva):
    live = ArticleFactory.create()
    client.force_login(eva)
    data = {"body": "<p>Live edit.</p>", "opened_version": writing.version_of(live)}
    response = client.post(autosave_url(live), data)
    assert response.status_code == 409
    assert "Save with the button" in response.json()["error"]
    live.refresh_from_db()
    assert live.body != "<p>Live edit.</p>"


def test_an_author_cannot_autosave_someone_else_s_piece(client, otto, coras_draft):
    client.force_login(otto)
    response = client.post(
        autosave_url(coras_draft), {"body": "<p>Not mine.</p>", "opened_version": writing.version_of(coras_draft)}
    )
    assert response.status_code == 403
    coras_draft.refresh_from_db()
    assert coras_draft.body == "<p>Words.</p>"


def test_autosave_without_the_opened_version_is_a_clear_400(client, cora, coras_draft):
    client.force_login(cora)
    response = client.post(autosave_url(coras_draft), {"body": "<p>Mine.</p>"})
    assert response.status_code == 400
    assert "opened_version" in response.json()["error"]


def test_autosave_of_an_overlong_title_is_a_400_with_the_reason(client, cora, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    response = client.post(autosave_url(coras_draft), {"title": "x" * 201, "opened_version": version})
    assert response.status_code == 400
    assert "200 characters" in response.json()["error"]


def test_autosave_answers_a_get_with_405(client, cora, coras_draft):
    client.force_login(cora)
    assert client.get(autosave_url(coras_draft)).status_code == 405


# --- edit conflicts on save ------------------------------------------------------------------------


def coras_form(article, **fields):
    data = form_data(title=article.title, slug=article.slug, standfirst=article.standfirst, body=article.body)
    data.pop("send_to_subscribers")  # an editor's field: Cora's form has none
    data.update(fields)
    return data


def test_a_save_over_someone_else_s_save_shows_who_and_what_and_changes_nothing(client, cora, eva, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    services.update_article(article=coras_draft, by=eva, body="<p>Words.</p><p>An editor's new paragraph.</p>")
    mine = coras_form(coras_draft, body="<p>Words, rewritten by Cora.</p>", opened_version=version)
    response = client.post(change_url(coras_draft), mine)
    assert response.status_code == 200  # the form again, not a redirect
    page = response.content.decode()
    assert "eva saved this piece" in page
    merge = response.context["adminform"].form.merge
    assert [field.name for field in merge.both_changed] == ["body"]
    kinds = {(line.kind, line.text) for line in merge.both_changed[0].lines}
    assert ("theirs", "An editor's new paragraph.") in kinds
    assert ("yours", "Words, rewritten by Cora.") in kinds
    coras_draft.refresh_from_db()
    assert coras_draft.body == "<p>Words.</p><p>An editor's new paragraph.</p>"


def test_what_only_the_other_person_changed_is_merged_into_the_form(client, cora, eva, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    services.update_article(article=coras_draft, by=eva, standfirst="An editor's sharper summary.")
    # Cora's page still holds the standfirst she opened.
    mine = coras_form(coras_draft, title="Grid talks stall once more", standfirst="A summary.", opened_version=version)
    response = client.post(change_url(coras_draft), mine)
    merge = response.context["adminform"].form.merge
    assert merge.taken_from_them == ["standfirst"]
    assert merge.both_changed == []
    assert "An editor&#x27;s sharper summary." in response.content.decode()  # in the form's field
    # Saving the merged form (the button posts the saved version) keeps both changes.
    data = coras_form(
        coras_draft,
        title="Grid talks stall once more",
        standfirst="An editor's sharper summary.",
        opened_version=version,
        _overwrite=merge.version,
    )
    response = client.post(change_url(coras_draft), data)
    assert response.status_code == 302
    assert response["Location"] == change_url(coras_draft)  # back to the piece, not the list
    coras_draft.refresh_from_db()
    assert (coras_draft.title, coras_draft.standfirst) == ("Grid talks stall once more", "An editor's sharper summary.")
    assert "saved with the changes you merged" in client.get(change_url(coras_draft)).content.decode()


def test_overwriting_needs_the_version_shown_in_the_conflict(client, cora, eva, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    services.update_article(article=coras_draft, by=eva, body="<p>Eva's words.</p>")
    shown = writing.version_of(Article.objects.get(pk=coras_draft.pk))
    services.update_article(article=coras_draft, by=eva, body="<p>Eva's later words.</p>")
    data = coras_form(coras_draft, body="<p>Cora's words.</p>", opened_version=version, _overwrite=shown)
    assert client.post(change_url(coras_draft), data).status_code == 200  # a newer save again: asked again
    coras_draft.refresh_from_db()
    assert coras_draft.body == "<p>Eva's later words.</p>"


def test_a_save_of_the_version_opened_goes_through(client, cora, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    data = coras_form(coras_draft, body="<p>Cora's second thoughts.</p>", opened_version=version)
    assert client.post(change_url(coras_draft), data).status_code == 302
    coras_draft.refresh_from_db()
    assert coras_draft.body == "<p>Cora's second thoughts.</p>"


def test_a_save_after_one_s_own_autosave_is_no_conflict(client, cora, coras_draft):
    client.force_login(cora)
    version = opened_version(client, coras_draft)
    answer = client.post(autosave_url(coras_draft), {"body": "<p>Autosaved words.</p>", "opened_version": version})
    data = coras_form(coras_draft, body="<p>Saved words.</p>", opened_version=answer.json()["version"])
    assert client.post(change_url(coras_draft), data).status_code == 302


# --- previews ----------------------------------------------------------------------------------------


def test_an_author_previews_her_own_piece_as_web_page_and_email_side_by_side(client, cora, coras_draft):
    client.force_login(cora)
    page = client.get(f"/admin/articles/article/{coras_draft.pk}/preview/?width=phone")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'src="/admin/articles/article/{coras_draft.pk}/preview/web/"' in html
    assert f'src="/admin/newsroom/email-preview/{coras_draft.pk}/"' in html
    assert "preview-phone" in html
    web = client.get(f"/admin/articles/article/{coras_draft.pk}/preview/web/")
    assert web.status_code == 200
    assert web["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in web["Content-Security-Policy"]
    assert "Grid talks stall again" in web.content.decode()
    email = client.get(f"/admin/newsroom/email-preview/{coras_draft.pk}/")
    assert email.status_code == 200
    assert email["X-Frame-Options"] == "SAMEORIGIN"
    policy = email["Content-Security-Policy"]
    assert "'unsafe-hashes' 'sha256-" in policy
    assert "unsafe-inline" not in policy
    assert "script-src 'none'" in policy
    assert "Grid talks stall again" in email.content.decode()


@pytest.mark.parametrize(
    "path",
    [
        "/admin/articles/article/{pk}/preview/",
        "/admin/articles/article/{pk}/preview/web/",
        "/admin/newsroom/email-preview/{pk}/",
    ],
)
def test_an_author_cannot_preview_someone_else_s_piece(client, otto, coras_draft, path):
    client.force_login(otto)
    assert client.get(path.format(pk=coras_draft.pk)).status_code == 403


def test_an_editor_previews_any_piece(client, eva, coras_draft):
    client.force_login(eva)
    assert client.get(f"/admin/newsroom/email-preview/{coras_draft.pk}/").status_code == 200
    assert client.get(f"/admin/articles/article/{coras_draft.pk}/preview/web/").status_code == 200


def test_every_style_of_the_email_is_allowed_by_its_hash(client, eva, coras_draft):
    client.force_login(eva)
    email = client.get(f"/admin/newsroom/email-preview/{coras_draft.pk}/")
    html = email.content.decode()
    assert 'style="' in html
    for source in writing_hashes(html):
        assert source in email["Content-Security-Policy"]


def writing_hashes(html):
    from newsletter.previews import style_hashes

    return style_hashes(html)
