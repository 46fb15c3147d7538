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


def article_for_page(slug: str) -> Article | None:
    """One published article with editor, authors and topics: three queries."""
    return (
        published_articles().select_related("editor").prefetch_related(*credits_prefetches()).filter(slug=slug).first()
    )


def featured_article() -> Article | None:
    return published_articles().filter(is_featured=True).first()


def with_credits(articles: Sequence[Article]) -> Sequence[Article]:
    """Attach authors and topics to an already fetched list of articles."""
    from django.db.models import prefetch_related_objects

    prefetch_related_objects(list(articles), *credits_prefetches())
    return articles


def related_articles(article: Article, limit: int = 3) -> list[Article]:
    """The latest other pieces on the article's primary topic (one query, titles only)."""
    topics = [link.topic_id for link in article.article_topics.all()]
    if not topics:
        return []
    return list(
        published_articles()
        .filter(article_topics__topic_id=topics[0])
        .exclude(pk=article.pk)
        .only("title", "slug", "published_at", "reading_minutes")[:limit]
    )


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
