"""On PostgreSQL, a one-word search reads its best twenty matches ready ranked.

Most searches are one word, and the common words match a large part of the archive. To
show the best twenty of a thousand matches, the search statement found all thousand in the
GIN index, read each one's vector, ranked it (``ts_rank``), kept the best twenty and counted
the rest: about 0.8 ms of PostgreSQL's time, where a listing page's statement takes 0.04.

``articles_searchterm`` holds, for every word (lexeme) of every article in
``articles_searchentry``, the rank a search for that word alone gives the article: the same
``ts_rank`` of the same vector (``coalesce(rank_vector, search_vector)``) against a query of
that one lexeme, so a one-word search finds the same articles in the same order either
way. Its index is in search order (lexeme, then rank, publication time and id, best
first): the page's twenty are the first twenty entries of the word, and the count is an
index-only scan of its entries, whatever the ranking would have cost.

Searches of several words, phrases and exclusions are ranked as before, in
``articles_searchentry``.

A trigger on ``articles_searchentry`` keeps it: any change to an entry writes the
article's terms again, the entry's removal removes them, and a ``TRUNCATE`` of the
entries (which follows one of the articles) empties it. It costs space: one row for each
distinct word of each published article, about 140 bytes with its indexes (docs/deploy.md,
Upgrades, gives the figures).
"""

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

CREATE = [
    """
    CREATE TABLE articles_searchterm (
        lexeme text NOT NULL,
        rank real NOT NULL,
        published_at timestamp with time zone NOT NULL,
        article_id bigint NOT NULL
    )
    """,
    # Search order: a word's best matches first, newest first among equals (as the search statement sorts).
    """
    CREATE INDEX search_term_ranked
    ON articles_searchterm (lexeme, rank DESC, published_at DESC, article_id DESC)
    """,
    # For rewriting an article's terms; its few hundred entries share one key, which B-tree
    # deduplication keeps as one.
    "CREATE INDEX search_term_article ON articles_searchterm (article_id)",
    # A query of that one lexeme, as a search for the word makes it (tsquery's quoting:
    # a quote doubled, a backslash escaped).
    """
    CREATE FUNCTION articles_lexeme_query(lexeme text) RETURNS tsquery
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
        SELECT ('''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''')::tsquery
    $$
    """,
    """
    CREATE FUNCTION articles_keep_search_terms() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            TRUNCATE articles_searchterm;
            RETURN NULL;
        END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            DELETE FROM articles_searchterm WHERE article_id = OLD.article_id;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            INSERT INTO articles_searchterm (lexeme, rank, published_at, article_id)
            SELECT lexeme, ts_rank(coalesce(NEW.rank_vector, NEW.search_vector), articles_lexeme_query(lexeme)),
                   NEW.published_at, NEW.article_id
            FROM unnest(tsvector_to_array(NEW.search_vector)) AS lexeme;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER search_entry_terms AFTER INSERT OR UPDATE OR DELETE ON articles_searchentry
    FOR EACH ROW EXECUTE FUNCTION articles_keep_search_terms()
    """,
    """
    CREATE TRIGGER search_entry_terms_truncated AFTER TRUNCATE ON articles_searchentry
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_search_terms()
    """,
    # In index order, so that a word's entries sit together in the table too.
    """
    INSERT INTO articles_searchterm (lexeme, rank, published_at, article_id)
    SELECT lexeme, ts_rank(coalesce(s.rank_vector, s.search_vector), articles_lexeme_query(lexeme)),
           s.published_at, s.article_id
    FROM articles_searchentry s, unnest(tsvector_to_array(s.search_vector)) AS lexeme
    ORDER BY 1, 2 DESC, 3 DESC, 4 DESC
    """,
    "ANALYZE articles_searchterm",
]

DROP = [
    "DROP TRIGGER search_entry_terms_truncated ON articles_searchentry",
    "DROP TRIGGER search_entry_terms ON articles_searchentry",
    "DROP FUNCTION articles_keep_search_terms()",
    "DROP FUNCTION articles_lexeme_query(text)",
    "DROP TABLE articles_searchterm",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0015_search_rank_vector")]

    operations = [postgresql_only(CREATE, DROP)]
