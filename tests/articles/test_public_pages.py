import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from django.utils import timezone

from articles.cache import bump_generation
from articles.models import Article, SiteSettings, Topic
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory, UserFactory
from tests.support.newsroom import busy_newsroom, full_article

ANATOMY_IN_ORDER = [
    "topics",
    "reading-time",
    "title",
    "standfirst",
    "hero",
    "credit",
    "byline",
    "editor",
    "date",
    "body",
    "disclaimer",
    "write-call",
    "signup",
]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_article_page_shows_every_part_of_the_anatomy_in_order(client, db):
    article = full_article()
    html = client.get(article.get_absolute_url()).content.decode()
    positions = [html.find(f'data-anatomy="{part}"') for part in ANATOMY_IN_ORDER]
    assert -1 not in positions, dict(zip(ANATOMY_IN_ORDER, positions, strict=True))
    assert positions == sorted(positions)
    text = text_of(html)
    assert "Energy | Economy" in text
    assert "8 min read" in text
    assert "Image credit: Demo Photo Desk" in text
    assert "By Anna Kowal , Ukraine Correspondent" in text
    assert "Edited/Reviewed by: Piet Lund" in text
    local = timezone.localtime(article.published_at)
    assert f"{local:%B} {local.day}, {local:%Y} | {local:%H:%M}" in text
    assert "Where things stand" in text
    assert 'alt="Pylons in a snowy field"' in html
    assert 'href="/write/"' in html


def test_article_page_shows_the_site_disclaimer_unless_the_article_has_its_own(client, db):
    site = SiteSettings.load()
    site.default_disclaimer = "Opinions are the writers' own."
    site.save()
    plain = ArticleFactory.create()
    own = ArticleFactory.create(disclaimer="The author advises a grid operator.")
    assert "Opinions are the writers' own." in unescape(client.get(plain.get_absolute_url()).content.decode())
    own_html = unescape(client.get(own.get_absolute_url()).content.decode())
    assert "The author advises a grid operator." in own_html
    assert "Opinions are the writers" not in own_html


def test_article_page_lists_the_latest_other_pieces_on_its_primary_topic(client, db):
    energy, economy = TopicFactory.create(name="Energy"), TopicFactory.create(name="Economy")
    now = timezone.now()
    article = ArticleFactory.create(topics=[energy, economy], published_at=now - timedelta(hours=1))
    for hours, title in [(2, "Newest on energy"), (3, "Second on energy"), (4, "Third on energy"), (5, "Oldest")]:
        ArticleFactory.create(title=title, topics=[economy, energy], published_at=now - timedelta(hours=hours))
    ArticleFactory.create(title="Only on the economy", topics=[economy])
    ArticleFactory.create(title="Draft on energy", topics=[energy], status=Article.Status.DRAFT)
    ArticleFactory.create(title="Tomorrow on energy", topics=[energy], published_at=now + timedelta(days=1))
    html = client.get(article.get_absolute_url()).content.decode()
    related = html.split('id="related-title"', 1)[1]
    assert "More on Energy" in related
    titles = re.findall(r'<li><a href="/articles/[^"]+/">([^<]+)</a>', related)
    assert titles == ["Newest on energy", "Second on energy", "Third on energy"]


def test_article_page_lists_authors_in_byline_order_with_roles(client, db):
    first = AuthorFactory.create(name="Mira Sand", role="Nordics Correspondent")
    second = AuthorFactory.create(name="Tom Lake", role="")
    third = AuthorFactory.create(name="Ada Reyes", role="Data Editor")
    article = ArticleFactory.create(authors=[first, second, third])
    text = text_of(client.get(article.get_absolute_url()).content.decode())
    assert "By Mira Sand , Nordics Correspondent , Tom Lake and Ada Reyes , Data Editor" in text


def test_article_without_image_or_editor_still_renders(client, db):
    article = ArticleFactory.create(authors=[AuthorFactory.create()])
    response = client.get(article.get_absolute_url())
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-anatomy="hero"' not in html
    assert "Edited/Reviewed by" not in html


def test_signup_box_posts_email_name_and_an_empty_honeypot_without_csrf_token(client, db):
    article = ArticleFactory.create()
    for url in ["/", article.get_absolute_url()]:
        html = client.get(url).content.decode()
        form = re.search(r'<form class="signup__form" action="([^"]+)" method="post">(.*?)</form>', html, re.S)
        assert form is not None, url
        assert form.group(1) == "/newsletter/subscribe/"
        fields = form.group(2)
        assert 'name="email"' in fields
        assert 'name="name"' in fields
        assert re.search(r'name="website" tabindex="-1" autocomplete="off"', fields)
        assert "csrfmiddlewaretoken" not in fields


@pytest.mark.parametrize("status", [Article.Status.DRAFT, Article.Status.IN_REVIEW, Article.Status.UNPUBLISHED])
def test_unpublished_articles_are_not_found(client, db, status):
    article = ArticleFactory.create(status=status)
    response = client.get(article.get_absolute_url())
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


def test_future_dated_article_is_not_shown_yet(client, db):
    article = ArticleFactory.create(published_at=timezone.now() + timedelta(days=1))
    assert client.get(article.get_absolute_url()).status_code == 404
    assert article.title not in client.get("/").content.decode()


def test_home_shows_the_featured_piece_first_then_the_latest(client, db):
    old_featured = ArticleFactory.create(
        title="The featured piece", is_featured=True, published_at=timezone.now() - timedelta(days=3)
    )
    newer = ArticleFactory.create(title="Yesterday's piece", published_at=timezone.now() - timedelta(days=1))
    html = unescape(client.get("/").content.decode())
    featured_section = html.split('class="featured"', 1)[1].split("</section>", 1)[0]
    assert old_featured.title in featured_section
    assert html.index(old_featured.title) < html.index("Yesterday's piece")
    assert html.count(old_featured.title) == 1
    assert newer.get_absolute_url() in html


def test_cards_date_a_piece_in_the_site_time_zone(client, db, settings):
    settings.TIME_ZONE = "Europe/Brussels"
    # Late on the 7th in UTC is already the 8th in Brussels.
    ArticleFactory.create(title="Past midnight", published_at=datetime(2026, 1, 7, 23, 30, tzinfo=UTC))
    html = client.get("/").content.decode()
    assert '<time datetime="2026-01-08T00:30:00+01:00">8 January 2026</time>' in html


def test_home_is_paginated_and_past_the_last_page_is_not_found(client, db):
    now = timezone.now()
    for number in range(14):
        ArticleFactory.create(title=f"Piece {number:02d}", published_at=now - timedelta(hours=number))
    first = client.get("/").content.decode()
    second = client.get("/?page=2").content.decode()
    assert "Piece 00" in first
    assert "Piece 11" in first
    assert "Piece 12" not in first
    assert "Piece 12" in second
    assert "Piece 13" in second
    assert "Piece 00" not in second
    assert 'rel="next" href="?page=2"' in first
    assert client.get("/?page=3").status_code == 404
    assert client.get("/?page=abc").status_code == 404


def test_topic_page_lists_only_its_articles(client, db):
    energy, economy = TopicFactory.create(name="Energy", description="Grids and gas."), TopicFactory.create()
    on_topic = ArticleFactory.create(title="About grids", topics=[economy, energy])
    off_topic = ArticleFactory.create(title="About budgets", topics=[economy])
    html = client.get(energy.get_absolute_url()).content.decode()
    assert "Grids and gas." in html
    assert on_topic.title in html
    assert off_topic.title not in html
    assert client.get("/topics/no-such-topic/").status_code == 404


def test_author_page_shows_role_bio_and_their_articles(client, db):
    author = AuthorFactory.create(name="Lena Brandt", role="Balkans Correspondent", bio="Lena covers the Balkans.")
    theirs = ArticleFactory.create(title="From Skopje", authors=[AuthorFactory.create(), author])
    other = ArticleFactory.create(title="From Madrid", authors=[AuthorFactory.create()])
    html = client.get(author.get_absolute_url()).content.decode()
    assert "Balkans Correspondent" in html
    assert "Lena covers the Balkans." in html
    assert theirs.title in html
    assert other.title not in html


def test_unknown_page_gets_the_friendly_404(client, db):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "We could not find that page" in response.content.decode()


def test_server_error_page_renders_without_a_request_context():
    from django.template.loader import render_to_string

    html = render_to_string("500.html")
    assert "Something went wrong on our side" in html


@pytest.mark.parametrize("page", ["home", "article", "topic", "author"])
def test_pages_run_a_fixed_number_of_queries(client, db, django_assert_max_num_queries, page):
    topics, authors = busy_newsroom(articles=15, authors=6, topics=6)
    article = Article.objects.published().first()
    assert article is not None
    url = {
        "home": "/",
        "article": article.get_absolute_url(),
        "topic": topics[2].get_absolute_url(),
        "author": authors[2].get_absolute_url(),
    }[page]
    with django_assert_max_num_queries(8):
        response = client.get(url)
    assert response.status_code == 200
    # Same page, with three times the articles, authors and topics: still within the limit.
    busy_newsroom(articles=30, authors=12, topics=12)
    bump_generation()  # the test transaction never commits, so invalidate by hand
    with django_assert_max_num_queries(8):
        response = client.get(url + ("?page=2" if page in {"home", "topic", "author"} else ""))
    assert response.status_code == 200


def test_article_page_reads_article_credits_and_related_pieces_in_one_query(client, db, django_assert_max_num_queries):
    SiteSettings.load()
    article = full_article()
    ArticleFactory.create(title="Also on energy", topics=list(Topic.objects.filter(slug="energy")))
    client.cookies["sessionid"] = "not-a-session"  # skip the page cache: a full render
    # The article with its credits and related pieces, the site settings, the topic menu.
    with django_assert_max_num_queries(3):
        html = client.get(article.get_absolute_url()).content.decode()
    assert "Anna Kowal" in html
    assert "Piet Lund" in html
    assert "Also on energy" in html


def test_staff_reader_sees_a_fresh_page_that_is_not_stored(client, db):
    article = ArticleFactory.create(title="Before")
    client.force_login(UserFactory.create())
    response = client.get(article.get_absolute_url())
    assert "private" in response["Cache-Control"]
    Article.objects.filter(pk=article.pk).update(title="After")  # no signal: the cache would not know
    assert "After" in client.get(article.get_absolute_url()).content.decode()
