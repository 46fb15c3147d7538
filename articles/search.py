"""The search results page: published articles matching the reader's words, one statement a page.

On PostgreSQL: full-text search over the stored, GIN-indexed vector of title (A),
standfirst (B) and body (C) (migration 0009), best first, each result with a highlighted
snippet from ``ts_headline``. On SQLite: a plain substring match on every word, newest
first, with the snippet cut and marked here.

As for the listings (articles/listings.py): one prepared statement returns the page's
results with their bylines and how many articles matched, and ``ts_headline`` runs only on
the page's rows. It is the costliest part of the page (PostgreSQL parses the text again for
it), so it reads the standfirst and the first ``SNIPPET_SOURCE`` characters of the body, not
the whole body: a match further down still finds the article, and its snippet then shows
the opening, unmarked.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

from articles.links import slug_urls
from articles.listings import LISTED, CardDates, Link, aware, credits_sql, links, now
from euro_prospects.db import prepared_cursor

PAGE_SIZE = 20
SNIPPET_SOURCE = 1000  # characters of the body that snippets are cut from

# Snippets come back from PostgreSQL with these around each match; we escape the
# text, then turn them into <mark>, so nothing from the body reaches the page raw.
_MATCH_START = "\x02"
_MATCH_STOP = "\x03"
_HEADLINE_OPTIONS = (
    f"StartSel={_MATCH_START}, StopSel={_MATCH_STOP}, MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter=' … '"
)
_TAG = re.compile(r"<")

# The page's matches, best first, with how many there are in all (counted before the
# page is cut); then, for those rows only, the snippet and the byline. A tag cut in two
# at the end of the body's first characters is dropped with the others.
_SEARCH_SQL = {
    "postgresql": """
        WITH query AS (SELECT websearch_to_tsquery('english', %(query)s) AS words),
        matched AS (
            SELECT a.id, ts_rank(a.search_vector, query.words) AS rank, a.published_at, count(*) OVER () AS total
            FROM articles_article a, query
            WHERE {listed} AND a.search_vector @@ query.words
            ORDER BY rank DESC, a.published_at DESC, a.id DESC
            LIMIT %(limit)s OFFSET %(offset)s)
        SELECT matched.total, a.title, a.slug, a.published_at,
               ts_headline('english', a.standfirst || ' '
                           || regexp_replace(left(a.body, %(source)s), '<[^>]*(>|$)', ' ', 'g'),
                           query.words, %(options)s) AS snippet,
               {authors} AS authors
        FROM matched JOIN articles_article a ON a.id = matched.id, query
        ORDER BY matched.rank DESC, matched.published_at DESC, matched.id DESC
    """,
    "sqlite": """
        SELECT count(*) OVER () AS total, a.title, a.slug, a.published_at, a.standfirst, a.body,
               {authors} AS authors
        FROM articles_article a
        WHERE {listed} AND {words}
        ORDER BY a.published_at DESC, a.id DESC
        LIMIT %(limit)s OFFSET %(offset)s
    """,
}
# SQLite: every word, in the title, standfirst or body, case-insensitively (as Django's icontains).
_SQLITE_WORD = (
    "(a.title LIKE %({name})s ESCAPE '\\' OR a.standfirst LIKE %({name})s ESCAPE '\\' "
    "OR a.body LIKE %({name})s ESCAPE '\\')"
)


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: SafeString
    authors: list[Link]
    published_at: datetime | None
    published_iso: str
    published_display: str


@cache
def search_sql(vendor: str, words: int = 0) -> str:
    condition = " AND ".join(_SQLITE_WORD.format(name=f"word{n}") for n in range(words)) or "1 = 1"
    return _SEARCH_SQL[vendor].format(listed=LISTED, authors=credits_sql(vendor, "author"), words=condition)


def search(query: str, *, limit: int = PAGE_SIZE, offset: int = 0) -> tuple[list[SearchHit], int]:
    """One page of the published articles matching ``query``, and how many match (0 past the end)."""
    params: dict[str, Any] = {"query": query, "now": now(), "limit": limit, "offset": offset}
    words = [word.lower() for word in query.split() if len(word) > 1]
    if connection.vendor == "postgresql":
        params |= {"source": SNIPPET_SOURCE, "options": _HEADLINE_OPTIONS}
        sql = search_sql("postgresql")
    else:
        terms = query.split()
        params |= {f"word{n}": "%" + _escape_like(term) + "%" for n, term in enumerate(terms)}
        sql = search_sql(connection.vendor, len(terms))
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    dates, url = CardDates(), slug_urls()
    hits = []
    for _total, title, slug, published_at, *text, authors in rows:
        if len(text) == 1:  # PostgreSQL's headline
            snippet = _highlight(text[0])
        else:
            standfirst, body = text
            snippet = _highlight(_mark_words(_fallback_excerpt(standfirst, body, words), words))
        published_at = aware(published_at)
        hits.append(
            SearchHit(
                title=title,
                url=url("articles:detail", slug),
                snippet=snippet,
                authors=links("articles:author", authors, url),
                published_at=published_at,
                published_iso=dates.iso(published_at),
                published_display=dates.display(published_at),
            )
        )
    return hits, (rows[0][0] if rows else 0)


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _highlight(fragment: str) -> SafeString:
    text = escape(html.unescape(fragment))
    return mark_safe(text.replace(_MATCH_START, "<mark>").replace(_MATCH_STOP, "</mark>"))  # noqa: S308


def _fallback_excerpt(standfirst: str, body: str, words: list[str], before: int = 100, after: int = 200) -> str:
    """About thirty words of standfirst and body around the first match."""
    plain_body = html.unescape(strip_tags(_TAG.sub(" <", body)))
    text = " ".join(f"{standfirst} {plain_body}".split())
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
