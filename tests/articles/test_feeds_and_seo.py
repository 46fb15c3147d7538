import json
import re
import xml.etree.ElementTree as ET  # our own feeds: trusted XML
from datetime import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from articles.models import Article
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory
from tests.support.newsroom import full_article

ATOM = "{http://www.w3.org/2005/Atom}"


def parse_xml(content: bytes) -> ET.Element:
    return ET.fromstring(content)  # noqa: S314  (our own feed, not untrusted input)


def json_ld(html: str) -> dict:
    found = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    assert len(found) == 1
    return json.loads(found[0])


def test_article_json_ld_is_a_complete_news_article(client, db):
    article = full_article()
    data = json_ld(client.get(article.get_absolute_url()).content.decode())
    url = settings.SITE_URL + article.get_absolute_url()
    assert data["@context"] == "https://schema.org"
    assert data["@type"] == "NewsArticle"
    assert data["headline"] == article.title
    assert data["description"] == article.standfirst
    assert data["url"] == url
    assert data["author"] == [
        {
            "@type": "Person",
            "name": "Anna Kowal",
            "url": settings.SITE_URL + "/authors/anna-kowal/",
            "jobTitle": "Ukraine Correspondent",
        }
    ]
    assert data["editor"]["@type"] == "Person"
    assert data["editor"]["name"] == "Piet Lund"
    assert data["mainEntityOfPage"] == {"@type": "WebPage", "@id": url, "reviewedBy": data["editor"]}
    assert data["image"]["@type"] == "ImageObject"
    assert data["image"]["url"].startswith(settings.SITE_URL + "/media/articles/")
    assert data["image"]["creditText"] == "Demo Photo Desk"
    assert datetime.fromisoformat(data["datePublished"]) == article.published_at
    assert datetime.fromisoformat(data["dateModified"]) >= article.published_at
    assert data["publisher"] == {"@type": "Organization", "name": "Euro Prospects", "url": settings.SITE_URL + "/"}
    assert data["articleSection"] == ["Energy", "Economy"]


def test_json_ld_cannot_break_out_of_its_script_element(client, db):
    article = ArticleFactory.create(title="</script><script>alert(1)</script>")
    html = client.get(article.get_absolute_url()).content.decode()
    assert json_ld(html)["headline"] == "</script><script>alert(1)</script>"
    assert "<script>alert(1)" not in html


def test_article_page_has_canonical_url_open_graph_and_twitter_card(client, db):
    article = full_article(meta_description="A short description for search engines.")
    html = client.get(article.get_absolute_url()).content.decode()
    url = settings.SITE_URL + article.get_absolute_url()
    assert f'<link rel="canonical" href="{url}">' in html
    assert '<meta property="og:type" content="article">' in html
    assert f'<meta property="og:url" content="{url}">' in html
    assert '<meta property="og:description" content="A short description for search engines.">' in html
    assert re.search(r'<meta property="og:image" content="http[^"]+/media/articles/[^"]+\.png">', html)
    assert '<meta name="twitter:card" content="summary_large_image">' in html


def test_article_first_published_elsewhere_points_its_canonical_url_there(client, db):
    article = ArticleFactory.create(canonical_url="https://elsewhere.example/original")
    html = client.get(article.get_absolute_url()).content.decode()
    assert '<link rel="canonical" href="https://elsewhere.example/original">' in html


def test_rss_feed_has_authors_categories_and_the_hero_image(client, db):
    article = full_article()
    ArticleFactory.create(title="Not yet", status=Article.Status.DRAFT, published_at=None)
    response = client.get("/feed/")
    assert response["Content-Type"].startswith("application/rss+xml")
    channel = parse_xml(response.content).find("channel")
    assert channel is not None
    items = channel.findall("item")
    assert [item.findtext("title") for item in items] == [article.title]
    item = items[0]
    assert item.findtext("link") == "http://testserver" + article.get_absolute_url()
    creator = item.findtext("{http://purl.org/dc/elements/1.1/}creator") or item.findtext("author") or ""
    assert "Anna Kowal" in creator
    assert [category.text for category in item.findall("category")] == ["Energy", "Economy"]
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.get("type") == "image/png"
    assert enclosure.get("url", "").endswith(article.hero_image.url)
    assert int(enclosure.get("length", "0")) > 0


def test_atom_feed_has_authors_categories_and_the_hero_image(client, db):
    article = full_article()
    response = client.get("/feed/atom/")
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = parse_xml(response.content)
    entry = feed.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}title") == article.title
    assert entry.findtext(f"{ATOM}author/{ATOM}name") == "Anna Kowal"
    assert [category.get("term") for category in entry.findall(f"{ATOM}category")] == ["Energy", "Economy"]
    enclosures = [link for link in entry.findall(f"{ATOM}link") if link.get("rel") == "enclosure"]
    assert enclosures
    assert enclosures[0].get("href", "").endswith(article.hero_image.url)


# At 23:30 UTC the site's time zone (Europe/Brussels) is already on the next day.
@pytest.mark.parametrize("now", ["2026-11-30 12:00Z", "2026-11-30 23:30Z"])
def test_sitemap_lists_articles_topics_and_authors_with_lastmod(client, db, time_machine, now):
    time_machine.move_to(now, tick=False)
    topic, idle_topic = TopicFactory.create(), TopicFactory.create()
    author = AuthorFactory.create()
    article = ArticleFactory.create(topics=[topic], authors=[author])
    draft = ArticleFactory.create(status=Article.Status.DRAFT, published_at=None)
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    namespace = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
    entries = {
        url.findtext(f"{namespace}loc"): url.findtext(f"{namespace}lastmod")
        for url in parse_xml(response.content).findall(f"{namespace}url")
    }
    base = "http://testserver"
    assert base + "/" in entries
    # Dates as the site shows them: in its time zone.
    assert entries[base + article.get_absolute_url()] == timezone.localdate(article.updated_at).isoformat()
    assert article.published_at is not None
    assert entries[base + topic.get_absolute_url()] == timezone.localdate(article.published_at).isoformat()
    assert entries[base + author.get_absolute_url()]
    assert base + draft.get_absolute_url() not in entries
    assert base + idle_topic.get_absolute_url() not in entries


def test_robots_txt_points_to_the_sitemap_and_keeps_crawlers_out_of_the_admin(client, db):
    response = client.get("/robots.txt")
    assert response["Content-Type"].startswith("text/plain")
    lines = response.content.decode().splitlines()
    assert "Disallow: /admin/" in lines
    assert "Sitemap: http://testserver/sitemap.xml" in lines


def test_the_favicon_is_found_where_browsers_look_for_it(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].startswith("/static/articles/favicon")
    assert response["Location"].endswith(".svg")
