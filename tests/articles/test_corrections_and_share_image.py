"""Corrections and updates on a published piece (page, JSON-LD, admin inline), and the
site's default share image for pieces without a hero image."""

import json
import re
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from articles.models import Correction, SiteSettings
from tests.support.factories import ArticleFactory
from tests.support.newsroom import full_article, hero_image_file


def json_ld(html: str) -> dict:
    found = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(found) == 1
    return json.loads(found[0])


def test_corrections_and_updates_show_above_the_disclaimer_oldest_first(client, db):
    article = full_article()
    first = timezone.now() - timedelta(hours=1)
    Correction.objects.create(article=article, kind="update", noted_at=first, text="Adds the ministry's reply.")
    Correction.objects.create(
        article=article, text="An earlier version gave the cable's length as 700 km; it is 500 km."
    )
    page = client.get(article.get_absolute_url()).content.decode()
    section = page[page.index('data-anatomy="corrections"') :]
    assert section.index("Update,") < section.index("Correction,")
    assert "it is 500 km." in section
    assert page.index('data-anatomy="corrections"') < page.index('data-anatomy="disclaimer"')


def test_json_ld_carries_the_correction_and_the_later_modified_date(client, db, django_capture_on_commit_callbacks):
    article = full_article()
    client.get(article.get_absolute_url())  # cached now: a new note must still show
    later = timezone.now() + timedelta(minutes=5)
    with django_capture_on_commit_callbacks(execute=True):
        Correction.objects.create(article=article, noted_at=later, text="The vote was on Tuesday, not Monday.")
        Correction.objects.create(article=article, kind="update", noted_at=later, text="Adds a chart.")
    data = json_ld(client.get(article.get_absolute_url()).content.decode())
    assert data["correction"] == [
        {
            "@type": "CorrectionComment",
            "text": "The vote was on Tuesday, not Monday.",
            "datePublished": later.isoformat(),
        }
    ]
    assert data["dateModified"] == later.isoformat()


def test_a_piece_without_notes_has_no_corrections_section(client, db):
    article = full_article()
    page = client.get(article.get_absolute_url()).content.decode()
    assert "corrections" not in page
    assert "correction" not in json_ld(page)


def correction_post(article, **fields):
    from tests.articles.test_admin import form_data

    data = form_data(
        title=article.title,
        slug=article.slug,
        standfirst=article.standfirst,
        body=article.body,
        hero_image_alt=article.hero_image_alt,
        hero_image_credit=article.hero_image_credit,
        **{"corrections-TOTAL_FORMS": "1", "corrections-INITIAL_FORMS": "0"},
    )
    data.update(fields)
    return data


def test_an_editor_adds_a_correction_in_the_article_admin(client, eva, db):
    article = full_article()
    client.force_login(eva)
    response = client.post(
        f"/admin/articles/article/{article.pk}/change/",
        correction_post(
            article,
            **{
                "corrections-0-kind": "correction",
                "corrections-0-noted_at_0": timezone.localdate().isoformat(),
                "corrections-0-noted_at_1": "09:30:00",
                "corrections-0-text": "The minister's name is spelled Kallas.",
            },
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert list(article.corrections.values_list("text", flat=True)) == ["The minister's name is spelled Kallas."]
    assert "spelled Kallas" in client.get(article.get_absolute_url()).content.decode()


def test_an_author_cannot_add_corrections(client, cora, db):
    from tests.support.people import author_of

    article = full_article()
    article.article_authors.create(author=author_of(cora), position=1)
    client.force_login(cora)
    page = client.get(f"/admin/articles/article/{article.pk}/change/").content.decode()
    assert 'name="corrections-__prefix__-text"' not in page
    data = correction_post(article, **{"corrections-0-kind": "correction", "corrections-0-text": "Sneaky."})
    response = client.post(f"/admin/articles/article/{article.pk}/change/", data)
    assert response.status_code == 403
    assert Correction.objects.count() == 0


def test_a_piece_without_a_hero_shares_the_sites_default_image(client, db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    site = SiteSettings.load()
    site.default_share_image.save("share.png", hero_image_file("share.png"), save=False)
    site.default_share_image_alt = "The publication's name over abstract hills"
    site.save()
    article = ArticleFactory.create()
    page = client.get(article.get_absolute_url()).content.decode()
    url = settings.SITE_URL + site.default_share_image.url
    assert f'<meta property="og:image" content="{url}">' in page
    assert '<meta property="og:image:alt" content="The publication&#39;s name over abstract hills">' in page
    assert json_ld(page)["image"] == {"@type": "ImageObject", "url": url}


def test_a_hero_image_wins_over_the_default(client, db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    site = SiteSettings.load()
    site.default_share_image.save("share.png", hero_image_file("share.png"), save=False)
    site.save()
    article = full_article()
    page = client.get(article.get_absolute_url()).content.decode()
    hero = settings.SITE_URL + article.hero_image.url
    assert f'<meta property="og:image" content="{hero}">' in page
    assert json_ld(page)["image"]["url"] == hero


def test_without_any_image_there_is_no_og_image(client, db):
    article = ArticleFactory.create()
    page = client.get(article.get_absolute_url()).content.decode()
    assert "og:image" not in page
    assert "image" not in json_ld(page)
    assert settings.SITE_URL
