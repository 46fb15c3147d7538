from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from articles.models import Article
from tests.support.factories import ArticleFactory, AuthorFactory


def test_search_finds_published_articles_and_highlights_the_match(client, db):
    ArticleFactory.create(
        title="Interconnectors and the single grid",
        standfirst="Cables under the sea link national power markets.",
        body="<p>The interconnectors carry power between neighbours.</p>",
        authors=[AuthorFactory.create(name="Ola Berg")],
    )
    ArticleFactory.create(title="Budget talks resume", standfirst="Money for farms.", body="<p>Money.</p>")
    ArticleFactory.create(title="Draft about interconnectors", status=Article.Status.DRAFT, published_at=None)
    html = client.get("/search/", {"q": "interconnectors"}).content.decode()
    assert "1 result for" in html
    assert "Interconnectors and the single grid" in html
    assert "Budget talks resume" not in html
    assert "Draft about interconnectors" not in html
    assert "<mark>" in html
    assert "By <a" in html
    assert "Ola Berg" in html


def test_search_ranks_title_matches_above_body_matches_on_postgresql(client, db):
    now = timezone.now()
    ArticleFactory.create(title="Notes from the summit", body="<p>Some talk of fisheries.</p>", published_at=now)
    ArticleFactory.create(
        title="Fisheries quotas explained", body="<p>Quotas.</p>", published_at=now - timedelta(days=5)
    )
    html = client.get("/search/", {"q": "fisheries"}).content.decode()
    assert "2 results for" in html
    if connection.vendor == "postgresql":
        assert html.index("Fisheries quotas explained") < html.index("Notes from the summit")


def test_search_snippet_escapes_article_text(client, db):
    ArticleFactory.create(
        title="Markup", standfirst="Watch <script>alert(1)</script> tariffs", body="<p>tariffs &amp; <b>duties</b></p>"
    )
    html = client.get("/search/", {"q": "tariffs"}).content.decode()
    assert "<script>alert(1)</script>" not in html


def test_empty_search_shows_the_form_and_no_results(client, db):
    response = client.get("/search/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="q"' in html
    assert "result" not in html.split("</header>", 2)[-1].lower().replace("results", "")


def test_search_counts_a_single_result_in_the_singular(client, db):
    ArticleFactory.create(title="Zeppelins over the Baltic")
    html = client.get("/search/", {"q": "zeppelin"}).content.decode()
    assert "1 result for" in html


def test_search_with_no_match_says_so(client, db):
    ArticleFactory.create(title="Something else")
    html = client.get("/search/", {"q": "zeppelin"}).content.decode()
    assert "0 results for" in html
    assert "Nothing matched" in html


def test_search_on_postgresql_reads_the_stored_indexed_vector_kept_up_to_date(client, db):
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the stored search vector is PostgreSQL's")
    article = ArticleFactory.create(title="Harbour dues", body="<p>Nothing about shipping yet.</p>")
    with CaptureQueriesContext(connection) as queries:
        assert "Harbour dues" not in client.get("/search/", {"q": "icebreakers"}).content.decode()
    assert any("search_vector" in query["sql"] for query in queries.captured_queries)
    article.body = "<p>Two <strong>icebreakers</strong> keep the port open.</p>"
    article.save()
    assert "Harbour dues" in client.get("/search/", {"q": "icebreakers"}).content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'article_search_vector'")
        assert "gin (search_vector)" in cursor.fetchone()[0]
