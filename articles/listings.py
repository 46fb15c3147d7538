"""The home, topic, author and search-result pages: one statement per page.

As for the article page (selectors.article_for_page), and for the same reasons: profiles of
the uncached pages showed most of their time in Django building and compiling ORM queries
and making model instances, and in round trips, not in PostgreSQL answering. One statement
returns what the page shows: the topic or author it is about (home: the featured piece),
the page's cards in page order, each with its byline and topics as JSON arrays, and how
many articles the listing has in all. On PostgreSQL it is prepared once per connection.

The dates a card shows are formatted here, once per card, exactly as the templates' ``date``
and ``html_datetime`` filters would: the filters look the time zone and the month's name up
through Django's per-request state on every call, which cost more than the rest of a card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import cache, lru_cache
from typing import Any

from django.db import connection
from django.utils import timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.dates import MONTHS
from markupsafe import Markup, escape

from articles.links import Link, slug_url_in, slug_urls, url_context
from articles.models import Article, Author, Topic
from euro_prospects.db import prepared_cursor

PAGE_SIZE = 12

# An article is listed once it is published and its time has come. The status is written
# into the statement, not bound: PostgreSQL then knows that the partial indexes of
# published articles (Article.Meta) answer it, also in the plan it keeps for the statement.
LISTED = f"a.status = '{Article.Status.PUBLISHED.value}' AND a.published_at <= %(now)s"
_NEWEST_FIRST = "a.published_at DESC, a.id DESC"
_OF_TOPIC = "EXISTS (SELECT 1 FROM articles_articletopic t WHERE t.article_id = a.id AND t.topic_id = owner.id)"
_BY_AUTHOR = "EXISTS (SELECT 1 FROM articles_articleauthor w WHERE w.article_id = a.id AND w.author_id = owner.id)"

# What each kind of page is about (its owner row), which listed articles it shows and how
# they are counted. The home page's first page leads with the latest featured piece and lists
# the others; its later pages list every article.
_COUNT = "(SELECT count(*) FROM articles_article a, owner WHERE {listed} AND {filter})"
_PAGE = "SELECT 1 AS place, id FROM listed"
# On PostgreSQL the counts of published articles are kept by triggers (migration 0017), for
# the whole site and for each topic and author: a listing has those less the published
# articles whose time is still ahead, which the listed index gives from its newest end.
# Counting the listed articles instead read all of them on every view.
_AHEAD = f"a.status = '{Article.Status.PUBLISHED.value}' AND a.published_at > %(now)s"
_KEPT_ALL = (
    "(coalesce((SELECT c.published FROM articles_publishedcount c WHERE c.listing = 'all'), 0)"
    " - (SELECT count(*) FROM articles_article a WHERE {ahead}))"
)
_KEPT_OWNER = (
    "(coalesce((SELECT c.published FROM articles_publishedcount c, owner WHERE c.listing = '{kind}:' || owner.id), 0)"
    " - (SELECT count(*) FROM articles_listingentry e"
    " WHERE e.listing = (SELECT '{kind}:' || owner.id FROM owner) AND e.published_at > %(now)s))"
)
# The listed articles, newest first: the page's share of them.
_LISTED_ROWS = "SELECT a.id FROM articles_article a, owner WHERE {listed} AND {filter} ORDER BY {newest}"
# On PostgreSQL a topic's or author's published articles are kept in page order by triggers
# (migration 0019): a page is a range of their entries, whatever the topic or author has published.
# The listing is a value (a subquery), not a join with the owner: only then does PostgreSQL read
# the entries in index order and stop after the page, instead of sorting all of them.
_KEPT_LISTED_ROWS = (
    "SELECT e.article_id AS id FROM articles_listingentry e"
    " WHERE e.listing = (SELECT '{kind}:' || owner.id FROM owner) AND e.published_at <= %(now)s"
    " ORDER BY e.published_at DESC, e.article_id DESC"
)
_KINDS: dict[str, dict[str, str]] = {
    "home": {
        "owner": "SELECT 1 AS id",
        "featured": "featured AS (SELECT a.id FROM articles_article a WHERE {listed} AND a.is_featured "
        "ORDER BY {newest} LIMIT 1),",
        "filter": "a.id NOT IN (SELECT id FROM featured)",
        # all but the featured piece: counted without asking each article whether it is
        "total": "(SELECT count(*) FROM articles_article a WHERE {listed}) - (SELECT count(*) FROM featured)",
        "kept_total": _KEPT_ALL + " - (SELECT count(*) FROM featured)",  # noqa: S608 (our own SQL, no input)
        "shown": "SELECT 0 AS place, id FROM featured UNION ALL SELECT 1 AS place, id FROM listed",
    },
    "all": {
        "owner": "SELECT 1 AS id",
        "featured": "",
        "filter": "1 = 1",
        "total": _COUNT,
        "kept_total": _KEPT_ALL,
        "shown": _PAGE,
    },
    "topic": {
        "owner": "SELECT id, name, slug, description FROM articles_topic WHERE slug = %(slug)s",
        "featured": "",
        "filter": _OF_TOPIC,
        "total": _COUNT,
        "kept_total": _KEPT_OWNER.replace("{kind}", "topic"),
        "kept_listed_rows": _KEPT_LISTED_ROWS.replace("{kind}", "topic"),
        "shown": _PAGE,
    },
    "author": {
        "owner": "SELECT id, name, slug, role, bio, photo FROM articles_author WHERE slug = %(slug)s",
        "featured": "",
        "filter": _BY_AUTHOR,
        "total": _COUNT,
        "kept_total": _KEPT_OWNER.replace("{kind}", "author"),
        "kept_listed_rows": _KEPT_LISTED_ROWS.replace("{kind}", "author"),
        "shown": _PAGE,
    },
}
OWNER_FIELDS = {"home": (), "all": (), "topic": ("id", "name", "slug", "description")}
OWNER_FIELDS["author"] = ("id", "name", "slug", "role", "bio", "photo")

# A card's byline and topic line: the names and the slugs, each list in position order, as
# JSON text, `[[names], [slugs]]`. Text, not arrays: the same authors and topics come back on
# every card and every page, so the line is written once per process for each text
# (credit_line) and a card only looks it up. PostgreSQL orders inside the aggregate;
# SQLite 3.40 cannot, and keeps the order of an ordered subquery.
_CREDITS = {
    "postgresql": """(SELECT json_build_array(array_agg(credited.name ORDER BY link.position),
                                           array_agg(credited.slug ORDER BY link.position))::text
            FROM articles_article{kind} link JOIN articles_{kind} credited ON credited.id = link.{kind}_id
            WHERE link.article_id = a.id)""",
    "sqlite": """(SELECT json_array(json_group_array(name), json_group_array(slug)) FROM (
            SELECT credited.name, credited.slug
            FROM articles_article{kind} link JOIN articles_{kind} credited ON credited.id = link.{kind}_id
            WHERE link.article_id = a.id ORDER BY link.position))""",
}


def credits_sql(vendor: str, kind: str) -> str:
    """The names and slugs of an article's ``kind`` (``author`` or ``topic``), in position order."""
    return _CREDITS[vendor].format(kind=kind)


# On PostgreSQL a card's byline is read as triggers keep it (migration 0014), one index
# lookup: building it with the subquery above was a third of a listing statement's time.
_KEPT_BYLINE = "(SELECT byline.authors FROM articles_byline byline WHERE byline.article_id = a.id)"


def byline_sql(vendor: str) -> str:
    """An article's authors as ``credits_sql(vendor, "author")`` answers them, read as kept where they are."""
    return _KEPT_BYLINE if vendor == "postgresql" else credits_sql(vendor, "author")


# The owner row comes back once per card (or once, with no card, for an empty listing).
# The count reads the partial index of listed articles (migration 0011) and stops at
# nothing; the page reads the same index newest first and stops after the page.
_LISTING_SQL = """
    WITH owner AS ({owner}), {featured}
    listed AS ({listed_rows} LIMIT %(limit)s OFFSET %(offset)s),
    shown AS ({shown})
    SELECT owner.*,
           {total} AS total,
           shown.place, a.id, a.title, a.slug, a.standfirst, a.hero_image, a.published_at, a.reading_minutes,
           {authors} AS authors, {topics} AS topics
    FROM owner LEFT JOIN (shown JOIN articles_article a ON a.id = shown.id) ON 1 = 1
    ORDER BY shown.place, {newest}
"""


@cache
def listing_sql(vendor: str, kind: str) -> str:
    parts = {"listed_rows": _LISTED_ROWS} | _KINDS[kind]
    if vendor == "postgresql":
        parts |= {"total": parts["kept_total"], "listed_rows": parts.get("kept_listed_rows", _LISTED_ROWS)}
    common = {"listed": LISTED, "ahead": _AHEAD, "newest": _NEWEST_FIRST, "filter": parts["filter"]}
    return _LISTING_SQL.format(
        **common,
        **{name: parts[name].format(**common) for name in ("owner", "featured", "total", "shown", "listed_rows")},
        authors=byline_sql(vendor),
        topics=credits_sql(vendor, "topic"),
    )


@dataclass(frozen=True)
class Card:
    """An article as a listing shows it: what card.html reads, nothing more."""

    id: int
    title: str
    url: str
    standfirst: str
    image_url: str
    published_at: datetime | None
    published_iso: str  # as the html_datetime filter writes it
    published_display: str  # as the date filter writes it with 'j F Y'
    reading_minutes: int
    authors: tuple[Link, ...]
    topics: tuple[Link, ...]
    byline: Markup  # "By A and B", each name a link
    topic_line: Markup  # the topics as links


@dataclass
class Listing:
    owner: Topic | Author | None  # the topic or author the page is about
    cards: list[Card]
    total: int  # how many articles the listing has, on every page
    featured: Card | None = None


class CardDates:
    """Formats dates as the ``html_datetime`` and ``date('j F Y')`` filters do, in one time zone."""

    def __init__(self, zone: tzinfo | None = None) -> None:
        self.zone = zone or timezone.get_current_timezone()
        self.language = translation.get_language()  # the month's name is in its words

    def iso(self, value: datetime | None) -> str:
        return self.both(value)[0]

    def display(self, value: datetime | None) -> str:
        return self.both(value)[1]

    def both(self, value: datetime | None) -> tuple[str, str]:
        """``iso(value), display(value)``, remembered: the same articles' dates come back
        on every page view, and converting and formatting one cost 3 us."""
        return ("", "") if value is None else _both(value, self.zone, self.language)


@lru_cache(maxsize=8192)
def _both(value: datetime, zone: tzinfo, language: str | None) -> tuple[str, str]:
    local = value.astimezone(zone) if timezone.is_aware(value) else value
    return local.replace(microsecond=0).isoformat(), f"{local.day} {MONTHS[local.month]} {local.year:04d}"


def aware(value: Any) -> Any:
    """A datetime as PostgreSQL answers it; SQLite answers naive UTC text."""
    value = parse_datetime(value) if isinstance(value, str) else value
    return value.replace(tzinfo=UTC) if value is not None and timezone.is_naive(value) else value


Credits = tuple[tuple[Link, ...], Markup]


def credit_line(kind: str, credits: str | None, urls: tuple[Any, str]) -> Credits:
    """An article's authors (``kind`` "author") or topics ("topic") as ``credits_sql`` answers
    them: as links to their pages, and as the card's byline or topic line. ``urls``: what
    ``links.url_context()`` answered for this request."""
    return _credit_line(kind, credits or "[null, null]", *urls)


@lru_cache(maxsize=4096)
def _credit_line(kind: str, credits: str, urlconf: Any, script_prefix: str) -> Credits:
    names, slugs = json.loads(credits)  # [null, null] from PostgreSQL for none
    view_name = f"articles:{kind}"
    found = tuple(
        Link(name=name, url=slug_url_in(view_name, slug, urlconf, script_prefix))
        for name, slug in zip(names or (), slugs or (), strict=True)
    )
    return found, (byline if kind == "author" else topic_line)(found)


# A card's byline and topic line are written here rather than in the template: a listing
# shows a dozen cards, and a loop in Jinja, with its `loop` object and an escape per value,
# cost more than the rest of the card.
def byline(authors: Sequence[Link]) -> Markup:
    """The authors as a byline, "By A, B and C", each name a link (the inside of ``<span class="byline">``)."""
    named = [f'<a href="{escape(author.url)}">{escape(author.name)}</a>' for author in authors]
    if len(named) > 1:
        named[-2:] = [f"{named[-2]} and {named[-1]}"]
    return Markup("By " + ", ".join(named) if named else "")  # noqa: S704 (names and URLs escaped above)


def topic_line(topics: Sequence[Link]) -> Markup:
    """The topics as links with a bar between them (the inside of ``<p class="topic-line">``)."""
    return Markup(  # noqa: S704 (names and URLs escaped here)
        '<span aria-hidden="true"> | </span>'.join(
            f'<a href="{escape(topic.url)}">{escape(topic.name)}</a>' for topic in topics
        )
    )


def listing(kind: str, *, slug: str = "", limit: int = PAGE_SIZE, offset: int = 0) -> Listing | None:
    """One page of listed articles, newest first, as cards, in one statement.

    ``kind``: ``home`` (the latest featured piece, then the others), ``all``, ``topic`` or
    ``author`` (the articles of the topic or author with ``slug``; None if there is none).
    """
    params = {"now": now(), "limit": limit, "offset": offset, "slug": slug}
    with prepared_cursor() as cursor:
        cursor.execute(listing_sql(connection.vendor, kind), params)
        rows = cursor.fetchall()
    if not rows:
        return None
    owner_fields = OWNER_FIELDS[kind]
    width = len(owner_fields) or 1
    found = Listing(owner=_owner(kind, rows[0][:width]), cards=[], total=rows[0][width])
    storage = Article._meta.get_field("hero_image").storage
    dates, urls = CardDates(), url_context()
    url = slug_urls(urls)
    for row in rows:
        place, pk, title, card_slug, standfirst, image, published_at, minutes, authors, topics = row[width + 1 :]
        if pk is None:  # an owner with no listed articles on this page
            continue
        published_at = aware(published_at)
        (author_links, written_by), (topic_links, topic_links_line) = (
            credit_line("author", authors, urls),
            credit_line("topic", topics, urls),
        )
        iso, display = dates.both(published_at)
        card = Card(
            id=pk,
            title=title,
            url=url("articles:detail", card_slug),
            standfirst=standfirst,
            image_url=storage.url(image) if image else "",
            published_at=published_at,
            published_iso=iso,
            published_display=display,
            reading_minutes=minutes,
            authors=author_links,
            topics=topic_links,
            byline=written_by,
            topic_line=topic_links_line,
        )
        if place == 0:
            found.featured = card
        else:
            found.cards.append(card)
    return found


def _owner(kind: str, values: tuple[Any, ...]) -> Topic | Author | None:
    """The topic or author as a model instance with the fields its page shows (the rest deferred)."""
    fields = list(OWNER_FIELDS[kind])
    if kind == "topic":
        return Topic.from_db(connection.alias, fields, list(values))
    if kind == "author":
        return Author.from_db(connection.alias, fields, list(values))
    return None


def now() -> Any:
    """Now, as the database compares it (SQLite keeps naive UTC text)."""
    return connection.ops.adapt_datetimefield_value(timezone.now())
