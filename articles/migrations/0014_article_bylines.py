"""On PostgreSQL, each article's byline is kept ready, so a search results page reads no author.

The search statement used to build each result's byline with a subquery joining the
article's author links to the authors: twenty subqueries a page, about 0.2 ms of the
statement's 0.8 ms on the bench's data. ``articles_byline`` holds, for each article with
author links, its byline as that subquery wrote it (``articles_author_credits``:
``[[names], [slugs]]`` in position order, as ``listings.credits_sql`` answers), and
triggers keep it:

- adding, reordering or removing an author link rewrites its article's byline;
- renaming an author, or changing their slug, rewrites the bylines of their articles
  (deleting an author deletes their links first: Django cascades them);
- deleting an article deletes its byline, and emptying the articles or the links table
  (``TRUNCATE``, the test suite's flush) empties the bylines.

A table of its own, not a column of ``articles_searchentry``: each author link written
after its article would otherwise leave one more dead version of the article's entry, and
the table search ranks in would be spread over two or three times the pages it needs.

One race is left: an author renamed while another transaction, not yet committed, links
them to an article keeps the old name in that article's byline, until its links change
again (closed by migration 0018: an author link now locks its author's row). SQLite,
which has no search entries, is unchanged.
"""

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

CREATE = [
    """
    CREATE TABLE articles_byline (
        article_id bigint PRIMARY KEY,
        authors text NOT NULL
    )
    """,
    """
    CREATE FUNCTION articles_author_credits(article bigint) RETURNS text LANGUAGE sql STABLE AS $$
        SELECT json_build_array(array_agg(credited.name ORDER BY link.position),
                                array_agg(credited.slug ORDER BY link.position))::text
        FROM articles_articleauthor link JOIN articles_author credited ON credited.id = link.author_id
        WHERE link.article_id = article
    $$
    """,
    """
    CREATE FUNCTION articles_keep_bylines() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            TRUNCATE articles_byline;
        ELSIF TG_TABLE_NAME = 'articles_article' THEN
            DELETE FROM articles_byline WHERE article_id = OLD.id;
        ELSIF TG_TABLE_NAME = 'articles_author' THEN
            IF NEW.name IS DISTINCT FROM OLD.name OR NEW.slug IS DISTINCT FROM OLD.slug THEN
                UPDATE articles_byline SET authors = articles_author_credits(article_id)
                WHERE article_id IN (
                    SELECT article_id FROM articles_articleauthor WHERE author_id IN (NEW.id, OLD.id));
            END IF;
        ELSE  -- an author link: OLD is NULL for an insert, NEW for a delete
            INSERT INTO articles_byline (article_id, authors)
            SELECT changed.id, articles_author_credits(changed.id)
            FROM (SELECT OLD.article_id UNION SELECT NEW.article_id) AS changed (id)
            WHERE changed.id IS NOT NULL
            ON CONFLICT (article_id) DO UPDATE SET authors = EXCLUDED.authors
                WHERE articles_byline.authors IS DISTINCT FROM EXCLUDED.authors;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER article_author_byline AFTER INSERT OR UPDATE OR DELETE ON articles_articleauthor
    FOR EACH ROW EXECUTE FUNCTION articles_keep_bylines()
    """,
    """
    CREATE TRIGGER article_authors_truncated AFTER TRUNCATE ON articles_articleauthor
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_bylines()
    """,
    """
    CREATE TRIGGER author_bylines AFTER UPDATE ON articles_author
    FOR EACH ROW EXECUTE FUNCTION articles_keep_bylines()
    """,
    """
    CREATE TRIGGER article_byline_deleted AFTER DELETE ON articles_article
    FOR EACH ROW EXECUTE FUNCTION articles_keep_bylines()
    """,
    """
    CREATE TRIGGER article_bylines_truncated AFTER TRUNCATE ON articles_article
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_bylines()
    """,
    """
    INSERT INTO articles_byline (article_id, authors)
    SELECT DISTINCT article_id, articles_author_credits(article_id) FROM articles_articleauthor
    """,
]

DROP = [
    "DROP TRIGGER article_bylines_truncated ON articles_article",
    "DROP TRIGGER article_byline_deleted ON articles_article",
    "DROP TRIGGER author_bylines ON articles_author",
    "DROP TRIGGER article_authors_truncated ON articles_articleauthor",
    "DROP TRIGGER article_author_byline ON articles_articleauthor",
    "DROP FUNCTION articles_keep_bylines()",
    "DROP FUNCTION articles_author_credits(bigint)",
    "DROP TABLE articles_byline",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0013_search_entries")]

    operations = [postgresql_only(CREATE, DROP)]
