"""Prepared statements for the hottest hand-written queries (euro_prospects.db)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from euro_prospects.db import prepared_cursor
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")


def prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [statement for (statement,) in cursor.fetchall()]


def test_the_article_page_statement_is_prepared_once_and_still_counted(
    client, db, settings, django_assert_max_num_queries
):
    settings.PAGE_CACHE_ENABLED = False
    article = ArticleFactory.create(topics=[TopicFactory.create()], authors=[AuthorFactory.create(name="Ines Varga")])
    client.get(article.get_absolute_url())
    with django_assert_max_num_queries(3) as captured:
        page = client.get(article.get_absolute_url()).content.decode()
    assert "Ines Varga" in page
    # Still seen by Django's query counting, like any other query.
    assert any("authors_json" in query["sql"] for query in captured.captured_queries)
    page_statements = [statement for statement in prepared_statements() if "authors_json" in statement]
    assert len(page_statements) == 1  # two visits, one prepared statement
    # The ORM's queries are left alone: psycopg neither prepares nor keeps count of them.
    assert connection.connection.prepare_threshold is None


def test_prepared_statements_can_be_switched_off(client, db, settings):
    settings.PAGE_CACHE_ENABLED = False
    settings.DB_PREPARED_STATEMENTS = False
    article = ArticleFactory.create(authors=[AuthorFactory.create(name="Ines Varga")])
    assert "Ines Varga" in client.get(article.get_absolute_url()).content.decode()
    assert not [statement for statement in prepared_statements() if "authors_json" in statement]


def test_prepared_statements_read_timestamps_as_the_same_instants_as_the_orm(db):
    moment = timezone.now()
    with prepared_cursor() as cursor:
        cursor.execute("SELECT %(moment)s::timestamptz, '2026-03-29 03:30:00.5+02'::timestamptz", {"moment": moment})
        read, written_in_brussels = cursor.fetchone()
    assert read == moment
    assert read.utcoffset() == timedelta(0)
    assert written_in_brussels == datetime(2026, 3, 29, 1, 30, 0, 500000, tzinfo=UTC)
