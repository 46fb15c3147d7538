"""Reads for the public site: each page runs a fixed, small number of queries.

Listings prefetch authors and topics in byline/position order (two queries for a
whole page of articles, however many authors and topics they have).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Max, Prefetch, Q, QuerySet
from django.utils import timezone
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic

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
# signed-in reader, always), so its reads are written out in SQL: on our servers
# Django's query compiler took longer than PostgreSQL took to answer (0.5-1 ms per
# query against 0.1-0.3 ms), which made the queries most of an uncached render.
# Each statement is plain SQL that PostgreSQL and SQLite both run.
_PAGE_ARTICLE_SQL = """
    SELECT id, title, slug, standfirst, body, hero_image, hero_image_alt, hero_image_credit, editor_id,
           disclaimer, published_at, updated_at, reading_minutes, meta_title, meta_description, canonical_url
    FROM articles_article
    WHERE slug = %s AND status = %s AND published_at <= %s
"""
# Who wrote and edited the article and what it is about: authors (a), topics (t)
# and the editor (e), each kind in page order.
_CREDITS_SQL = """
    SELECT 'a' AS kind, link.position, author.id, author.name, author.slug, author.role
    FROM articles_articleauthor link JOIN articles_author author ON author.id = link.author_id
    WHERE link.article_id = %(article)s
    UNION ALL
    SELECT 't', link.position, topic.id, topic.name, topic.slug, ''
    FROM articles_articletopic link JOIN articles_topic topic ON topic.id = link.topic_id
    WHERE link.article_id = %(article)s
    UNION ALL
    SELECT 'e', 0, editor.id, editor.name, editor.slug, editor.role
    FROM articles_author editor
    WHERE editor.id = %(editor)s
    ORDER BY 1, 2
"""
# Kept apart from the credits: folded into them, PostgreSQL planned the whole
# statement worse and took longer than for the two.
_RELATED_SQL = """
    SELECT other.id, other.title, other.slug, other.reading_minutes
    FROM articles_article other JOIN articles_articletopic link ON link.article_id = other.id
    WHERE link.topic_id = %(topic)s AND other.id <> %(article)s
        AND other.status = %(published)s AND other.published_at <= %(now)s
    ORDER BY other.published_at DESC, other.id DESC
    LIMIT %(limit)s
"""


def _now() -> Any:
    """Now, as the database compares it (SQLite keeps naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(timezone.now())


@dataclass
class ArticleLinks:
    """Everything an article's page links to, in page order."""

    authors: list[Author]  # byline order: the first is the byline
    topics: list[Topic]  # the first is the primary topic
    editor: Author | None
    related: list[Article]  # the latest other published pieces on the primary topic: title, slug, reading time

    @property
    def primary_topic(self) -> Topic | None:
        return self.topics[0] if self.topics else None


def article_for_page(slug: str) -> Article | None:
    """One published article with the fields its page shows (one query).

    The other fields are deferred: reading one costs a query, so the page
    must not. What it links to comes from ``article_links``.
    """
    params = [slug, Article.Status.PUBLISHED.value, _now()]
    found = list(Article.objects.raw(_PAGE_ARTICLE_SQL, params))
    return found[0] if found else None


def article_links(article: Article, related: int = 3) -> ArticleLinks:
    """Authors, topics, editor and ``related`` other pieces of ``article`` (two queries, published or not)."""
    with connection.cursor() as cursor:
        cursor.execute(_CREDITS_SQL, {"article": article.pk, "editor": article.editor_id})
        rows = cursor.fetchall()
    links = ArticleLinks(authors=[], topics=[], editor=None, related=[])
    for kind, _position, pk, name, slug, role in rows:
        if kind == "a":
            links.authors.append(Author(pk=pk, name=name, slug=slug, role=role))
        elif kind == "t":
            links.topics.append(Topic(pk=pk, name=name, slug=slug))
        else:
            links.editor = Author(pk=pk, name=name, slug=slug, role=role)
    if links.primary_topic is not None:
        params = {
            "topic": links.primary_topic.pk,
            "article": article.pk,
            "published": Article.Status.PUBLISHED.value,
            "now": _now(),
            "limit": related,
        }
        links.related = list(Article.objects.raw(_RELATED_SQL, params))
    return links


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
        from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
        from django.db.models import F, Func, TextField, Value
        from django.db.models.functions import Concat

        plain_body = Func(
            F("body"), Value("<[^>]+>"), Value(" "), Value("g"), function="regexp_replace", output_field=TextField()
        )
        vector = (
            SearchVector("title", weight="A", config="english")
            + SearchVector("standfirst", weight="B", config="english")
            + SearchVector(plain_body, weight="C", config="english")
        )
        search_query = SearchQuery(query, search_type="websearch", config="english")
        return (
            published_articles()
            .annotate(rank=SearchRank(vector, search_query))
            .filter(rank__gt=0)
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
