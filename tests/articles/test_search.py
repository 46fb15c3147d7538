import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from articles.models import Article, ArticleAuthor, Author
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


def test_search_with_a_nul_character_searches_without_it(client, db):
    ArticleFactory.create(title="Harbour lighthouse")
    response = client.get("/search/?q=light%00house")
    assert response.status_code == 200  # was a 500 on PostgreSQL, which refuses NUL in text
    assert "1 result for" in response.content.decode()
    assert client.get("/search/?q=%00").status_code == 200


def test_search_with_no_match_says_so(client, db):
    ArticleFactory.create(title="Something else")
    html = client.get("/search/", {"q": "zeppelin"}).content.decode()
    assert "0 results for" in html
    assert "Nothing matched" in html


def found(client, words: str) -> str:
    return client.get("/search/", {"q": words}).content.decode()


def search_entries() -> dict[int, tuple]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT article_id, published_at, search_vector::text FROM articles_searchentry")
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_search_on_postgresql_ranks_in_the_narrow_table_its_trigger_keeps(client, db):
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the search entries are PostgreSQL's")
    article = ArticleFactory.create(title="Harbour dues", body="<p>Nothing about shipping yet.</p>")
    draft = ArticleFactory.create(title="Harbour pilots", status=Article.Status.DRAFT, published_at=None)
    assert set(search_entries()) == {article.pk}  # published articles only
    with CaptureQueriesContext(connection) as queries:
        assert "Harbour dues" not in found(client, "icebreakers")
    assert any("articles_searchentry" in query["sql"] for query in queries.captured_queries)

    # An edit through the ORM: the new words are found, the old ones no longer.
    article.body = "<p>Two <strong>icebreakers</strong> keep the port open.</p>"
    article.save()
    assert "Harbour dues" in found(client, "icebreakers")
    assert "Harbour dues" not in found(client, "shipping")
    # A write that bypasses save(), and a bulk update.
    Article.objects.filter(pk=article.pk).update(standfirst="Tugboats wait in the fog.")
    assert "Harbour dues" in found(client, "tugboats")
    Article.objects.filter(pk__in=[article.pk, draft.pk]).update(title="Harbour fees")
    assert "Harbour fees" in found(client, "fees")
    assert "1 result for" in found(client, "fees")  # the draft is still not searched

    # Publishing adds the entry; scheduling for later keeps it out of the results until then.
    Article.objects.filter(pk=draft.pk).update(
        status=Article.Status.PUBLISHED, published_at=timezone.now() + timedelta(hours=1)
    )
    assert set(search_entries()) == {article.pk, draft.pk}
    assert "1 result for" in found(client, "fees")
    Article.objects.filter(pk=draft.pk).update(published_at=timezone.now() - timedelta(minutes=1))
    assert "2 results for" in found(client, "fees")

    # Taking a piece down, or deleting it, removes it from search.
    Article.objects.filter(pk=draft.pk).update(status=Article.Status.DRAFT)
    assert set(search_entries()) == {article.pk}
    article.delete()
    assert search_entries() == {}
    assert "0 results for" in found(client, "icebreakers")

    # The entry holds exactly what articles_article generates.
    again = ArticleFactory.create(title="Ferry timetables", standfirst="Winter crossings.")
    with connection.cursor() as cursor:
        cursor.execute("SELECT published_at, search_vector::text FROM articles_article WHERE id = %s", [again.pk])
        assert search_entries()[again.pk] == cursor.fetchone()
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'search_entry_vector'")
        assert "gin (search_vector)" in cursor.fetchone()[0]


def rank_vectors() -> dict[int, tuple]:
    """Each entry's kept rank vector, and the one of its article's title, standfirst and opening."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT s.article_id, s.rank_vector::text,
                      (setweight(to_tsvector('english', a.title), 'A')
                       || setweight(to_tsvector('english', left(a.standfirst, 1000)), 'B')
                       || setweight(to_tsvector('english', a.opening_text), 'C'))::text
               FROM articles_searchentry s JOIN articles_article a ON a.id = s.article_id"""
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_a_long_article_is_ranked_by_its_title_standfirst_and_opening(client, db):
    if connection.vendor != "postgresql":
        pytest.skip("the search entries are PostgreSQL's")
    # Some 4 KB of vector: more than fits in the entry's row, as for any article of the usual length.
    filler = "".join(f"<p>Harbour note {n}: quay{n} crane{n} berth{n} tide{n}.</p>" for n in range(150))
    deep = ArticleFactory.create(
        title="Winter moorings",
        body=filler + "<p>The old lighthouse keeps its lamp lit.</p>",
        published_at=timezone.now() - timedelta(hours=1),
    )
    opening = ArticleFactory.create(
        title="Summer moorings",
        body="<p>The old lighthouse keeps its lamp lit.</p>" + filler,
        published_at=timezone.now() - timedelta(hours=2),
    )
    short = ArticleFactory.create(title="Spring moorings", body="<p>A short note on a lighthouse.</p>")
    kept = rank_vectors()
    # The long ones: their title, standfirst and opening, as the function of migration 0015 writes them.
    assert kept[deep.pk][0] == kept[deep.pk][1]
    assert "'lighthous'" not in kept[deep.pk][0]
    assert kept[opening.pk][0] == kept[opening.pk][1]
    assert "'lighthous'" in kept[opening.pk][0]
    assert kept[short.pk][0] is None  # its whole vector is in the row: search ranks by that

    # Both long ones are found; the word in the opening counts, the one deep in the body does not,
    # so the older piece comes first. (Ranked by their whole text they tie, and the newer would.)
    html = found(client, "lighthouse")
    assert "3 results for" in html
    assert html.index("Spring moorings") < html.index("Summer moorings") < html.index("Winter moorings")

    # An edit that brings the word into the opening is ranked as such at once.
    deep.body = "<p>The old lighthouse keeps its lamp lit.</p>" + filler
    deep.save()
    assert "'lighthous'" in rank_vectors()[deep.pk][0]
    html = found(client, "lighthouse")
    assert html.index("Winter moorings") < html.index("Summer moorings")


@pytest.mark.django_db(transaction=True)
def test_search_entries_are_emptied_with_the_articles_table(client):
    if connection.vendor != "postgresql":
        pytest.skip("the search entries are PostgreSQL's")
    ArticleFactory.create(title="Harbour dues")
    assert len(search_entries()) == 1
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE articles_article CASCADE")
    assert search_entries() == {}
    assert search_terms() == set()


def search_terms() -> set[tuple]:
    """Every kept term: (lexeme, article, publication time, rank)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT lexeme, article_id, published_at, rank FROM articles_searchterm")
        return set(cursor.fetchall())


def terms_of_the_entries() -> set[tuple]:
    """The terms as the entries give them: each lexeme of each entry's vector, ranked as a search
    for it alone ranks the entry (its query made from the lexeme as a one-word vector prints it)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT lexeme, s.article_id, s.published_at,
                      ts_rank(coalesce(s.rank_vector, s.search_vector),
                              array_to_tsvector(ARRAY[lexeme])::text::tsquery)
               FROM articles_searchentry s, unnest(tsvector_to_array(s.search_vector)) AS lexeme"""
        )
        return set(cursor.fetchall())


def ranked_by_postgresql(words: str) -> list[str]:
    """The titles matching ``words``, ranked in the entries as any search of several words is."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT a.title
               FROM articles_searchentry s JOIN articles_article a ON a.id = s.article_id,
                    websearch_to_tsquery('english', %s) AS q
               WHERE s.search_vector @@ q AND s.published_at <= %s
               ORDER BY ts_rank(coalesce(s.rank_vector, s.search_vector), q) DESC,
                        s.published_at DESC, s.article_id DESC""",
            [words, timezone.now()],  # the time search goes by (the suite may set the clock)
        )
        return [row[0] for row in cursor.fetchall()]


def test_a_one_word_search_reads_its_kept_terms_in_the_order_ranking_every_match_gives(db):
    if connection.vendor != "postgresql":
        pytest.skip("the search terms are PostgreSQL's")
    from articles import search

    now = timezone.now()
    filler = "".join(f"<p>Harbour note {n}: quay{n} crane{n} berth{n} tide{n}.</p>" for n in range(150))
    texts = [
        ("Ferries and harbours", "Ferries run late.", "<p>The ferry to the harbour waits.</p>"),
        ("Harbour dues rise", "Ports charge more.", "<p>Ferries pay harbour dues, ferries pay twice.</p>"),
        ("Fishing quotas", "Harbours empty.", "<p>Quotas cut; the ferries still run.</p>"),
        ("Ferry timetables", "Winter crossings.", "<p>Timetables for the harbour ferries.</p>"),
        ("Winter moorings", "A long read on harbours.", filler + "<p>The ferries moor here.</p>"),
        ("Summer moorings", "Another long read.", "<p>Ferries moor in the harbour.</p>" + filler),
    ]
    for number, (title, standfirst, body) in enumerate(texts):
        ArticleFactory.create(title=title, standfirst=standfirst, body=body, published_at=now - timedelta(hours=number))
    # Two pieces of one instant, which only their ids set in order; one scheduled; one draft.
    for title in ("Harbour tide tables", "Harbour tide charts"):
        ArticleFactory.create(title=title, body="<p>Ferries and tides.</p>", published_at=now - timedelta(days=2))
    ArticleFactory.create(title="Harbour to come", published_at=now + timedelta(hours=1))
    ArticleFactory.create(title="Harbour draft", status=Article.Status.DRAFT, published_at=None)
    assert search_terms() == terms_of_the_entries()

    words = {word.strip(".,;:").lower() for text in texts for part in text for word in part.split()}
    words = {word for word in words if word.isalpha() and len(word) > 2} | {"harbour", "ferries"}
    with connection.cursor() as cursor:
        cursor.execute("SELECT numnode(websearch_to_tsquery('english', %s))", ["harbour"])
        assert cursor.fetchone()[0] == 1  # a query of one lexeme, which the kept terms answer
    for word in sorted(words):
        expected = ranked_by_postgresql(word)
        hits, total = search.search(word, limit=100)
        assert ([hit.title for hit in hits], total) == (expected, len(expected)), word
    harbour = ranked_by_postgresql("harbour")
    assert len(harbour) == 8  # neither the scheduled piece nor the draft
    assert harbour.index("Harbour tide charts") < harbour.index("Harbour tide tables")  # the later id first
    # Page by page, the same order.
    pages = [search.search("harbour", limit=3, offset=offset)[0] for offset in (0, 3, 6, 9)]
    assert [hit.title for page in pages for hit in page] == harbour
    assert search.search("harbour", limit=3, offset=6)[1] == 8

    # The one-word search reads the kept terms, the others rank in the entries: take one
    # article's terms away and only the one-word search loses it.
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM articles_searchterm WHERE article_id = (SELECT id FROM articles_article WHERE title = %s)",
            ["Fishing quotas"],
        )
    assert "Fishing quotas" not in [hit.title for hit in search.search("ferries")[0]]
    assert "Fishing quotas" in [hit.title for hit in search.search("ferries quotas")[0]]


def test_search_terms_are_kept_through_every_change_of_an_article(client, db):
    if connection.vendor != "postgresql":
        pytest.skip("the search terms are PostgreSQL's")
    article = ArticleFactory.create(title="Harbour dues", body="<p>Nothing about shipping yet.</p>")
    draft = ArticleFactory.create(title="Harbour pilots", status=Article.Status.DRAFT, published_at=None)

    def kept() -> set[tuple]:
        terms = search_terms()
        assert terms == terms_of_the_entries()  # at every step
        return terms

    assert {term[1] for term in kept()} == {article.pk}
    assert ("ship", article.pk) in {term[:2] for term in kept()}
    article.body = "<p>Two <strong>icebreakers</strong> keep the port open.</p>"
    article.save()
    assert ("ship", article.pk) not in {term[:2] for term in kept()}
    assert "Harbour dues" in found(client, "icebreakers")
    Article.objects.filter(pk__in=[article.pk, draft.pk]).update(title="Harbour fees")
    assert "1 result for" in found(client, "fees")

    # Scheduled for later: kept, and found once its time has come; moved, and found with its new time.
    Article.objects.filter(pk=draft.pk).update(
        status=Article.Status.PUBLISHED, published_at=timezone.now() + timedelta(hours=1)
    )
    assert {term[1] for term in kept()} == {article.pk, draft.pk}
    assert "1 result for" in found(client, "fees")
    Article.objects.filter(pk=draft.pk).update(published_at=timezone.now() - timedelta(minutes=1))
    assert {term[2] for term in kept() if term[1] == draft.pk} == {Article.objects.get(pk=draft.pk).published_at}
    assert "2 results for" in found(client, "fees")

    # A long article, whose rank vector changes with its opening: its terms are ranked again.
    filler = "".join(f"<p>Harbour note {n}: quay{n} crane{n} berth{n} tide{n}.</p>" for n in range(150))
    article.body = filler + "<p>The old lighthouse keeps its lamp lit.</p>"
    article.save()
    before = {term for term in kept() if term[:2] == ("lighthous", article.pk)}
    article.body = "<p>The old lighthouse keeps its lamp lit.</p>" + filler
    article.save()
    after = {term for term in kept() if term[:2] == ("lighthous", article.pk)}
    assert before.pop()[3] < after.pop()[3]

    # Taken down, or deleted: its terms go.
    Article.objects.filter(pk=draft.pk).update(status=Article.Status.DRAFT)
    assert {term[1] for term in kept()} == {article.pk}
    article.delete()
    assert kept() == set()
    assert "0 results for" in found(client, "lighthouse")


def test_a_lexeme_with_quotes_and_backslashes_is_queried_as_itself(db):
    if connection.vendor != "postgresql":
        pytest.skip("the search terms are PostgreSQL's")
    lexemes = ["plain", "it's", "a\\b", "q'\\'x", "example.com/a'b?c=", "x y", "a:b", "1:*"]
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT lexeme, (tsvector_to_array(query::text::tsvector))[1], numnode(query),
                      query @@ array_to_tsvector(ARRAY[lexeme])
               FROM unnest(%s::text[]) AS lexeme, articles_lexeme_query(lexeme) AS query""",
            [lexemes],
        )
        assert cursor.fetchall() == [(lexeme, lexeme, 1, True) for lexeme in lexemes]
    # A lexeme the parser keeps with its quote (the path of an address) is kept as itself.
    ArticleFactory.create(title="Links", body="<p>See example.com/a'b?c= for the tables.</p>")
    assert "/a'b?c=" in {term[0] for term in search_terms()}
    assert search_terms() == terms_of_the_entries()


def stored_bylines() -> dict[int, tuple[str | None, str | None]]:
    """Each kept byline, beside the byline the listings build from the links."""
    from articles.listings import credits_sql

    built = credits_sql("postgresql", "author")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT byline.article_id, byline.authors, {built} "  # noqa: S608 (our own SQL, no input)
            "FROM articles_byline byline JOIN articles_article a ON a.id = byline.article_id"
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def test_bylines_are_kept_through_every_change_of_authors(client, db, settings):
    if connection.vendor != "postgresql":
        pytest.skip("the kept bylines are PostgreSQL's")
    settings.PAGE_CACHE_ENABLED = False  # the listings read the kept bylines too, on every request
    ola, jan = AuthorFactory.create(name="Ola Berg", slug="ola-berg"), AuthorFactory.create(name="Jan Holm")
    article = ArticleFactory.create(title="Harbour dues", authors=[ola, jan])
    draft = ArticleFactory.create(title="Harbour pilots", status=Article.Status.DRAFT, published_at=None)
    ArticleAuthor.objects.create(article=draft, author=jan)
    other = ArticleFactory.create(title="Harbour lights", authors=[jan])

    def byline(pk: int) -> Any:
        """The article's kept byline, parsed: ``[names, slugs]``."""
        stored, built = stored_bylines()[pk]
        assert stored is not None
        assert stored == built  # what the links say, at every step
        return json.loads(stored)

    assert byline(article.pk) == [["Ola Berg", "Jan Holm"], ["ola-berg", jan.slug]]
    assert 'By <a href="/authors/ola-berg/">Ola Berg</a> and <a href' in found(client, "dues")

    # Reordering the links, as the admin's inline does, and removing one.
    ArticleAuthor.objects.filter(article=article, author=ola).update(position=5)
    assert byline(article.pk)[0] == ["Jan Holm", "Ola Berg"]
    ArticleAuthor.objects.filter(article=article, author=jan).delete()
    assert byline(article.pk)[0] == ["Ola Berg"]

    # Renaming an author, or changing their slug, rewrites every byline they are in.
    Author.objects.filter(pk=jan.pk).update(name="Jan Holm-Dahl", slug="jan-holm-dahl")
    assert byline(other.pk) == [["Jan Holm-Dahl"], ["jan-holm-dahl"]]
    assert byline(draft.pk) == [["Jan Holm-Dahl"], ["jan-holm-dahl"]]
    assert 'href="/authors/jan-holm-dahl/">Jan Holm-Dahl</a>' in found(client, "lights")
    assert 'href="/authors/jan-holm-dahl/">Jan Holm-Dahl</a>' in client.get("/").content.decode()
    ola.role = "Harbour Correspondent"
    ola.save()  # not in a byline: nothing to rewrite
    assert byline(article.pk)[0] == ["Ola Berg"]

    # Links bulk-created before the piece is published: it is found with them.
    ArticleAuthor.objects.bulk_create([ArticleAuthor(article=draft, author=ola, position=1)])
    Article.objects.filter(pk=draft.pk).update(status=Article.Status.PUBLISHED, published_at=timezone.now())
    assert byline(draft.pk)[0] == ["Jan Holm-Dahl", "Ola Berg"]
    assert 'Jan Holm-Dahl</a> and <a href="/authors/ola-berg/">Ola Berg</a>' in found(client, "pilots")

    # Deleting an author takes them out of every byline; a piece with no author has none.
    jan.delete()
    assert byline(draft.pk)[0] == ["Ola Berg"]
    assert byline(other.pk) == [None, None]
    html = found(client, "lights")
    assert "1 result for" in html
    assert "Jan Holm" not in html
    assert "Jan Holm" not in client.get("/").content.decode()
    assert "Ola Berg</a>" in client.get("/authors/ola-berg/").content.decode()

    # Deleting an article deletes its byline.
    article.delete()
    assert article.pk not in stored_bylines()
    assert set(stored_bylines()) == {draft.pk, other.pk}


@pytest.mark.django_db(transaction=True)
def test_kept_bylines_are_emptied_with_the_author_links_or_the_articles(client):
    if connection.vendor != "postgresql":
        pytest.skip("the kept bylines are PostgreSQL's")
    ola = AuthorFactory.create(name="Ola Berg", slug="ola-berg")
    article = ArticleFactory.create(title="Harbour dues", authors=[ola])
    assert stored_bylines()[article.pk][0] == '[["Ola Berg"], ["ola-berg"]]'
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE articles_articleauthor")
    assert stored_bylines() == {}
    assert "By " not in found(client, "dues").split("result for")[1]  # found, with no byline
    ArticleFactory.create(title="Harbour lights", authors=[ola])
    assert len(stored_bylines()) == 1
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE articles_article CASCADE")
    assert stored_bylines() == {}


def test_search_results_come_in_one_statement_twenty_a_page(client, db, settings, django_assert_num_queries):
    settings.PAGE_CACHE_ENABLED = False
    now = timezone.now()
    author = AuthorFactory.create(name="Ola Berg", slug="ola-berg")
    for number in range(25):
        ArticleFactory.create(
            title=f"Ferry report {number:02d}",
            body="<p>The ferries run late.</p>",
            published_at=now - timedelta(hours=number),
            authors=[author],
        )
    ArticleFactory.create(title="Ferry plans", status=Article.Status.DRAFT, published_at=None)
    client.get("/search/", {"q": "ferries"})
    with django_assert_num_queries(1):
        first = client.get("/search/", {"q": "ferries"}).content.decode()
    assert "25 results for" in first
    assert first.count('class="result"') == 20
    assert "Page 1 of 2" in first
    assert 'By <a href="/authors/ola-berg/">Ola Berg</a>' in first
    second = client.get("/search/", {"q": "ferries", "page": 2}).content.decode()
    assert second.count('class="result"') == 5
    assert client.get("/search/", {"q": "ferries", "page": 3}).status_code == 404
    assert client.get("/search/", {"q": "ferries", "page": "x"}).status_code == 404


def test_a_match_deep_in_the_body_finds_the_article_and_its_snippet_shows_the_opening(client, db):
    from articles.html import OPENING_LENGTH

    filler = "<p>" + "Ministers met and talked about the budget. " * (OPENING_LENGTH // 40) + "</p>"
    ArticleFactory.create(
        title="Long read", standfirst="An overview.", body=filler + "<p>At the very end: lighthouses.</p>"
    )
    ArticleFactory.create(
        title="Short read", standfirst="A note.", body="<p>Lighthouses <em>guide</em> the ships.</p>" + filler
    )
    html = client.get("/search/", {"q": "lighthouses"}).content.decode()
    assert "2 results for" in html
    snippets = {
        title: " ".join(
            html.split(f">{title}</a></h3>")[1].split('<p class="result__snippet">')[1].split("</p>")[0].split()
        )
        for title in ("Long read", "Short read")
    }
    assert "<mark>Lighthouses</mark> guide the ships." in snippets["Short read"]
    assert snippets["Long read"].startswith("An overview. Ministers met")
    assert "<mark>" not in snippets["Long read"]
    assert "&lt;" not in snippets["Long read"]  # a tag cut short at the edge is not shown


def test_the_snippet_starts_a_little_before_the_first_match_and_marks_every_match(client, db):
    opening = "<p>" + "Ministers met and talked about the budget. " * 6 + "</p>"
    ArticleFactory.create(
        title="Harbours",
        standfirst="A note on ports.",
        body=opening + "<p>Icebreakers keep the harbour open; two more icebreakers &amp; a tug arrive.</p>",
    )
    html = client.get("/search/", {"q": "icebreakers"}).content.decode()
    snippet = " ".join(html.split('<p class="result__snippet">')[1].split("</p>")[0].split())
    assert snippet.startswith("… ")
    assert "A note on ports." not in snippet
    assert "<mark>Icebreakers</mark> keep the harbour open; two more <mark>icebreakers</mark> &amp; a tug" in snippet


def test_postgresql_snippets_mark_the_words_the_search_matched_by_their_stem(client, db):
    if connection.vendor != "postgresql":
        pytest.skip("stemmed search is PostgreSQL's")
    ArticleFactory.create(
        title="Talks",
        standfirst="Negotiations on fishing resumed.",
        body="<p>The negotiators never met the chief negotiator; a nearby net was empty.</p>",
    )
    html = client.get("/search/", {"q": "negotiators"}).content.decode()
    snippet = " ".join(html.split('<p class="result__snippet">')[1].split("</p>")[0].split())
    assert snippet == (
        "<mark>Negotiations</mark> on fishing resumed. The <mark>negotiators</mark> never met the chief "
        "<mark>negotiator</mark>; a nearby net was empty."
    )


def test_the_snippet_stemmer_agrees_with_postgresql(db):
    """Highlighting stems words as PostgreSQL's english configuration does, or it marks the wrong ones."""
    if connection.vendor != "postgresql":
        pytest.skip("stemmed search is PostgreSQL's")
    from articles.search import _stem

    words = [
        "negotiators",
        "negotiation",
        "talked",
        "skies",
        "dying",
        "relational",
        "generously",
        "communities",
        "fisheries",
        "interconnectors",
        "lighthouses",
        "quotas",
        "ferries",
        "possibility",
        "organisation",
        "tariffs",
        "subsidies",
        "Europe",
        "European",
        "enlargement",
        "sanctions",
        "sanctioned",
        "ceasefire",
        "hydrogen",
        "elections",
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word, (SELECT lexeme FROM unnest(to_tsvector('english', word))) FROM unnest(%s::text[]) AS word",
            [words],
        )
        postgresql = dict(cursor.fetchall())
    assert {word: _stem(word) for word in words} == postgresql


def test_a_snippet_never_starts_after_the_match_it_is_cut_around():
    from articles.search import snippet, substring_matches

    text = "x" * 150 + " tariffs rise"
    assert str(snippet(text, substring_matches(text, ["tariffs"]))) == "… <mark>tariffs</mark> rise"
    text = "y" * 150 + "tariffs rise"  # no space between the window's start and the match
    assert str(snippet(text, substring_matches(text, ["tariffs"]))) == "… <mark>tariffs</mark> rise"


def test_stemmed_matches_are_found_as_far_as_the_snippet_reaches():
    from articles.search import snippet, snippet_end, stem_matches

    filler = "Ministers met and talked. " * 4  # 104 characters
    text = f"{filler}Tariffs rose. {filler}Tariff talks went on. {filler}{filler}{filler}Tariffs fell."
    spans = stem_matches(text, ["tariff"])
    assert [text[first:last] for first, last in spans] == ["Tariffs", "Tariff"]
    assert spans[-1][0] < snippet_end(spans[0][0]) < text.rindex("Tariffs fell")
    shown = str(snippet(text, spans))
    assert shown.count("<mark>") == 2
    assert "fell" not in shown
