"""On PostgreSQL, how many published articles each listing has is kept, not counted.

Every listing page says how many articles it has ("Page 1 of 84"). The count read every
listed article: the home page's all the entries of the listed index, a topic's or an
author's a join of their links against all of them, on every uncached view: a fifth of a
topic page's time with 1,000 articles, and work that grows with the archive.

``articles_publishedcount`` holds, for the whole site (``all``), each topic (``topic:<id>``)
and each author (``author:<id>``), how many of their articles are published (status
``published`` with a publication time). A listing is what of that is published and whose
time has come, so the listings subtract the few published articles whose time is still
ahead (read from the listed index, from its newest end).

Triggers keep it, so every way of writing (the ORM, ``update()``, bulk inserts, raw SQL)
is counted:

- an article that becomes published, or stops being so (unpublished, deleted), counts in or
  out of ``all`` and of each topic and author it is linked to at that moment;
- a topic or author link added to, or removed from, a published article counts it in or out
  of that topic or author (Django deletes an article's links before the article: the links
  count it out, and the article, with no links left, only out of ``all``);
- emptying the articles (``TRUNCATE``, the test suite's flush) empties the counts; emptying
  the links empties the topics' or authors' counts.

Counts are changed in place (``published + 1``): two transactions that publish at once
both count, one after the other. As for the kept bylines (migration 0014), one race is
left: a link added while another transaction, not yet committed, publishes its article is
counted by neither, until the article is unpublished or published again (closed by
migration 0018: a link now locks its article's row).
``articles_recount_published()`` writes every count afresh from the tables; the migration
uses it, and so can an operator (``SELECT articles_recount_published()``).
"""

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

CREATE = [
    """
    CREATE TABLE articles_publishedcount (
        listing text PRIMARY KEY,
        published bigint NOT NULL
    )
    """,
    # The listings an article counts in: the whole site, and each of its topics and authors.
    """
    CREATE FUNCTION articles_listings_of(article bigint) RETURNS text[] LANGUAGE sql STABLE AS $$
        SELECT ARRAY['all']
               || ARRAY(SELECT 'topic:' || topic_id FROM articles_articletopic WHERE article_id = article)
               || ARRAY(SELECT 'author:' || author_id FROM articles_articleauthor WHERE article_id = article)
    $$
    """,
    """
    CREATE FUNCTION articles_count_published(listings text[], change bigint) RETURNS void LANGUAGE sql AS $$
        INSERT INTO articles_publishedcount (listing, published)
        SELECT listing, count(*) * change FROM unnest(listings) AS listing GROUP BY listing ORDER BY listing
        ON CONFLICT (listing) DO UPDATE SET published = articles_publishedcount.published + EXCLUDED.published
    $$
    """,
    """
    CREATE FUNCTION articles_is_published(article bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT EXISTS (SELECT 1 FROM articles_article
                       WHERE id = article AND status = 'published' AND published_at IS NOT NULL)
    $$
    """,
    """
    CREATE FUNCTION articles_keep_published_counts() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        was boolean;
        now_is boolean;
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            IF TG_TABLE_NAME = 'articles_article' THEN
                TRUNCATE articles_publishedcount;
            ELSE  -- the topic or author links: TG_ARGV[0] is 'topic' or 'author'
                DELETE FROM articles_publishedcount WHERE starts_with(listing, TG_ARGV[0] || ':');
            END IF;
        ELSIF TG_TABLE_NAME = 'articles_article' THEN
            was := TG_OP <> 'INSERT' AND OLD.status = 'published' AND OLD.published_at IS NOT NULL;
            now_is := TG_OP <> 'DELETE' AND NEW.status = 'published' AND NEW.published_at IS NOT NULL;
            IF TG_OP = 'UPDATE' AND was = now_is AND NEW.id = OLD.id THEN
                RETURN NULL;
            END IF;
            IF was THEN
                PERFORM articles_count_published(articles_listings_of(OLD.id), -1);
            END IF;
            IF now_is THEN
                PERFORM articles_count_published(articles_listings_of(NEW.id), 1);
            END IF;
        ELSE  -- a topic or author link: OLD is NULL for an insert, NEW for a delete
            IF TG_OP = 'UPDATE' AND NEW.article_id = OLD.article_id
               AND to_jsonb(NEW) ->> (TG_ARGV[0] || '_id') = to_jsonb(OLD) ->> (TG_ARGV[0] || '_id') THEN
                RETURN NULL;  -- reordered: the same article in the same listing
            END IF;
            IF TG_OP <> 'INSERT' AND articles_is_published(OLD.article_id) THEN
                PERFORM articles_count_published(
                    ARRAY[TG_ARGV[0] || ':' || (to_jsonb(OLD) ->> (TG_ARGV[0] || '_id'))], -1);
            END IF;
            IF TG_OP <> 'DELETE' AND articles_is_published(NEW.article_id) THEN
                PERFORM articles_count_published(
                    ARRAY[TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> (TG_ARGV[0] || '_id'))], 1);
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE FUNCTION articles_recount_published() RETURNS void LANGUAGE sql AS $$
        DELETE FROM articles_publishedcount;
        INSERT INTO articles_publishedcount (listing, published)
        SELECT listing, count(*)
        FROM articles_article a, unnest(articles_listings_of(a.id)) AS listing
        WHERE a.status = 'published' AND a.published_at IS NOT NULL
        GROUP BY listing;
    $$
    """,
    """
    CREATE TRIGGER article_published_counts AFTER INSERT OR UPDATE OR DELETE ON articles_article
    FOR EACH ROW EXECUTE FUNCTION articles_keep_published_counts()
    """,
    """
    CREATE TRIGGER article_published_counts_truncated AFTER TRUNCATE ON articles_article
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_published_counts()
    """,
    """
    CREATE TRIGGER topic_link_published_counts AFTER INSERT OR UPDATE OR DELETE ON articles_articletopic
    FOR EACH ROW EXECUTE FUNCTION articles_keep_published_counts('topic')
    """,
    """
    CREATE TRIGGER topic_links_published_counts_truncated AFTER TRUNCATE ON articles_articletopic
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_published_counts('topic')
    """,
    """
    CREATE TRIGGER author_link_published_counts AFTER INSERT OR UPDATE OR DELETE ON articles_articleauthor
    FOR EACH ROW EXECUTE FUNCTION articles_keep_published_counts('author')
    """,
    """
    CREATE TRIGGER author_links_published_counts_truncated AFTER TRUNCATE ON articles_articleauthor
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_published_counts('author')
    """,
    "SELECT articles_recount_published()",
]

DROP = [
    "DROP TRIGGER author_links_published_counts_truncated ON articles_articleauthor",
    "DROP TRIGGER author_link_published_counts ON articles_articleauthor",
    "DROP TRIGGER topic_links_published_counts_truncated ON articles_articletopic",
    "DROP TRIGGER topic_link_published_counts ON articles_articletopic",
    "DROP TRIGGER article_published_counts_truncated ON articles_article",
    "DROP TRIGGER article_published_counts ON articles_article",
    "DROP FUNCTION articles_recount_published()",
    "DROP FUNCTION articles_keep_published_counts()",
    "DROP FUNCTION articles_is_published(bigint)",
    "DROP FUNCTION articles_count_published(text[], bigint)",
    "DROP FUNCTION articles_listings_of(bigint)",
    "DROP TABLE articles_publishedcount",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0016_search_terms")]

    operations = [postgresql_only(CREATE, DROP)]
