"""Reads for the public site: each page runs a fixed, small number of queries.

Listings prefetch authors and topics in byline/position order (two queries for a
whole page of articles, however many authors and topics they have).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from django.db import connection
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

from articles.links import slug_url
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic
from euro_prospects.db import prepared_cursor

PAGE_SIZE = 12
SEARCH_PAGE_SIZE = 20

# Snippets come back from PostgreSQL with these around each match; we escape the
# text, then turn them into <mark>, so nothing from the body reaches the page raw.
_MATCH_START = "\x02"
_MATCH_STOP = "\x03"
_TAG = re.compile(r"<")


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
class TopicLink:
    name: str
    url: str


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
    topics: list[TopicLink]  # the first is the primary topic
    editor: Person | None
    related: list[RelatedPiece]  # the latest other published pieces on the primary topic
    corrections: list[CorrectionNote] = field(default_factory=list)  # oldest first

    @property
    def primary_topic(self) -> TopicLink | None:
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
        topics=[TopicLink(name=name, url=slug_url("articles:topic", slug)) for _pk, name, slug in topics or []],
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


def featured_article() -> Article | None:
    return published_articles().filter(is_featured=True).first()


def with_credits(articles: Sequence[Article]) -> Sequence[Article]:
    """Attach authors and topics to an already fetched list of articles."""
    from django.db.models import prefetch_related_objects

    prefetch_related_objects(list(articles), *credits_prefetches())
    return articles


def articles_on_topic(topic: Topic) -> QuerySet[Article]:
    return published_articles().filter(article_topics__topic=topic)


def articles_by_author(author: Author) -> QuerySet[Article]:
    return published_articles().filter(article_authors__author=author)


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


@dataclass
class SearchResult:
    article: Article
    snippet: SafeString


def _highlight(fragment: str) -> SafeString:
    text = escape(html.unescape(fragment))
    return mark_safe(text.replace(_MATCH_START, "<mark>").replace(_MATCH_STOP, "</mark>"))  # noqa: S308


def search_articles(query: str) -> QuerySet[Article]:
    """Published articles matching ``query``, best first.

    On PostgreSQL: full-text search (title weighs most, then standfirst, then
    body) ranked by relevance, with a highlighted snippet in ``headline``. On
    SQLite: a plain substring match, newest first.
    """
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVectorField
        from django.db.models import F, Func, TextField, Value
        from django.db.models.expressions import RawSQL
        from django.db.models.functions import Concat

        plain_body = Func(
            F("body"), Value("<[^>]+>"), Value(" "), Value("g"), function="regexp_replace", output_field=TextField()
        )
        # Title (A), standfirst (B) and body (C), stored and GIN-indexed (migration 0009).
        vector = RawSQL('"articles_article"."search_vector"', [], output_field=SearchVectorField())
        search_query = SearchQuery(query, search_type="websearch", config="english")
        return (
            published_articles()
            .alias(search=vector)
            .filter(search=search_query)
            .annotate(rank=SearchRank(vector, search_query))
            .annotate(
                headline=SearchHeadline(
                    Concat(F("standfirst"), Value(" "), plain_body, output_field=TextField()),
                    search_query,
                    config="english",
                    start_sel=_MATCH_START,
                    stop_sel=_MATCH_STOP,
                    max_words=35,
                    min_words=15,
                    max_fragments=2,
                    fragment_delimiter=" … ",
                )
            )
            .order_by("-rank", "-published_at")
        )
    words = query.split()
    condition = Q()
    for word in words:
        condition &= Q(title__icontains=word) | Q(standfirst__icontains=word) | Q(body__icontains=word)
    return published_articles().filter(condition)


def search_results(articles: Iterable[Article], query: str) -> list[SearchResult]:
    results = []
    words = [word.lower() for word in query.split() if len(word) > 1]
    for article in articles:
        headline = getattr(article, "headline", None)
        if headline is not None:
            snippet = _highlight(headline)
        else:
            snippet = _highlight(_mark_words(_fallback_excerpt(article, words), words))
        results.append(SearchResult(article=article, snippet=snippet))
    return results


def _fallback_excerpt(article: Article, words: list[str], before: int = 100, after: int = 200) -> str:
    """About thirty words of standfirst and body around the first match."""
    body = html.unescape(strip_tags(_TAG.sub(" <", article.body)))
    text = " ".join(f"{article.standfirst} {body}".split())
    lowered = text.lower()
    hits = [position for position in (lowered.find(word) for word in words) if position != -1]
    start = max(min(hits, default=0) - before, 0)
    stop = start + before + after
    if start > 0:
        start = text.find(" ", start) + 1
    excerpt = text[start:stop].rsplit(" ", 1)[0] if stop < len(text) else text[start:]
    return ("… " if start > 0 else "") + excerpt + (" …" if stop < len(text) else "")


def _mark_words(text: str, words: list[str]) -> str:
    """The SQLite fallback's highlighting: mark each query word in the standfirst."""
    lowered = text.lower()
    spans: list[tuple[int, int]] = []
    for word in words:
        start = lowered.find(word)
        while start != -1:
            spans.append((start, start + len(word)))
            start = lowered.find(word, start + len(word))
    out, position = [], 0
    for start, stop in sorted(spans):
        if start < position:
            continue
        out += [text[position:start], _MATCH_START, text[start:stop], _MATCH_STOP]
        position = stop
    out.append(text[position:])
    return "".join(out)


# --- listings (home, topic and author pages): one statement per page ---------------------------
# As for the article page (above), and for the same reasons: the profile of an uncached
# listing showed most of its time in building and compiling five ORM queries (a count, the
# page, authors and topics prefetched, the featured piece) and in making model instances,
# not in PostgreSQL. One statement returns the page's cards in page order, each with its
# byline and topics as JSON arrays, and how many articles the listing has in all.
_LISTING_SQL = """
        WITH listed AS (
            SELECT a.id, a.published_at, count(*) OVER () AS total
            FROM articles_article a
            WHERE a.status = %(published)s AND a.published_at <= %(now)s {where}
            ORDER BY a.published_at DESC, a.id DESC
            LIMIT %(limit)s OFFSET %(offset)s)
        SELECT a.id, a.title, a.slug, a.standfirst, a.hero_image, a.published_at, a.reading_minutes, listed.total,
               {credits}
        FROM listed JOIN articles_article a ON a.id = listed.id
        ORDER BY listed.published_at DESC, listed.id DESC
"""
# Each card's byline and topics as JSON arrays, in each database's dialect.
_LISTING_CREDITS = {
    "postgresql": """
               (SELECT json_agg(json_build_array(author.name, author.slug) ORDER BY link.position)
                    FROM articles_articleauthor link JOIN articles_author author ON author.id = link.author_id
                    WHERE link.article_id = a.id) AS authors_json,
               (SELECT json_agg(json_build_array(topic.name, topic.slug) ORDER BY link.position)
                    FROM articles_articletopic link JOIN articles_topic topic ON topic.id = link.topic_id
                    WHERE link.article_id = a.id) AS topics_json""",
    "sqlite": """
               (SELECT json_group_array(json(item)) FROM (
                    SELECT json_array(author.name, author.slug) AS item
                    FROM articles_articleauthor link JOIN articles_author author ON author.id = link.author_id
                    WHERE link.article_id = a.id ORDER BY link.position)) AS authors_json,
               (SELECT json_group_array(json(item)) FROM (
                    SELECT json_array(topic.name, topic.slug) AS item
                    FROM articles_articletopic link JOIN articles_topic topic ON topic.id = link.topic_id
                    WHERE link.article_id = a.id ORDER BY link.position)) AS topics_json""",
}
LISTING_FILTERS = {
    "all": "",
    "all-but": "AND a.id <> %(other)s",
    "featured": "AND a.is_featured",
    "topic": "AND EXISTS (SELECT 1 FROM articles_articletopic t WHERE t.article_id = a.id AND t.topic_id = %(other)s)",
    "author": "AND EXISTS (SELECT 1 FROM articles_articleauthor w WHERE w.article_id = a.id "
    "AND w.author_id = %(other)s)",
}


@dataclass(frozen=True)
class Card:
    """An article as a listing shows it: what card.html reads, nothing more."""

    id: int
    title: str
    url: str
    standfirst: str
    image_url: str
    published_at: Any
    reading_minutes: int
    authors: list[Person]
    topics: list[TopicLink]


@cache
def _listing_sql(vendor: str, kind: str) -> str:
    return _LISTING_SQL.format(where=LISTING_FILTERS[kind], credits=_LISTING_CREDITS[vendor].strip())


def _aware(value: Any) -> Any:
    value = parse_datetime(value) if isinstance(value, str) else value
    return value.replace(tzinfo=UTC) if value is not None and timezone.is_naive(value) else value


def listing(kind: str, *, other: int | None = None, limit: int = PAGE_SIZE, offset: int = 0) -> tuple[list[Card], int]:
    """One page of published articles, newest first, as cards; and how many the listing has.

    ``kind``: ``all``, ``all-but`` (every article but ``other``), ``featured``, ``topic`` or
    ``author`` (those of topic or author ``other``). The total is 0 when the page is past the end.
    """
    storage = Article._meta.get_field("hero_image").storage
    params = {"published": Article.Status.PUBLISHED.value, "now": _now(), "limit": limit, "offset": offset}
    params["other"] = other
    with prepared_cursor() as cursor:
        cursor.execute(_listing_sql(connection.vendor, kind), params)
        rows = cursor.fetchall()
    cards = [
        Card(
            id=pk,
            title=title,
            url=slug_url("articles:detail", slug),
            standfirst=standfirst,
            image_url=storage.url(image) if image else "",
            published_at=_aware(published_at),
            reading_minutes=minutes,
            authors=[Person(name=name, url=slug_url("articles:author", s), role="") for name, s in _json(a) or []],
            topics=[TopicLink(name=name, url=slug_url("articles:topic", s)) for name, s in _json(t) or []],
        )
        for pk, title, slug, standfirst, image, published_at, minutes, _total, a, t in rows
    ]
    return cards, (rows[0][7] if rows else 0)
