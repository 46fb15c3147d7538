"""On PostgreSQL, each search entry keeps its article's byline, so a results page reads no author.

The search statement used to build each result's byline with a subquery joining the
article's author links to the authors: twenty subqueries a page, about 0.2 ms of the
statement's 0.8 ms on the bench's data. ``articles_searchentry.authors`` now holds the
byline as that subquery wrote it (``articles_author_credits``: ``[[names], [slugs]]`` in
position order, as ``listings.credits_sql`` answers), and triggers keep it:

- an entry gets its byline when the article's trigger (migration 0013) writes it;
- adding, reordering or removing an author link rewrites its article's byline, and
  emptying the links table (``TRUNCATE``) rewrites every byline;
- renaming an author, or changing their slug, rewrites the bylines of their articles.
  Deleting an author deletes their links first (Django cascades them), which rewrites.

One race is left: an author renamed while another transaction, not yet committed, links
them to an article keeps the old name in that article's entry, until its links or its
searchable text change again. SQLite, which has no search entries, is unchanged.
"""

from importlib import import_module
from typing import Any

from django.db import migrations

search_entries = import_module("articles.migrations.0013_search_entries")

CREDITS = """
    CREATE FUNCTION articles_author_credits(article bigint) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT json_build_array(array_agg(credited.name ORDER BY link.position),
                                array_agg(credited.slug ORDER BY link.position))::text
        FROM articles_articleauthor link JOIN articles_author credited ON credited.id = link.author_id
        WHERE link.article_id = article
    $$
"""

# Migration 0013's function, now writing the byline with the entry.
KEEP_ENTRY = """
    CREATE OR REPLACE FUNCTION articles_keep_search_entry() RETURNS trigger LANGUAGE plpgsql AS $$
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
            INSERT INTO articles_searchentry (article_id, published_at, search_vector, authors)
            VALUES (NEW.id, NEW.published_at, NEW.search_vector, articles_author_credits(NEW.id))
            ON CONFLICT (article_id) DO UPDATE
                SET published_at = EXCLUDED.published_at, search_vector = EXCLUDED.search_vector,
                    authors = EXCLUDED.authors;
        ELSE
            DELETE FROM articles_searchentry WHERE article_id IN (NEW.id, OLD.id);
        END IF;
        RETURN NULL;
    END
    $$
"""

KEEP_BYLINES = """
    CREATE FUNCTION articles_keep_search_entry_bylines() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            UPDATE articles_searchentry SET authors = articles_author_credits(article_id);
        ELSIF TG_TABLE_NAME = 'articles_author' THEN
            IF NEW.name IS DISTINCT FROM OLD.name OR NEW.slug IS DISTINCT FROM OLD.slug THEN
                UPDATE articles_searchentry SET authors = articles_author_credits(article_id)
                WHERE article_id IN (
                    SELECT article_id FROM articles_articleauthor WHERE author_id IN (NEW.id, OLD.id));
            END IF;
        ELSE  -- an author link: OLD is NULL for an insert, NEW for a delete
            UPDATE articles_searchentry SET authors = articles_author_credits(article_id)
            WHERE article_id IN (OLD.article_id, NEW.article_id);
        END IF;
        RETURN NULL;
    END
    $$
"""

CREATE = [
    "ALTER TABLE articles_searchentry ADD COLUMN authors text",
    CREDITS,
    KEEP_ENTRY,
    KEEP_BYLINES,
    """
    CREATE TRIGGER article_author_byline AFTER INSERT OR UPDATE OR DELETE ON articles_articleauthor
    FOR EACH ROW EXECUTE FUNCTION articles_keep_search_entry_bylines()
    """,
    """
    CREATE TRIGGER article_authors_truncated AFTER TRUNCATE ON articles_articleauthor
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_search_entry_bylines()
    """,
    """
    CREATE TRIGGER author_bylines AFTER UPDATE ON articles_author
    FOR EACH ROW EXECUTE FUNCTION articles_keep_search_entry_bylines()
    """,
    "UPDATE articles_searchentry SET authors = articles_author_credits(article_id)",
]

DROP = [
    "DROP TRIGGER author_bylines ON articles_author",
    "DROP TRIGGER article_authors_truncated ON articles_articleauthor",
    "DROP TRIGGER article_author_byline ON articles_articleauthor",
    "DROP FUNCTION articles_keep_search_entry_bylines()",
    # 0013's function again, before the function and column it would name are gone
    next(statement for statement in search_entries.CREATE if "CREATE FUNCTION articles_keep_search_entry()" in statement).replace(
        "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"
    ),
    "DROP FUNCTION articles_author_credits(bigint)",
    "ALTER TABLE articles_searchentry DROP COLUMN authors",
]


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in CREATE:
            schema_editor.execute(statement)


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        for statement in DROP:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("articles", "0013_search_entries")]

    operations = [migrations.RunPython(create, drop)]
