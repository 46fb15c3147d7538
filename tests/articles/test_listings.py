"""articles.listings: what the one-statement listings count and how their cards show dates."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone, translation

from articles import listings
from euro_prospects.jinja2 import date, html_datetime
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory

MOMENTS = [
    datetime(2026, 1, 7, 10, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=UTC),  # an hour before Brussels moves its clocks on
    datetime(2026, 3, 29, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, 12, 408674, tzinfo=UTC),  # the hour Brussels lives twice
    datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 30, tzinfo=UTC),  # already next year in Brussels
    datetime(999, 5, 1, 12, 0, tzinfo=UTC),  # a year of three digits is written with four
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
@pytest.mark.parametrize("zone", ["Europe/Brussels", "America/St_Johns", "UTC"])
def test_card_dates_are_what_the_template_filters_wrote(moment, zone):
    with timezone.override(ZoneInfo(zone)):
        dates = listings.CardDates()
        assert dates.iso(moment) == html_datetime(moment)
        assert dates.display(moment) == date(moment, "j F Y")
        assert dates.both(moment) == (html_datetime(moment), date(moment, "j F Y"))


def test_card_dates_name_the_month_in_the_active_language():
    moment = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    with translation.override("de"):
        assert listings.CardDates().display(moment) == date(moment, "j F Y") == "4 Mai 2026"
        assert listings.CardDates().both(moment)[1] == "4 Mai 2026"
    assert listings.CardDates().display(moment) == "4 May 2026"
    assert listings.CardDates().both(moment)[1] == "4 May 2026"  # remembered per language


def test_card_dates_of_no_date_are_empty():
    assert listings.CardDates().iso(None) == listings.CardDates().display(None) == ""
    assert listings.CardDates().both(None) == ("", "")


@pytest.fixture
def newsroom(db):
    energy = TopicFactory.create(name="Energy", slug="energy")
    ana = AuthorFactory.create(name="Ana Field", slug="ana-field")
    now = timezone.now()
    for number in range(30):
        ArticleFactory.create(
            title=f"Piece {number:02d}",
            published_at=now - timedelta(hours=number),
            topics=[energy] if number % 3 == 0 else [],
            authors=[ana] if number % 5 == 0 else [AuthorFactory.create()],
            is_featured=number in (6, 9),
        )
    # Not listed: a draft, a piece scheduled for tomorrow, a withdrawn one.
    ArticleFactory.create(status="draft", published_at=None, topics=[energy], authors=[ana])
    ArticleFactory.create(published_at=now + timedelta(days=1), topics=[energy], authors=[ana])
    ArticleFactory.create(status="unpublished", published_at=now - timedelta(days=2), topics=[energy], authors=[ana])
    return now


def test_the_home_page_leads_with_the_latest_featured_piece_and_counts_the_others(newsroom):
    home = listings.listing("home")
    assert home is not None
    assert home.featured is not None
    assert home.featured.title == "Piece 06"
    assert [card.title for card in home.cards][:7] == ["Piece 00", "Piece 01", "Piece 02", "Piece 03", "Piece 04",
                                                       "Piece 05", "Piece 07"]  # fmt: skip
    assert len(home.cards) == listings.PAGE_SIZE
    assert home.total == 29  # thirty listed, less the featured piece
    later = listings.listing("all", offset=24)
    assert later is not None
    assert (later.featured, later.total, [card.title for card in later.cards]) == (
        None,
        30,
        ["Piece 24", "Piece 25", "Piece 26", "Piece 27", "Piece 28", "Piece 29"],
    )


def test_topic_and_author_listings_count_only_their_listed_articles(newsroom):
    topic = listings.listing("topic", slug="energy")
    assert topic is not None
    assert topic.owner is not None
    assert topic.owner.name == "Energy"
    assert topic.total == 10
    assert [card.title for card in topic.cards][:3] == ["Piece 00", "Piece 03", "Piece 06"]
    author = listings.listing("author", slug="ana-field", offset=5)
    assert author is not None
    assert (author.total, [card.title for card in author.cards]) == (6, ["Piece 25"])
    past_the_end = listings.listing("author", slug="ana-field", offset=12)
    assert past_the_end is not None
    assert (past_the_end.total, past_the_end.cards) == (6, [])
    assert listings.listing("topic", slug="nothing-here") is None


def test_a_card_carries_its_byline_topics_and_dates(newsroom):
    topic = listings.listing("topic", slug="energy")
    assert topic is not None
    card = topic.cards[0]
    assert card.url == "/articles/" + card.url.split("/")[2] + "/"
    assert [(author.name, author.url) for author in card.authors] == [("Ana Field", "/authors/ana-field/")]
    assert [(link.name, link.url) for link in card.topics] == [("Energy", "/topics/energy/")]
    assert card.published_iso == html_datetime(card.published_at)
    assert card.published_display == date(card.published_at, "j F Y")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_prepared_statements_are_planned_once_per_connection():
    connection.close()
    listings.listing("home")
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)


def test_bylines_and_topic_lines_read_as_a_sentence_and_escape_names():
    from articles.links import Link

    ana, ben = Link("Ana Field", "/authors/ana-field/"), Link("Ben <b>Moss</b>", "/authors/ben-moss/")
    cem = Link("Cem & Co", '/authors/cem"/')
    assert listings.byline([]) == ""
    assert listings.byline([ana]) == 'By <a href="/authors/ana-field/">Ana Field</a>'
    assert listings.byline([ana, ben]) == (
        'By <a href="/authors/ana-field/">Ana Field</a>'
        ' and <a href="/authors/ben-moss/">Ben &lt;b&gt;Moss&lt;/b&gt;</a>'
    )
    assert listings.byline([ana, ben, cem]) == (
        'By <a href="/authors/ana-field/">Ana Field</a>, <a href="/authors/ben-moss/">Ben &lt;b&gt;Moss&lt;/b&gt;</a>'
        ' and <a href="/authors/cem&#34;/">Cem &amp; Co</a>'
    )
    assert listings.topic_line([Link("Energy", "/topics/energy/"), Link("R&D", "/topics/r-d/")]) == (
        '<a href="/topics/energy/">Energy</a><span aria-hidden="true"> | </span><a href="/topics/r-d/">R&amp;D</a>'
    )


# --- the kept counts of published articles (PostgreSQL, migration 0017) ---------------------------

_FRESH_COUNTS = """
    SELECT 'all', count(*) FROM articles_article a
    WHERE a.status = 'published' AND a.published_at IS NOT NULL
    UNION ALL
    SELECT 'topic:' || t.topic_id, count(*)
    FROM articles_articletopic t JOIN articles_article a ON a.id = t.article_id
    WHERE a.status = 'published' AND a.published_at IS NOT NULL GROUP BY t.topic_id
    UNION ALL
    SELECT 'author:' || w.author_id, count(*)
    FROM articles_articleauthor w JOIN articles_article a ON a.id = w.article_id
    WHERE a.status = 'published' AND a.published_at IS NOT NULL GROUP BY w.author_id
"""


# Every published article in each of its topics' and authors' listings (migration 0019).
_FRESH_ENTRIES = """
    SELECT 'topic:' || t.topic_id, a.published_at, a.id
    FROM articles_articletopic t JOIN articles_article a ON a.id = t.article_id
    WHERE a.status = 'published' AND a.published_at IS NOT NULL
    UNION ALL
    SELECT 'author:' || w.author_id, a.published_at, a.id
    FROM articles_articleauthor w JOIN articles_article a ON a.id = w.article_id
    WHERE a.status = 'published' AND a.published_at IS NOT NULL
"""


def kept_counts() -> dict[str, int]:
    """The kept counts, checked against the articles and links as they are (a listing that
    no longer has any published article may keep a count of 0); the kept listing entries too."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT listing, published FROM articles_publishedcount")
        kept = dict(cursor.fetchall())
        cursor.execute(_FRESH_COUNTS)
        fresh = dict(cursor.fetchall())
        cursor.execute("SELECT listing, published_at, article_id FROM articles_listingentry")
        kept_entries = sorted(cursor.fetchall())
        cursor.execute(_FRESH_ENTRIES)
        fresh_entries = sorted(cursor.fetchall())
    assert {listing: count for listing, count in kept.items() if count} == {
        listing: count for listing, count in fresh.items() if count
    }
    assert kept_entries == fresh_entries
    return kept


def totals(topic, author) -> tuple[int, int, int]:
    """What the home page (less its featured piece), the topic's and the author's pages say they list."""
    found = [
        listings.listing("home"),
        listings.listing("topic", slug=topic.slug),
        listings.listing("author", slug=author.slug),
    ]
    return tuple(listing.total if listing else -1 for listing in found)  # type: ignore[return-value]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the kept counts are PostgreSQL's")
def test_published_counts_are_kept_through_every_change(newsroom):
    from articles.models import Article, ArticleAuthor, ArticleTopic, Author, Topic

    energy, ana = Topic.objects.get(slug="energy"), Author.objects.get(slug="ana-field")
    kept = kept_counts()
    assert (kept["all"], kept[f"topic:{energy.pk}"], kept[f"author:{ana.pk}"]) == (31, 11, 7)  # one ahead
    assert totals(energy, ana) == (29, 10, 6)

    # Publishing the draft through the ORM; taking a piece down with update().
    draft = Article.objects.get(status="draft")
    draft.status, draft.published_at = "published", newsroom - timedelta(minutes=1)
    draft.save()
    kept_counts()
    assert totals(energy, ana) == (30, 11, 7)
    Article.objects.filter(pk=draft.pk).update(status="unpublished")
    kept_counts()
    assert totals(energy, ana) == (29, 10, 6)

    # The piece scheduled for tomorrow is counted but not listed until its time; moved to the
    # past (no change of status, so no count changes), it is listed.
    ahead = Article.objects.get(published_at__gt=newsroom)
    Article.objects.filter(pk=ahead.pk).update(published_at=newsroom - timedelta(days=3))
    assert kept_counts() == kept
    assert totals(energy, ana) == (30, 11, 7)

    # Links added, reordered, moved and removed, on published and unpublished pieces.
    piece = Article.objects.get(title="Piece 01")
    other = Topic.objects.create(name="Farming", slug="farming")
    link = ArticleTopic.objects.create(article=piece, topic=energy, position=3)
    ArticleTopic.objects.create(article=draft, topic=other, position=1)  # unpublished: not counted
    assert f"topic:{other.pk}" not in kept_counts()
    assert totals(energy, ana) == (30, 12, 7)
    ArticleTopic.objects.filter(pk=link.pk).update(position=0)
    ArticleTopic.objects.filter(pk=link.pk).update(topic=other)
    assert kept_counts()[f"topic:{other.pk}"] == 1
    assert totals(energy, ana) == (30, 11, 7)
    ArticleAuthor.objects.bulk_create([ArticleAuthor(article=piece, author=ana, position=5)])
    kept_counts()
    assert totals(energy, ana) == (30, 11, 8)
    ArticleAuthor.objects.filter(article=piece, author=ana).delete()
    kept_counts()

    # Deleting through the ORM: a piece (its links go first), a topic, an author.
    Article.objects.get(title="Piece 03").delete()
    kept_counts()
    assert totals(energy, ana) == (29, 10, 7)
    other.delete()
    Author.objects.get(pk=ArticleAuthor.objects.get(article__title="Piece 04").author_id).delete()
    kept_counts()
    # A piece deleted before its links, in one transaction (the links' constraint waits for the commit).
    piece_six = Article.objects.get(title="Piece 00")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM articles_article WHERE id = %s", [piece_six.pk])
        kept_counts()
        cursor.execute("DELETE FROM articles_articletopic WHERE article_id = %s", [piece_six.pk])
        cursor.execute("DELETE FROM articles_articleauthor WHERE article_id = %s", [piece_six.pk])
    kept = kept_counts()
    assert totals(energy, ana) == (28, 9, 6)

    # Counted afresh, a wrong count is put right.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE articles_publishedcount SET published = 500 WHERE listing = 'all'")
        cursor.execute("SELECT articles_recount_published()")
    assert kept_counts()["all"] == kept["all"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the kept counts are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_published_counts_are_emptied_with_the_links_or_the_articles():
    energy, ana = TopicFactory.create(slug="energy"), AuthorFactory.create(slug="ana-field")
    ArticleFactory.create(topics=[energy], authors=[ana])
    assert set(kept_counts()) == {"all", f"topic:{energy.pk}", f"author:{ana.pk}"}
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE articles_articletopic")
    assert set(kept_counts()) == {"all", f"author:{ana.pk}"}
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE articles_article CASCADE")
    assert kept_counts() == {}
