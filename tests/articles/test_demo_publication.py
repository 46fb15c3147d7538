"""The demo looks like a publication: generated hero images with credits, and a default share image."""

import json
import re
from io import StringIO

from django.core.management import call_command
from PIL import Image

from articles.models import Article, SiteSettings


def test_every_demo_article_has_a_generated_hero_image_with_credit_and_renditions(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_demo", stdout=StringIO())
    call_command("load_demo", stdout=StringIO())  # a re-run keeps the images it made
    articles = list(Article.objects.published())
    assert len(articles) == 3
    for article in articles:
        assert article.hero_image_credit == "Illustration: Euro Prospects (generated)"
        assert article.hero_image_alt
        with Image.open(article.hero_image.path) as image:
            assert image.size[0] >= 1200
            assert image.size[1] >= 630
        assert article.hero_image_page
        assert article.hero_image_email
    assert len({article.hero_image.name for article in articles}) == 3
    assert len(list((tmp_path / "articles").rglob("*.jpg"))) == 9  # each: original, page and email renditions


def test_the_demo_front_page_and_article_show_the_image_anatomy(client, db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_demo", stdout=StringIO())
    article = Article.objects.get(slug="a-slow-road-to-the-single-grid")
    page = client.get(article.get_absolute_url()).content.decode()
    assert "Image credit: Illustration: Euro Prospects (generated)" in page
    found = re.search(r'<script type="application/ld\+json">(.*?)</script>', page, re.S)
    assert found is not None
    data = json.loads(found.group(1))
    assert data["image"]["creditText"] == "Illustration: Euro Prospects (generated)"


def test_the_demo_sets_a_default_share_image(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    call_command("load_demo", stdout=StringIO())
    site = SiteSettings.load()
    with Image.open(site.default_share_image.path) as image:
        assert image.size == (1200, 630)
    assert site.default_share_image_alt
