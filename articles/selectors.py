"""Reads for the public site: the article page's one statement, feeds and sitemaps.

The home, topic, author and search pages read theirs in articles/listings.py and
articles/search.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Max, Prefetch, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from articles.links import Link, slug_url
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic
from euro_prospects.db import prepared_cursor


def credits_prefetches() -> list[Any]:
    return [
        Prefetch("article_authors", queryset=ArticleAuthor.objects.select_related("author").order_by("position")),
        Prefetch("article_topics", queryset=ArticleTopic.objects.select_related("topic").order_by("position")),
    ]


def published_articles() -> QuerySet[Article]:
    return Article.objects.published().order_by("-published_at", "-pk")


# The article page is what every reader who misses the page cache gets (and every
# signed-in reader, always), so it is read in one statement written out in SQL:
# the article, then its authors, topics and editor and the latest other pieces on
# its primary topic, each list a JSON array in page order. On the bench machine
# Django's query compiler cost more than PostgreSQL took to answer, and each
# further round trip cost more than the work in it (docs/performance.md). The two
# dialects differ in their JSON functions and in how a list keeps its order:
# PostgreSQL orders inside the aggregate, SQLite 3.40 cannot and keeps the order of
# an ordered subquery. {where} picks the article.
_ARTICLE_PAGE_SQL = {
    "postgresql": """
        SELECT a.id, a.title, a.slug, a.standfirst, a.body, a.hero_image, a.hero_image_page, a.hero_image_page_width,
               a.hero_image_page_height, a.hero_image_alt, a.hero_image_credit,
               a.editor_id, a.disclaimer, a.published_at, a.updated_at, a.reading_minutes, a.meta_title,
               a.meta_description, a.canonical_url,
               (SELECT json_agg(json_build_array(author.id, author.name, author.slug, author.role)
                                ORDER BY link.position)
                    FROM articles_articleauthor link JOIN articles_author author ON author.id = link.author_id
                    WHERE link.article_id = a.id) AS authors_json,
               (SELECT json_agg(json_build_array(topic.id, topic.name, topic.slug) ORDER BY link.position)
                    FROM articles_articletopic link JOIN articles_topic topic ON topic.id = link.topic_id
                    WHERE link.article_id = a.id) AS topics_json,
               (SELECT json_build_array(editor.id, editor.name, editor.slug, editor.role)
                    FROM articles_author editor WHERE editor.id = a.editor_id) AS editor_json,
               (SELECT json_agg(json_build_array(other.id, other.title, other.slug, other.reading_minutes)
                                ORDER BY other.published_at DESC, other.id DESC)
                    FROM (%(related_sql)s) other) AS related_json,
               (SELECT json_agg(json_build_array(note.kind, note.noted_at, note.text) ORDER BY note.noted_at, note.id)
                    FROM articles_correction note WHERE note.article_id = a.id) AS corrections_json
        FROM articles_article a
        WHERE {where}
    """,
    "sqlite": """
        SELECT a.id, a.title, a.slug, a.standfirst, a.body, a.hero_image, a.hero_image_page, a.hero_image_page_width,
               a.hero_image_page_height, a.hero_image_alt, a.hero_image_credit,
               a.editor_id, a.disclaimer, a.published_at, a.updated_at, a.reading_minutes, a.meta_title,
               a.meta_description, a.canonical_url,
               (SELECT json_group_array(json(item)) FROM (
                    SELECT json_array(author.id, author.name, author.slug, author.role) AS item
                    FROM articles_articleauthor link JOIN articles_author author ON author.id = link.author_id
                    WHERE link.article_id = a.id ORDER BY link.position)) AS authors_json,
               (SELECT json_group_array(json(item)) FROM (
                    SELECT json_array(topic.id, topic.name, topic.slug) AS item
                    FROM articles_articletopic link JOIN articles_topic topic ON topic.id = link.topic_id
                    WHERE link.article_id = a.id ORDER BY link.position)) AS topics_json,
               (SELECT json_array(editor.id, editor.name, editor.slug, editor.role)
                    FROM articles_author editor WHERE editor.id = a.editor_id) AS editor_json,
               (SELECT json_group_array(json_array(other.id, other.title, other.slug, other.reading_minutes))
                    FROM (%(related_sql)s) other) AS related_json,
               (SELECT json_group_array(json(item)) FROM (
                    SELECT json_array(note.kind, note.noted_at, note.text) AS item
                    FROM articles_correction note WHERE note.article_id = a.id
                    ORDER BY note.noted_at, note.id)) AS corrections_json
        FROM articles_article a
        WHERE {where}
    """,
}
# The latest other published pieces that share the article's primary topic, newest first.
_RELATED_SQL = """
    SELECT other.id, other.title, other.slug, other.reading_minutes, other.published_at
    FROM articles_article other JOIN articles_articletopic link ON link.article_id = other.id
    WHERE link.topic_id = (
            SELECT primary_link.topic_id FROM articles_articletopic primary_link
            WHERE primary_link.article_id = a.id ORDER BY primary_link.position LIMIT 1)
        AND other.id <> a.id AND other.status = %(published)s AND other.published_at <= %(now)s
    ORDER BY other.published_at DESC, other.id DESC LIMIT %(related)s
"""
_PUBLISHED_SLUG = "a.slug = %(slug)s AND a.status = %(published)s AND a.published_at <= %(now)s"
_ANY_ID = "a.id = %(id)s"
RELATED = 3


@cache
def _article_page_sql(vendor: str, where: str) -> str:
    return _ARTICLE_PAGE_SQL[vendor].format(where=where).replace("%(related_sql)s", _RELATED_SQL)


def _now() -> Any:
    """Now, as the database compares it (SQLite keeps naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(timezone.now())


# The article columns the statement selects, in the model's field order.
_PAGE_FIELDS = (
    "id", "title", "slug", "standfirst", "body", "hero_image", "hero_image_page", "hero_image_page_width",
    "hero_image_page_height", "hero_image_alt", "hero_image_credit", "editor_id", "disclaimer", "published_at",
    "updated_at", "reading_minutes", "meta_title", "meta_description", "canonical_url",
)  # fmt: skip
_PAGE_DATETIMES = ("published_at", "updated_at")


@dataclass(frozen=True)
class Person:
    name: str
    url: str
    role: str


@dataclass(frozen=True)
class RelatedPiece:
    title: str
    url: str
    reading_minutes: int


@dataclass(frozen=True)
class CorrectionNote:
    kind: str  # "correction" or "update"
    noted_at: datetime
    text: str

    @property
    def label(self) -> str:
        return "Correction" if self.kind == "correction" else "Update"


@dataclass
class ArticleLinks:
    """Everything an article's page links to, in page order."""

    authors: list[Person]  # byline order: the first is the byline
    topics: list[Link]  # the first is the primary topic
    editor: Person | None
    related: list[RelatedPiece]  # the latest other published pieces on the primary topic
    corrections: list[CorrectionNote] = field(default_factory=list)  # oldest first

    @property
    def primary_topic(self) -> Link | None:
        return self.topics[0] if self.topics else None


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value  # SQLite answers text


def _person(pk: int, name: str, slug: str, role: str) -> Person:
    return Person(name=name, url=slug_url("articles:author", slug), role=role)


def _article_page(row: Sequence[Any]) -> tuple[Article, ArticleLinks]:
    values = dict(zip(_PAGE_FIELDS, row, strict=False))
    for name in _PAGE_DATETIMES:  # PostgreSQL answers aware datetimes, SQLite naive UTC or text
        value = parse_datetime(values[name]) if isinstance(values[name], str) else values[name]
        values[name] = value.replace(tzinfo=UTC) if value is not None and timezone.is_naive(value) else value
    article = Article.from_db(connection.alias, _PAGE_FIELDS, [values[name] for name in _PAGE_FIELDS])
    authors, topics, editor, related, corrections = (_json(value) for value in row[len(_PAGE_FIELDS) :])
    links = ArticleLinks(
        authors=[_person(*author) for author in authors or []],
        topics=[Link(name=name, url=slug_url("articles:topic", slug)) for _pk, name, slug in topics or []],
        editor=_person(*editor) if editor else None,
        related=[
            RelatedPiece(title=title, url=slug_url("articles:detail", slug), reading_minutes=minutes)
            for _pk, title, slug, minutes in related or []
        ],
        corrections=[
            CorrectionNote(kind=kind, noted_at=_aware(noted_at), text=text)
            for kind, noted_at, text in corrections or []
        ],
    )
    return article, links


def _fetch_article_page(where: str, **params: Any) -> tuple[Article, ArticleLinks] | None:
    params |= {"published": Article.Status.PUBLISHED.value, "now": _now(), "related": RELATED}
    with prepared_cursor() as cursor:
        cursor.execute(_article_page_sql(connection.vendor, where), params)
        row = cursor.fetchone()
    return _article_page(row) if row else None


def article_for_page(slug: str) -> tuple[Article, ArticleLinks] | None:
    """A published article with the fields its page shows, and what the page links to (one query).

    The article's other fields are deferred: reading one costs a query, so the page must not.
    """
    return _fetch_article_page(_PUBLISHED_SLUG, slug=slug)


def article_links(article: Article) -> ArticleLinks:
    """What the page of ``article`` links to, published or not (one query; for the staff preview)."""
    found = _fetch_article_page(_ANY_ID, id=article.pk)
    if found is None:  # deleted meanwhile
        raise Article.DoesNotExist(article.pk)
    return found[1]


def topics_with_activity() -> QuerySet[Topic]:
    """Topics that have published articles, with the date of the latest (for the sitemap)."""
    return (
        Topic.objects.filter(articles__in=Article.objects.published())
        .annotate(last_published=Max("articles__published_at"))
        .order_by("name")
    )


def authors_with_activity() -> QuerySet[Author]:
    return (
        Author.objects.filter(articles__in=Article.objects.published())
        .annotate(last_published=Max("articles__published_at"))
        .order_by("name")
    )


def _aware(value: Any) -> Any:
    value = parse_datetime(value) if isinstance(value, str) else value
    return value.replace(tzinfo=UTC) if value is not None and timezone.is_naive(value) else value
