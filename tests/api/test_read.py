import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from articles.models import Article, SiteSettings
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ukraine_piece():
    ukraine = TopicFactory.create(name="Ukraine", slug="ukraine")
    defence = TopicFactory.create(name="Defence", slug="defence")
    byline = AuthorFactory.create(name="Mara Invented", slug="mara-invented", role="Ukraine Correspondent")
    second = AuthorFactory.create(name="Teo Madeup", slug="teo-madeup", role="Data Reporter")
    editor = AuthorFactory.create(name="Ilse Fictive", slug="ilse-fictive", role="Editor")
    return ArticleFactory.create(
        title="Grain corridors after the thaw",
        slug="grain-corridors",
        standfirst="What the spring means for shipping.",
        body="<h2>Ports</h2><p>Words.</p>",
        hero_image="articles/2026/01/port.jpg",
        hero_image_page="articles/renditions/port-page.jpg",
        hero_image_email="articles/renditions/port-email.jpg",
        hero_image_alt="Cranes at a port at dusk",
        hero_image_credit="Invented Photo Agency",
        editor=editor,
        authors=[byline, second],
        topics=[ukraine, defence],
    )


def test_the_article_detail_shows_every_part_of_the_anatomy(client, ukraine_piece):
    body = client.get(f"/api/v1/articles/{ukraine_piece.pk}/").json()

    assert body["title"] == "Grain corridors after the thaw"
    assert body["topic_line"] == "Ukraine | Defence"
    assert [topic["slug"] for topic in body["topics"]] == ["ukraine", "defence"]
    assert body["reading_minutes"] == ukraine_piece.reading_minutes
    assert body["standfirst"] == "What the spring means for shipping."
    assert body["hero_image"] == {
        "url": "http://testserver/media/articles/2026/01/port.jpg",
        "renditions": {
            "page": "http://testserver/media/articles/renditions/port-page.jpg",
            "email": "http://testserver/media/articles/renditions/port-email.jpg",
        },
        "alt": "Cranes at a port at dusk",
        "credit": "Invented Photo Agency",
    }
    assert [(a["name"], a["role"]) for a in body["authors"]] == [
        ("Mara Invented", "Ukraine Correspondent"),
        ("Teo Madeup", "Data Reporter"),
    ]
    assert body["editor"]["name"] == "Ilse Fictive"
    assert body["published_at"]
    assert body["updated_at"]
    assert body["body"] == "<h2>Ports</h2><p>Words.</p>"
    assert body["disclaimer"] == SiteSettings.load().default_disclaimer
    assert body["url"] == "http://testserver/articles/grain-corridors/"
    assert body["canonical_url"] == body["url"]


def test_an_article_can_be_read_by_its_slug(client, ukraine_piece):
    response = client.get("/api/v1/articles/by-slug/grain-corridors/")
    assert response.status_code == 200
    assert response.json()["id"] == ukraine_piece.pk


def test_an_article_with_its_own_disclaimer_and_canonical_address_shows_them(client):
    article = ArticleFactory.create(disclaimer="Written for a partner.", canonical_url="https://partner.example/x")
    body = client.get(f"/api/v1/articles/{article.pk}/").json()
    assert body["disclaimer"] == "Written for a partner."
    assert body["canonical_url"] == "https://partner.example/x"


@pytest.mark.parametrize(
    "status", [Article.Status.DRAFT, Article.Status.IN_REVIEW, Article.Status.SCHEDULED, Article.Status.UNPUBLISHED]
)
def test_unpublished_articles_are_invisible_to_anonymous_callers(client, status):
    hidden = ArticleFactory.create(status=status, slug="hidden-piece")
    assert client.get("/api/v1/articles/").json()["count"] == 0
    assert client.get(f"/api/v1/articles/{hidden.pk}/").status_code == 404
    assert client.get("/api/v1/articles/by-slug/hidden-piece/").status_code == 404


def test_an_article_due_in_the_future_is_not_yet_visible(client):
    ArticleFactory.create(published_at=timezone.now() + dt.timedelta(hours=1))
    assert client.get("/api/v1/articles/").json()["count"] == 0


def test_the_list_is_paginated_newest_first(client):
    now = timezone.now()
    for days in range(3):
        ArticleFactory.create(slug=f"day-{days}", published_at=now - dt.timedelta(days=days))
    first = client.get("/api/v1/articles/?page_size=2").json()
    assert first["count"] == 3
    assert [a["slug"] for a in first["results"]] == ["day-0", "day-1"]
    second = client.get(first["next"]).json()
    assert [a["slug"] for a in second["results"]] == ["day-2"]


# From 23:00 UTC (22:00 in summer) the date is already the next day in the site's time zone.
@pytest.mark.parametrize("now", ["2026-12-01 12:00Z", "2026-12-01 23:30Z", "2026-07-01 22:30Z"])
def test_the_list_filters_by_topic_author_and_date(client, time_machine, now):
    time_machine.move_to(now, tick=False)
    europe = TopicFactory.create(slug="europe")
    writer = AuthorFactory.create(slug="writer")
    month_ago = timezone.now() - dt.timedelta(days=30)
    ArticleFactory.create(slug="old", topics=[europe], published_at=month_ago)
    ArticleFactory.create(slug="new", authors=[writer])
    ArticleFactory.create(slug="both", topics=[europe], authors=[writer])

    def slugs(query: str) -> set[str]:
        return {a["slug"] for a in client.get(f"/api/v1/articles/?{query}").json()["results"]}

    assert slugs("topic=europe") == {"old", "both"}
    assert slugs("author=writer") == {"new", "both"}
    assert slugs("topic=europe&author=writer") == {"both"}
    # Dates in the filters are the dates readers see: in the site's time zone.
    since = timezone.localdate(month_ago + dt.timedelta(days=1)).isoformat()
    assert slugs(f"published_after={since}") == {"new", "both"}
    assert slugs(f"published_before={since}") == {"old"}


def test_the_date_filters_take_the_date_readers_see_in_the_site_time_zone(client, settings):
    settings.TIME_ZONE = "Europe/Brussels"
    # 23:30 UTC on 1 November is 00:30 on 2 November in Brussels: the page shows 2 November.
    ArticleFactory.create(slug="after-midnight", published_at=dt.datetime(2026, 11, 1, 23, 30, tzinfo=dt.UTC))

    def slugs(query: str) -> list[str]:
        return [a["slug"] for a in client.get(f"/api/v1/articles/?{query}").json()["results"]]

    assert slugs("published_after=2026-11-02&published_before=2026-11-02") == ["after-midnight"]
    assert slugs("published_before=2026-11-01") == []


def test_a_bad_date_filter_is_a_clear_400(client):
    response = client.get("/api/v1/articles/?published_after=yesterday")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["detail"].startswith("published_after:")


def test_the_list_takes_the_same_number_of_queries_for_one_article_or_many(client):
    SiteSettings.load()
    topic, author = TopicFactory.create(), AuthorFactory.create()
    ArticleFactory.create(topics=[topic], authors=[author], editor=author)
    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/articles/")
    for _ in range(9):
        ArticleFactory.create(topics=[topic, TopicFactory.create()], authors=[author, AuthorFactory.create()])
    with CaptureQueriesContext(connection) as ten:
        assert len(client.get("/api/v1/articles/").json()["results"]) == 10
    assert len(ten) == len(one)


def test_topics_and_authors_are_listed_and_found_by_slug(client):
    TopicFactory.create(name="Energy", slug="energy")
    AuthorFactory.create(name="Kai Notreal", slug="kai-notreal", role="Brussels Correspondent", email="kai@example.org")
    assert [t["slug"] for t in client.get("/api/v1/topics/").json()["results"]] == ["energy"]
    assert client.get("/api/v1/topics/energy/").json()["name"] == "Energy"
    author = client.get("/api/v1/authors/kai-notreal/").json()
    assert author["role"] == "Brussels Correspondent"
    assert "email" not in author


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("get", "/api/v1/articles/999999/", 404),
        ("get", "/api/v1/articles/99999999999999999999999/", 404),
        ("get", "/api/v1/no-such-thing/", 404),
        ("get", "/api/v1/topics/nope/", 404),
        ("delete", "/api/v1/topics/", 405),
        ("get", "/api/v1/articles/?page=9", 404),
    ],
)
def test_errors_are_json_with_a_message(client, method, path, status):
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"]
    assert response.json()["code"]


def test_the_schema_and_the_docs_are_served(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    assert "/api/v1/articles/{id}/" in schema.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger" in docs.content.lower()
    assert b"<style" not in docs.content  # the Content-Security-Policy forbids inline styles
    assert b"<script>" not in docs.content
