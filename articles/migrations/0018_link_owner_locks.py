"""On PostgreSQL, a topic or author link waits for whoever is changing its article or author.

The kept bylines (migration 0014) and published counts (0017) are written by triggers that
read other rows: a link's trigger reads whether its article is published and what its
authors are called; an article's trigger reads its links; an author's trigger reads their
links. Two transactions that change both sides at once each read the other's rows as they
were before, so one change was lost:

- a link added while another transaction publishes its article (or unpublishes it) was
  counted by neither, and its topic's or author's page count stayed one short;
- an author renamed while another transaction links them to an article left the old name
  in that article's byline, and two transactions linking authors to the same article at
  once left one of them out of it.

Now a link, before it is written, locks its article's row, and an author link its author's
row too (``FOR NO KEY UPDATE``: what an update of the row takes, so it waits for a
transaction that publishes the article or renames the author, and such a transaction waits
for it). The triggers that run after it then read what that transaction committed, and
one that runs after that transaction reads the link. Moving a link within its article's
list (a reorder) locks nothing. The lock is held until the link's transaction ends; the
admin's transactions that write links are a few milliseconds long.
"""

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

CREATE = [
    """
    CREATE FUNCTION articles_lock_link_owners() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        owner text := TG_ARGV[0] || '_id';  -- 'topic_id' or 'author_id'
        row_before jsonb := CASE WHEN TG_OP = 'INSERT' THEN '{}' ELSE to_jsonb(OLD) END;
        row_after jsonb := CASE WHEN TG_OP = 'DELETE' THEN '{}' ELSE to_jsonb(NEW) END;
    BEGIN
        IF TG_OP <> 'UPDATE' OR row_before ->> 'article_id' IS DISTINCT FROM row_after ->> 'article_id'
           OR row_before ->> owner IS DISTINCT FROM row_after ->> owner THEN
            -- In id order, so two transactions locking the same rows cannot deadlock on them.
            PERFORM 1 FROM articles_article
            WHERE id IN ((row_before ->> 'article_id')::bigint, (row_after ->> 'article_id')::bigint)
            ORDER BY id FOR NO KEY UPDATE;
            IF TG_ARGV[0] = 'author' THEN
                PERFORM 1 FROM articles_author
                WHERE id IN ((row_before ->> owner)::bigint, (row_after ->> owner)::bigint)
                ORDER BY id FOR NO KEY UPDATE;
            END IF;
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END
    $$
    """,
    """
    CREATE TRIGGER topic_link_locks_owners BEFORE INSERT OR UPDATE OR DELETE ON articles_articletopic
    FOR EACH ROW EXECUTE FUNCTION articles_lock_link_owners('topic')
    """,
    """
    CREATE TRIGGER author_link_locks_owners BEFORE INSERT OR UPDATE OR DELETE ON articles_articleauthor
    FOR EACH ROW EXECUTE FUNCTION articles_lock_link_owners('author')
    """,
]

DROP = [
    "DROP TRIGGER author_link_locks_owners ON articles_articleauthor",
    "DROP TRIGGER topic_link_locks_owners ON articles_articletopic",
    "DROP FUNCTION articles_lock_link_owners()",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0017_published_counts")]

    operations = [postgresql_only(CREATE, DROP)]
