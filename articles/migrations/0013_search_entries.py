"""On PostgreSQL, what search ranks lives in a narrow table of its own, kept by a trigger.

Search reads every matching article's search vector to rank it: in ``articles_article``
each of those reads first steps over the 26 columns before the vector (title, body,
image fields...), and with a thousand matches that walk cost more than the ranking
itself. ``articles_searchentry`` holds, for each published article only, its id, its
publication time and its vector (the generated column of migration 0009), with the GIN
index; the search statement ranks there and reads ``articles_article`` for the page's
twenty rows only (0.96 against 1.74 ms for the ranking statement at 1,000 matches, on
the bench's data).

A trigger keeps it, so every way of writing an article (the ORM, ``update()``, bulk
inserts, raw SQL) is covered: an insert or update upserts the entry while the article is
published and removes it otherwise, a delete removes it, and a ``TRUNCATE`` (the test
suite's flush) empties it. SQLite, which searches by substring, has none of it.
"""

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

# Migration 0015 replaces it; reversing 0015 puts it back.
KEEP_SEARCH_ENTRY = """
    CREATE FUNCTION articles_keep_search_entry() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            TRUNCATE articles_searchentry;
        ELSIF TG_OP = 'DELETE' THEN
            DELETE FROM articles_searchentry WHERE article_id = OLD.id;
        ELSIF TG_OP = 'UPDATE'
              AND NEW.id = OLD.id
              AND NEW.status IS NOT DISTINCT FROM OLD.status
              AND NEW.published_at IS NOT DISTINCT FROM OLD.published_at
              AND NEW.search_vector IS NOT DISTINCT FROM OLD.search_vector THEN
            NULL;  -- nothing search reads has changed
        ELSIF NEW.status = 'published' AND NEW.published_at IS NOT NULL THEN
            IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
                DELETE FROM articles_searchentry WHERE article_id = OLD.id;
            END IF;
            INSERT INTO articles_searchentry (article_id, published_at, search_vector)
            VALUES (NEW.id, NEW.published_at, NEW.search_vector)
            ON CONFLICT (article_id) DO UPDATE
                SET published_at = EXCLUDED.published_at, search_vector = EXCLUDED.search_vector;
        ELSE
            DELETE FROM articles_searchentry WHERE article_id IN (NEW.id, OLD.id);
        END IF;
        RETURN NULL;
    END
    $$
    """

CREATE = [
    """
    CREATE TABLE articles_searchentry (
        article_id bigint PRIMARY KEY,
        published_at timestamp with time zone NOT NULL,
        search_vector tsvector NOT NULL
    )
    """,
    "CREATE INDEX search_entry_vector ON articles_searchentry USING gin (search_vector)",
    KEEP_SEARCH_ENTRY,
    """
    CREATE TRIGGER article_search_entry AFTER INSERT OR UPDATE OR DELETE ON articles_article
    FOR EACH ROW EXECUTE FUNCTION articles_keep_search_entry()
    """,
    """
    CREATE TRIGGER article_search_entries_truncated AFTER TRUNCATE ON articles_article
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_search_entry()
    """,
    """
    INSERT INTO articles_searchentry (article_id, published_at, search_vector)
    SELECT id, published_at, search_vector FROM articles_article
    WHERE status = 'published' AND published_at IS NOT NULL
    """,
    # Search no longer reads the vector's index in articles_article.
    "DROP INDEX article_search_vector",
]

DROP = [
    "CREATE INDEX article_search_vector ON articles_article USING gin (search_vector)",
    "DROP TRIGGER article_search_entries_truncated ON articles_article",
    "DROP TRIGGER article_search_entry ON articles_article",
    "DROP FUNCTION articles_keep_search_entry()",
    "DROP TABLE articles_searchentry",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0012_article_opening_text")]

    operations = [postgresql_only(CREATE, DROP)]
