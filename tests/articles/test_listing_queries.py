"""Uncached listing pages read their cards, bylines and topics in one statement."""

from datetime import timedelta

import pytest
from django.utils import timezone

from articles import cache
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory
from tests.support.workers import wait_until


@pytest.fixture
def uncached(settings):
    settings.PAGE_CACHE_ENABLED = False
    cache.watcher.known()
    wait_until(lambda: cache.watcher.listening, timeout=10)


@pytest.fixture
def newsroom(db):
    energy, trade = TopicFactory.create(name="Energy", slug="energy"), TopicFactory.create(name="Trade", slug="trade")
    ana, ben = (
        AuthorFactory.create(name="Ana Field", slug="ana-field"),
        AuthorFactory.create(name="Ben Moss", slug="ben-moss"),
    )
    now = timezone.now()
    for number in range(15):
        ArticleFactory.create(
            title=f"Piece number {number:02d}",
            published_at=now - timedelta(hours=number),
            topics=[energy, trade] if number % 2 else [trade],
            authors=[ana, ben] if number % 3 == 0 else [ben],
            is_featured=number == 4,
        )
    return {"energy": energy, "ana": ana}


def titles(html: str) -> list[str]:
    return [part.split("<")[0] for part in html.split(">Piece number ")[1:]]


def test_the_home_page_runs_one_statement_for_the_featured_piece_and_the_page(
    client, newsroom, uncached, django_assert_num_queries
):
    client.get("/")
    with django_assert_num_queries(1):
        html = client.get("/").content.decode()
    # the featured piece first, then the latest twelve without it, newest first
    assert titles(html) == ["04", "00", "01", "02", "03", "05", "06", "07", "08", "09", "10", "11", "12"]
    assert 'By <a href="/authors/ana-field/">Ana Field</a> and <a href="/authors/ben-moss/">Ben Moss</a>' in html
    assert '<a href="/topics/energy/">Energy</a><span aria-hidden="true"> | </span><a href="/topics/trade/">' in html
    with django_assert_num_queries(1):
        second = client.get("/?page=2").content.decode()
    assert titles(second) == ["12", "13", "14"]
    assert "Page 2 of 2" in second


def test_topic_and_author_pages_run_one_statement(client, newsroom, uncached, django_assert_num_queries):
    client.get("/topics/energy/")
    with django_assert_num_queries(1):  # the topic and its cards
        html = client.get("/topics/energy/").content.decode()
    assert "<h1>Energy</h1>" in html
    assert titles(html) == ["01", "03", "05", "07", "09", "11", "13"]
    with django_assert_num_queries(1):
        html = client.get("/authors/ana-field/").content.decode()
    assert "<h1>Ana Field</h1>" in html
    assert titles(html) == ["00", "03", "06", "09", "12"]


def test_a_topic_or_author_with_nothing_published_has_its_page_and_an_unknown_one_is_404(client, db, uncached):
    TopicFactory.create(name="Fisheries", slug="fisheries", description="Boats and quotas.")
    AuthorFactory.create(name="Cleo Park", slug="cleo-park", role="Baltic Correspondent")
    ArticleFactory.create(status="draft", published_at=None, topics=[], authors=[])
    topic = client.get("/topics/fisheries/").content.decode()
    assert "<h1>Fisheries</h1>" in topic
    assert "Boats and quotas." in topic
    assert "Nothing published on this topic yet." in topic
    author = client.get("/authors/cleo-park/").content.decode()
    assert "Baltic Correspondent" in author
    assert "No published articles yet." in author
    assert client.get("/topics/whaling/").status_code == 404
    assert client.get("/authors/nobody/").status_code == 404


def test_a_page_past_the_end_or_not_a_number_is_404(client, newsroom, uncached):
    assert client.get("/?page=3").status_code == 404
    assert client.get("/topics/energy/?page=2").status_code == 404
    assert client.get("/?page=99999999999999999999").status_code == 404
    assert client.get("/?page=0").status_code == 404
    assert client.get("/topics/energy/?page=x").status_code == 404
