"""The newsroom day in the admin, as Cora (correspondent) and Eva (editor) would do it."""

import re
from datetime import timedelta
from io import BytesIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from articles import services
from articles.models import Article
from tests.support.factories import AuthorFactory, TopicFactory
from tests.support.people import author_of

Status = Article.Status
ADD_URL = "/admin/articles/article/add/"


def change_url(article):
    return f"/admin/articles/article/{article.pk}/change/"


def form_data(**fields):
    data = {
        "title": "Baltic ports brace for new rules",
        "slug": "baltic-ports-brace-for-new-rules",
        "standfirst": "Harbour operators read the fine print.",
        "body": "<h2>Context</h2><p>Ports are busy.</p><script>alert(1)</script>",
        "hero_image_alt": "",
        "hero_image_credit": "",
        "disclaimer": "",
        "meta_title": "",
        "meta_description": "",
        "canonical_url": "",
        "send_to_subscribers": "on",
    }
    for prefix in ["article_authors", "article_topics", "transitions"]:
        data.update({f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"})
    data.update(fields)
    return data


def png(width, height):
    buffer = BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buffer, "PNG")
    return SimpleUploadedFile("hero.png", buffer.getvalue(), content_type="image/png")


@pytest.fixture(autouse=True)
def media_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_the_article_page_has_the_rich_text_editor(client, eva):
    client.force_login(eva)
    response = client.get(ADD_URL)
    page = response.content.decode()
    assert "django_prose_editor/editor.js" in page
    assert "data-django-prose-editor-configurable" in page
    # The editor loads through an inline import map: the CSP lets it run only with the nonce.
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])
    assert nonce is not None
    assert re.search(rf'<script type="importmap"[^>]* nonce="{re.escape(nonce.group(1))}"', page)
    for extension in ["Heading", "Bold", "Italic", "Link", "BulletList", "Blockquote", "Image"]:
        assert extension in page


def test_a_correspondent_writes_a_draft_and_submits_it(client, cora):
    client.force_login(cora)
    response = client.post(ADD_URL, form_data(_continue="1"))
    assert response.status_code == 302, response.content.decode()[:3000]
    article = Article.objects.get(slug="baltic-ports-brace-for-new-rules")
    assert article.status == Status.DRAFT
    assert article.body == "<h2>Context</h2><p>Ports are busy.</p>"
    assert [a.author for a in article.article_authors.all()] == [author_of(cora)]

    page = client.get(change_url(article)).content.decode()
    assert 'value="submit"' in page
    assert 'value="publish"' not in page
    response = client.post(change_url(article), form_data(_workflow="submit"), follow=True)
    assert "is now in review" in response.content.decode()
    article.refresh_from_db()
    assert article.status == Status.IN_REVIEW


def test_a_correspondent_cannot_publish_from_the_admin(client, cora, coras_draft):
    client.force_login(cora)
    response = client.post(change_url(coras_draft), form_data(_workflow="publish"), follow=True)
    assert "You may not publish" in response.content.decode()
    coras_draft.refresh_from_db()
    assert coras_draft.status == Status.DRAFT


def test_a_correspondent_cannot_open_someone_elses_article(client, otto, coras_draft):
    client.force_login(otto)
    assert client.get(change_url(coras_draft)).status_code == 302  # "does not exist" back to the index
    assert coras_draft.title not in client.get("/admin/articles/article/").content.decode()


def test_a_correspondent_cannot_edit_their_published_article(client, cora, eva, coras_draft):
    services.publish_article(article=coras_draft, by=eva)
    client.force_login(cora)
    client.post(change_url(coras_draft), form_data(title="Sneaky change"))
    coras_draft.refresh_from_db()
    assert coras_draft.title == "Grid talks stall again"


def test_an_editor_reviews_sets_reviewed_by_and_schedules(client, eva, cora, coras_draft):
    services.submit_for_review(article=coras_draft, by=cora)
    reviewer = AuthorFactory.create(name="Ilse Editor", slug="ilse-editor")
    client.force_login(eva)
    queue = client.get("/admin/articles/articleinreview/").content.decode()
    assert "Grid talks stall again" in queue
    when = timezone.localtime() + timedelta(hours=3)
    data = form_data(
        title="Grid talks stall again",
        slug=coras_draft.slug,
        editor=str(reviewer.pk),
        publish_at_0=when.strftime("%d/%m/%Y"),
        publish_at_1=when.strftime("%H:%M:%S"),
        _workflow="schedule",
    )
    response = client.post(change_url(coras_draft), data, follow=True)
    assert "is now scheduled" in response.content.decode()
    coras_draft.refresh_from_db()
    assert coras_draft.status == Status.SCHEDULED
    assert coras_draft.editor == reviewer
    assert abs((coras_draft.publish_at - when).total_seconds()) < 1
    assert "Grid talks stall again" not in client.get("/admin/articles/articleinreview/").content.decode()


def test_the_review_queue_is_for_editors_only(client, cora):
    client.force_login(cora)
    assert client.get("/admin/articles/articleinreview/").status_code == 403


def test_the_list_filters_searches_and_publishes_in_bulk(client, eva, coras_draft):
    client.force_login(eva)
    page = client.get("/admin/articles/article/?status__exact=draft&q=Grid").content.decode()
    assert "Grid talks stall again" in page
    assert "Cora Lindqvist" in page  # the byline column
    response = client.post(
        "/admin/articles/article/",
        {"action": "publish_selected", "_selected_action": [coras_draft.pk]},
        follow=True,
    )
    assert "is now published" in response.content.decode()
    coras_draft.refresh_from_db()
    assert coras_draft.status == Status.PUBLISHED


def test_preview_shows_unpublished_pieces_to_staff_only(client, cora, otto, eva, coras_draft):
    preview = f"/articles/{coras_draft.slug}/preview/"
    assert client.get(f"/articles/{coras_draft.slug}/").status_code == 404
    assert client.get(preview).status_code == 302  # to the login page
    client.force_login(otto)
    assert client.get(preview).status_code == 403
    for user in (cora, eva):
        client.force_login(user)
        response = client.get(preview)
        assert response.status_code == 200
        assert "Grid talks stall again" in response.content.decode()
        assert response["Cache-Control"] == "private, no-store"


def test_history_compares_and_restoring_keeps_the_status(client, eva, coras_draft):
    client.force_login(eva)
    services.update_article(article=coras_draft, by=eva, title="A changed title")
    services.publish_article(article=coras_draft, by=eva)
    page = client.get(f"/admin/articles/article/{coras_draft.pk}/history/").content.decode()
    assert "A changed title" in page
    assert "Grid talks stall again" in page  # the change column shows old → new
    first = coras_draft.history.earliest("history_date")
    response = client.post(
        f"/admin/articles/article/{coras_draft.pk}/history/{first.history_id}/",
        form_data(title="Grid talks stall again", slug=coras_draft.slug),
    )
    assert response.status_code == 302
    coras_draft.refresh_from_db()
    assert coras_draft.title == "Grid talks stall again"
    assert coras_draft.status == Status.PUBLISHED


def test_a_small_image_is_refused_with_a_message(client, eva, coras_draft):
    client.force_login(eva)
    data = form_data(slug=coras_draft.slug, hero_image=png(400, 300), hero_image_alt="A", hero_image_credit="B")
    response = client.post(change_url(coras_draft), data)
    assert response.status_code == 200
    assert "it must be at least 1200 x 630" in response.content.decode()


def test_a_non_image_is_refused(client, eva, coras_draft):
    client.force_login(eva)
    fake = SimpleUploadedFile("hero.png", b"<?php echo 1; ?>", content_type="image/png")
    data = form_data(slug=coras_draft.slug, hero_image=fake, hero_image_alt="A", hero_image_credit="B")
    response = client.post(change_url(coras_draft), data)
    assert "Upload a valid image" in response.content.decode() or "not an image" in response.content.decode()
    coras_draft.refresh_from_db()
    assert not coras_draft.hero_image


def test_an_image_needs_alt_text_and_credit(client, eva, coras_draft):
    client.force_login(eva)
    response = client.post(change_url(coras_draft), form_data(slug=coras_draft.slug, hero_image=png(1200, 630)))
    page = response.content.decode()
    assert "A hero image needs alt text." in page
    coras_draft.refresh_from_db()
    assert not coras_draft.hero_image


def test_an_uploaded_image_gets_page_and_email_renditions(client, eva, coras_draft):
    client.force_login(eva)
    data = form_data(
        slug=coras_draft.slug, hero_image=png(2400, 1260), hero_image_alt="A harbour", hero_image_credit="Demo"
    )
    assert client.post(change_url(coras_draft), data).status_code == 302
    coras_draft.refresh_from_db()
    with Image.open(coras_draft.hero_image_page.path) as page_image:
        assert page_image.size == (1600, 840)
    with Image.open(coras_draft.hero_image_email.path) as email_image:
        assert email_image.size == (600, 315)
        assert email_image.format == "JPEG"


def test_the_article_page_shows_the_page_rendition_at_its_stored_size_and_follows_a_new_image(
    client, eva, coras_draft, django_capture_on_commit_callbacks
):
    services.publish_article(article=coras_draft, by=eva)
    client.force_login(eva)
    data = form_data(
        slug=coras_draft.slug, hero_image=png(2400, 1260), hero_image_alt="A harbour", hero_image_credit="Demo"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(change_url(coras_draft), data).status_code == 302
    coras_draft.refresh_from_db()
    assert (coras_draft.hero_image_page_width, coras_draft.hero_image_page_height) == (1600, 840)
    client.logout()
    page = client.get(coras_draft.get_absolute_url()).content.decode()
    assert f'<img src="{coras_draft.hero_image_page.url}" alt="A harbour" width="1600" height="840">' in page

    client.force_login(eva)
    data = form_data(
        slug=coras_draft.slug, hero_image=png(1200, 900), hero_image_alt="A quay", hero_image_credit="Demo"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(change_url(coras_draft), data).status_code == 302
    coras_draft.refresh_from_db()
    client.logout()
    page = client.get(coras_draft.get_absolute_url()).content.decode()
    assert f'<img src="{coras_draft.hero_image_page.url}" alt="A quay" width="1200" height="900">' in page


def test_every_field_has_help_text_or_an_obvious_name():
    obvious = {"id", "title", "slug", "created_at", "updated_at", "created_by", "authors", "topics"}
    missing = [
        field.name
        for field in Article._meta.get_fields()
        if getattr(field, "editable", False) and not getattr(field, "help_text", "") and field.name not in obvious
    ]
    assert missing == []


def test_site_settings_open_the_single_row(client, eva):
    client.force_login(eva)
    response = client.get("/admin/articles/sitesettings/")
    assert response.status_code == 302
    assert response["Location"].endswith("/admin/articles/sitesettings/1/change/")


def test_topics_keep_their_order_in_the_admin(client, eva):
    TopicFactory.create(name="Energy", slug="energy")
    client.force_login(eva)
    assert client.get("/admin/articles/topic/").status_code == 200


def test_view_on_site_opens_the_preview_until_published(client, eva, coras_draft):
    client.force_login(eva)
    page = client.get(change_url(coras_draft)).content.decode()
    assert f"/articles/{coras_draft.slug}/preview/" in page


def test_the_stored_hero_image_is_re_encoded_so_only_pixels_remain(client, eva, coras_draft):
    client.force_login(eva)
    upload = png(1200, 630)
    upload = SimpleUploadedFile("hero.png", upload.read() + b"<script>alert(1)</script>", content_type="image/png")
    data = form_data(slug=coras_draft.slug, hero_image=upload, hero_image_alt="A harbour", hero_image_credit="Demo")
    assert client.post(change_url(coras_draft), data).status_code == 302
    coras_draft.refresh_from_db()
    with open(coras_draft.hero_image.path, "rb") as stored:
        assert b"<script>" not in stored.read()
    with Image.open(coras_draft.hero_image.path) as image:
        assert image.size == (1200, 630)


def test_a_correspondent_sees_only_their_own_private_author_fields(client, cora, otto, eva):
    mine = author_of(cora)
    mine.email = "cora.private@example.org"
    mine.save()
    others = author_of(otto)
    others.email = "otto.private@example.org"
    others.save()
    client.force_login(cora)
    listing = client.get("/admin/articles/author/").content.decode()
    assert "Otto Brandl" in listing
    assert "otto.private@example.org" not in listing
    assert "Otto Brandl" not in client.get("/admin/articles/author/?q=otto.private").content.decode()
    assert "otto.private@example.org" not in client.get(f"/admin/articles/author/{others.pk}/change/").content.decode()
    assert "cora.private@example.org" in client.get(f"/admin/articles/author/{mine.pk}/change/").content.decode()
    client.force_login(eva)
    assert "otto.private@example.org" in client.get("/admin/articles/author/").content.decode()
