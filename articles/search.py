"""The search results page: published articles matching the reader's words, one statement a page.

On PostgreSQL: full-text search over the stored vector of title (A), standfirst (B) and
body (C) (migration 0009), best first (``ts_rank``), newest first among equals. The
matches are found and ranked in ``articles_searchentry``, a narrow table holding the
published articles' vectors with their GIN index, which a trigger keeps (migration 0013).
A long article, whose full vector PostgreSQL keeps out of line, is ranked by a short one kept
in the row beside it: its title, standfirst and body's opening (migration 0015). Reading a
thousand full vectors from out of line cost most of a results page.
A search of one word (its one lexeme) does not rank its matches at all: it reads them ranked
from ``articles_searchterm``, which holds each lexeme of each entry with the rank a search for
it alone gives (migration 0016), in an index in search order.
The results' bylines come ready from ``articles_byline``, which triggers keep too
(migration 0014): a results page reads no author.
On SQLite: a plain substring match on every word, newest first.

As for the listings (articles/listings.py): one prepared statement returns the page's
results with their bylines, how many articles matched and, on PostgreSQL, the query's
words as the search saw them (its lexemes, as JSON text, parsed once).

Snippets are cut here, from the standfirst and the body's opening (``Article.opening_text``:
the first ``articles.html.OPENING_LENGTH`` characters of the body as plain text, stored on save), around
the first word that matches, with every matching word marked. On
PostgreSQL a word matches when its Snowball English stem is one of the query's lexemes:
the stemmer of PostgreSQL's ``english`` configuration, so "negotiations" is marked for
"negotiators" as the search found it. On SQLite a word matches when it contains a query
word. A match further down the body still finds the article, and its snippet then shows
the opening, unmarked. (PostgreSQL's ``ts_headline`` did this before: it parsed every
result's text again, and cost more than the rest of the page together.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any

from django.db import connection
from django.utils.safestring import SafeString
from markupsafe import Markup

from articles.links import Link, slug_urls, url_context
from articles.listings import LISTED, CardDates, aware, credit_line, credits_sql, now
from euro_prospects.db import prepared_cursor

PAGE_SIZE = 20
SNIPPET_BEFORE, SNIPPET_AFTER = 100, 200  # characters of text around the first match

# The page's matches, best first, with how many there are in all (counted before the page
# is cut); then, for those rows only, their text and byline.
_SEARCH_SQL = {
    # A query of one lexeme (one word, or a phrase of one) reads its matches ranked, in
    # search order, from articles_searchterm (migration 0016): the page is the first rows of
    # the word's index entries, the count an index-only scan of them. Any other query finds
    # and ranks its matches in articles_searchentry. Each way is cut off by a one-time
    # filter when the other applies, so the statement does one or the other.
    # The matches are kept, narrow, in a materialized CTE that both the count and the page
    # read: `count(*) OVER ()` made PostgreSQL hold every matching row, search vector and
    # all, before it could rank them (2.63 against 2.36 ms for the statement when all 1,000
    # of the bench's articles match).
    "postgresql": """
        WITH query AS (SELECT websearch_to_tsquery('english', %(query)s) AS words,
                              array_to_json(tsvector_to_array(to_tsvector('english', %(query)s)))::text AS lexemes),
        term AS (SELECT CASE WHEN numnode(words) = 1 THEN (tsvector_to_array(words::text::tsvector))[1] END AS lexeme
                 FROM query),
        matched AS MATERIALIZED (
            SELECT s.article_id AS id, s.published_at,
                   ts_rank(coalesce(s.rank_vector, s.search_vector), query.words) AS rank
            FROM articles_searchentry s, query
            WHERE (SELECT lexeme FROM term) IS NULL
              AND s.published_at <= %(now)s AND s.search_vector @@ query.words),
        shown AS (
            (SELECT t.article_id AS id, t.published_at, t.rank
             FROM articles_searchterm t
             WHERE t.lexeme = (SELECT lexeme FROM term) AND t.published_at <= %(now)s
             ORDER BY t.rank DESC, t.published_at DESC, t.article_id DESC
             LIMIT %(limit)s OFFSET %(offset)s)
            UNION ALL
            (SELECT * FROM matched ORDER BY rank DESC, published_at DESC, id DESC
             LIMIT %(limit)s OFFSET %(offset)s))
        SELECT CASE WHEN (SELECT lexeme FROM term) IS NULL THEN (SELECT count(*) FROM matched)
                    ELSE (SELECT count(*) FROM articles_searchterm t
                          WHERE t.lexeme = (SELECT lexeme FROM term) AND t.published_at <= %(now)s) END,
               query.lexemes, a.title, a.slug, a.published_at, a.standfirst, a.opening_text, byline.authors
        FROM shown JOIN articles_article a ON a.id = shown.id
             LEFT JOIN articles_byline byline ON byline.article_id = shown.id, query
        ORDER BY shown.rank DESC, shown.published_at DESC, shown.id DESC
    """,
    "sqlite": """
        SELECT count(*) OVER () AS total, NULL, a.title, a.slug, a.published_at, a.standfirst,
               a.opening_text, {authors} AS authors
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
Span = tuple[int, int]


@dataclass(frozen=True)
class SearchHit:
    title: str
    url: str
    snippet: SafeString
    authors: tuple[Link, ...]
    byline: Markup
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
    terms = query.split()
    if connection.vendor == "postgresql":
        sql = search_sql("postgresql")
    else:
        params |= {f"word{n}": "%" + _escape_like(term) + "%" for n, term in enumerate(terms)}
        sql = search_sql(connection.vendor, len(terms))
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    dates, urls = CardDates(), url_context()
    url = slug_urls(urls)
    words = [term.lower() for term in terms if len(term) > 1]  # not every "a" in the text
    # PostgreSQL's lexemes, the same on every row: parsed once
    lexemes = tuple(json.loads(rows[0][1] or "[]")) if rows and connection.vendor == "postgresql" else None
    hits = []
    for _total, _lexemes, title, slug, published_at, standfirst, opening, authors in rows:
        text = plain_text(standfirst, opening)
        spans = stem_matches(text, lexemes) if lexemes is not None else substring_matches(text, words)
        published_at = aware(published_at)
        author_links, written_by = credit_line("author", authors, urls)
        iso, display = dates.both(published_at)
        hits.append(
            SearchHit(
                title=title,
                url=url("articles:detail", slug),
                snippet=snippet(text, spans),
                authors=author_links,
                byline=written_by,
                published_at=published_at,
                published_iso=iso,
                published_display=display,
            )
        )
    return hits, (rows[0][0] if rows else 0)


def plain_text(standfirst: str, opening: str) -> str:
    """The standfirst and the body's opening text as one line."""
    standfirst = " ".join(standfirst.split())
    return f"{standfirst} {opening}" if standfirst and opening else standfirst or opening


@cache
def _english() -> Any:
    # Imported on the first search, not with the URLs: the package loads the stemmers of
    # thirty languages (about 3 MB in every web process and worker).
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=50_000)
def _stem(word: str) -> str:
    return _english().stemWord(word.lower())


def stem_matches(text: str, lexemes: Sequence[str]) -> list[Span]:
    """Where in ``text`` the words whose stem is one of ``lexemes`` are, as far as a snippet
    from the first of them reaches (``snippet_end``).

    Stemming keeps a word's first two letters, so only the words that begin like a lexeme
    are stemmed; they are found in the lower-cased text (as the lexemes are).
    """
    if not lexemes:
        return []
    found, starts = _lexeme_starts(tuple(lexemes))
    lowered = text.lower()
    flags = 0
    if len(lowered) != len(text):  # a letter whose lower case is longer would move the positions
        lowered, flags = text, re.IGNORECASE
    spans: list[Span] = []
    end = len(text)
    for match in _words_beginning(starts, flags).finditer(lowered):
        start = match.start()
        if start >= end:
            break
        if start and (lowered[start - 1].isalnum() or lowered[start - 1] == "_"):
            continue  # inside a word
        if _stem(match.group()) in found:
            spans.append(match.span())
            if len(spans) == 1:
                end = snippet_end(start)
    return spans


@lru_cache(maxsize=256)
def _lexeme_starts(lexemes: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The lexemes as a set, and the first two letters they begin with (once per search, not per result)."""
    return frozenset(lexemes), tuple(sorted({lexeme[:2] for lexeme in lexemes}))


@lru_cache(maxsize=256)
def _words_beginning(starts: tuple[str, ...], flags: int) -> re.Pattern[str]:
    # Not r"\b(?:...": a pattern that begins with its letters is looked for as fast as str.find;
    # one that begins with \b is tried at every position (25 against 4 us for a result's text).
    return re.compile("(?:" + "|".join(map(re.escape, starts)) + r")\w*", flags)


def substring_matches(text: str, words: list[str]) -> list[Span]:
    """Where in ``text`` each of ``words`` occurs, case-insensitively, in order."""
    lowered = text.lower()
    spans = []
    for word in words:
        start = lowered.find(word)
        while start != -1:
            spans.append((start, start + len(word)))
            start = lowered.find(word, start + len(word))
    return sorted(spans)


def snippet_end(first: int) -> int:
    """Where a snippet around a first match at ``first`` ends at the latest."""
    return max(first - SNIPPET_BEFORE, 0) + SNIPPET_BEFORE + SNIPPET_AFTER


def snippet(text: str, spans: list[Span]) -> SafeString:
    """About forty words of ``text`` from a little before the first match, matches marked."""
    start = max(spans[0][0] - SNIPPET_BEFORE, 0) if spans else 0
    stop = snippet_end(spans[0][0]) if spans else SNIPPET_BEFORE + SNIPPET_AFTER
    if start > 0:  # begin and end at a word, never after the first match
        start = min(text.find(" ", start) + 1, spans[0][0])
    if stop < len(text):
        stop = max(text.rfind(" ", start, stop), start)
    out, position = ["… "] if start > 0 else [], start
    for first, last in spans:
        if first < position or last > stop:
            continue
        out += [_escape_text(text[position:first]), "<mark>", _escape_text(text[first:last]), "</mark>"]
        position = last
    out.append(_escape_text(text[position:stop]))
    if stop < len(text):
        out.append(" …")
    return SafeString("".join(out))  # every piece of text is escaped above


def _escape_text(text: str) -> str:
    """``text`` as the content of an element, where only ``&``, ``<`` and ``>`` need escaping
    (and most snippets have none of them: the check costs less than the escaping)."""
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
