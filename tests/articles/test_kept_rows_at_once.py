"""Two transactions change a link and its article or author at once: the kept bylines,
published counts and listing entries lose neither change (PostgreSQL's triggers, migrations
0014, 0017, 0018, 0019).

Each test leaves the first transaction open, runs the second in a thread, and commits the
first only once the second has either finished or is waiting for a lock the first holds.
Without the links' locks the second finishes at once, having read the first's rows as they
were before, and the kept row it writes is wrong."""

import threading
from typing import Any

import psycopg
import pytest
from django.db import connection

from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory
from tests.support.workers import wait_until

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the kept rows are PostgreSQL's"),
    pytest.mark.django_db(transaction=True),
]

Statements = list[tuple[str, list[Any]]]


def dsn() -> str:
    settings = connection.settings_dict
    host, user = settings.get("HOST") or "127.0.0.1", settings.get("USER") or "postgres"
    return f"host={host} user={user} dbname={settings['NAME']}"


def at_once(first: Statements, second: Statements) -> None:
    """``first`` in a transaction left open; ``second`` meanwhile in its own; then both commit."""
    with psycopg.connect(dsn()) as one, psycopg.connect(dsn()) as other, psycopg.connect(dsn()) as watcher:
        for statement, params in first:
            one.execute(statement, params)
        failures: list[BaseException] = []

        def run_second() -> None:
            try:
                for statement, params in second:
                    other.execute(statement, params)
                other.commit()
            except BaseException as error:  # reported by the test, not lost in the thread
                failures.append(error)

        thread = threading.Thread(target=run_second)
        thread.start()

        def finished_or_waiting() -> bool:
            if not thread.is_alive():
                return True
            waiting = watcher.execute("SELECT cardinality(pg_blocking_pids(%s)) > 0", [other.info.backend_pid])
            return bool(waiting.fetchone() == (True,))

        wait_until(
            finished_or_waiting,
            describe=lambda: "the second transaction neither finished nor waits for a lock",
        )
        one.commit()
        thread.join(timeout=20)
        assert not thread.is_alive()
        assert not failures, failures


def kept_and_recounted() -> tuple[dict[str, int], dict[str, int]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT listing, published FROM articles_publishedcount WHERE published <> 0")
        kept = dict(cursor.fetchall())
        cursor.execute("SELECT articles_recount_published()")
        cursor.execute("SELECT listing, published FROM articles_publishedcount WHERE published <> 0")
        return kept, dict(cursor.fetchall())


def listings_entered(article_id: int) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT listing FROM articles_listingentry WHERE article_id = %s", [article_id])
        return {listing for (listing,) in cursor.fetchall()}


def kept_byline(article_id: int) -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT authors, articles_author_credits(article_id) FROM articles_byline WHERE article_id = %s",
            [article_id],
        )
        return cursor.fetchone()


PUBLISH = "UPDATE articles_article SET status = 'published', published_at = now() - interval '1 minute' WHERE id = %s"
LINK_TOPIC = "INSERT INTO articles_articletopic (article_id, topic_id, position) VALUES (%s, %s, 1)"
LINK_AUTHOR = "INSERT INTO articles_articleauthor (article_id, author_id, position) VALUES (%s, %s, %s)"
UNLINK_TOPIC = "DELETE FROM articles_articletopic WHERE article_id = %s AND topic_id = %s"
RENAME = "UPDATE articles_author SET name = %s WHERE id = %s"


@pytest.mark.parametrize("publish_first", [True, False], ids=["published-then-linked", "linked-then-published"])
def test_a_link_added_while_its_article_is_published_is_counted(publish_first):
    piece = ArticleFactory.create(status="approved", published_at=None, topics=[], authors=[])
    topic, author = TopicFactory.create(), AuthorFactory.create()
    publish: Statements = [(PUBLISH, [piece.pk])]
    link: Statements = [(LINK_TOPIC, [piece.pk, topic.pk]), (LINK_AUTHOR, [piece.pk, author.pk, 0])]

    at_once(*((publish, link) if publish_first else (link, publish)))

    kept, recounted = kept_and_recounted()
    assert (kept.get(f"topic:{topic.pk}"), kept.get(f"author:{author.pk}")) == (1, 1)
    assert kept == recounted
    assert listings_entered(piece.pk) == {f"topic:{topic.pk}", f"author:{author.pk}"}


def test_a_link_removed_while_its_article_is_published_is_not_counted():
    topic = TopicFactory.create()
    piece = ArticleFactory.create(status="approved", published_at=None, topics=[topic], authors=[])

    at_once([(PUBLISH, [piece.pk])], [(UNLINK_TOPIC, [piece.pk, topic.pk])])

    kept, recounted = kept_and_recounted()
    assert kept.get(f"topic:{topic.pk}", 0) == 0
    assert kept == recounted
    assert listings_entered(piece.pk) == set()


@pytest.mark.parametrize("rename_first", [True, False], ids=["renamed-then-linked", "linked-then-renamed"])
def test_an_author_renamed_while_linked_to_an_article_is_bylined_by_the_new_name(rename_first):
    author = AuthorFactory.create(name="Mira Osk")
    piece = ArticleFactory.create(authors=[AuthorFactory.create(name="Tove Lind")])
    rename: Statements = [(RENAME, ["Mira Osk-Vale", author.pk])]
    link: Statements = [(LINK_AUTHOR, [piece.pk, author.pk, 1])]

    at_once(*((rename, link) if rename_first else (link, rename)))

    kept, fresh = kept_byline(piece.pk)
    assert "Mira Osk-Vale" in kept
    assert kept == fresh


def test_two_authors_linked_to_one_article_at_once_are_both_in_its_byline():
    first, second = AuthorFactory.create(name="Ines Roth"), AuthorFactory.create(name="Pavo Link")
    piece = ArticleFactory.create(authors=[AuthorFactory.create(name="Tove Lind")])

    at_once([(LINK_AUTHOR, [piece.pk, first.pk, 1])], [(LINK_AUTHOR, [piece.pk, second.pk, 2])])

    kept, fresh = kept_byline(piece.pk)
    assert "Ines Roth" in kept
    assert "Pavo Link" in kept
    assert kept == fresh
