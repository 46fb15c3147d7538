"""On PostgreSQL, each topic's and author's published articles are kept in page order.

A topic or author page lists twelve of its published articles, newest first. The statement
found them through the links: every link of the topic or author, each article looked up
and checked, then the newest twelve sorted out. That is work in proportion to how much the
topic or author has published, on every uncached view of every page of it: about half the
statement's time on the bench's 1,000 articles, where a topic has about 170.

``articles_listingentry`` holds, for each topic (``topic:<id>``) and author
(``author:<id>``) listing, one row per published article (status ``published`` with a
publication time): its publication time and id. Its primary key is in listing order, so a
page is the listing's first entries up to now, read backwards from there, and the articles
still ahead of their time are the entries after now.

Triggers keep it, beside the counts of migration 0017, for every way of writing:

- an article that becomes published, or stops being so, or whose publication time moves,
  gets entries in each topic and author it is linked to at that moment, or loses them;
- a topic or author link added to, or removed from, a published article adds or removes its
  entry (Django deletes an article's links before the article);
- emptying the articles empties the entries, and emptying the links their listings'.

The links lock their article's row (migration 0018), so a link and its article changing at
once take turns, and neither change is lost.
"""

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

CREATE = [
    """
    CREATE TABLE articles_listingentry (
        listing text NOT NULL,
        published_at timestamptz NOT NULL,
        article_id bigint NOT NULL,
        PRIMARY KEY (listing, published_at, article_id)
    )
    """,
    # When ``article`` is published, from when; NULL when it is not.
    """
    CREATE FUNCTION articles_published_since(article bigint) RETURNS timestamptz LANGUAGE sql STABLE AS $$
        SELECT published_at FROM articles_article
        WHERE id = article AND status = 'published' AND published_at IS NOT NULL
    $$
    """,
    """
    CREATE FUNCTION articles_enter_listings(listings text[], since timestamptz, article bigint)
    RETURNS void LANGUAGE sql AS $$
        INSERT INTO articles_listingentry (listing, published_at, article_id)
        SELECT listing, since, article FROM unnest(listings) AS listing WHERE listing <> 'all'
        ON CONFLICT DO NOTHING
    $$
    """,
    """
    CREATE FUNCTION articles_leave_listings(listings text[], since timestamptz, article bigint)
    RETURNS void LANGUAGE sql AS $$
        DELETE FROM articles_listingentry
        WHERE listing = ANY (listings) AND published_at = since AND article_id = article
    $$
    """,
    """
    CREATE FUNCTION articles_keep_listing_entries() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        was boolean;
        now_is boolean;
        since timestamptz;
        owner text := TG_ARGV[0] || '_id';  -- for a link: 'topic_id' or 'author_id'
    BEGIN
        IF TG_OP = 'TRUNCATE' THEN
            IF TG_TABLE_NAME = 'articles_article' THEN
                TRUNCATE articles_listingentry;
            ELSE
                DELETE FROM articles_listingentry WHERE starts_with(listing, TG_ARGV[0] || ':');
            END IF;
        ELSIF TG_TABLE_NAME = 'articles_article' THEN
            was := TG_OP <> 'INSERT' AND OLD.status = 'published' AND OLD.published_at IS NOT NULL;
            now_is := TG_OP <> 'DELETE' AND NEW.status = 'published' AND NEW.published_at IS NOT NULL;
            IF TG_OP = 'UPDATE' AND was = now_is AND NEW.id = OLD.id
               AND (NOT was OR NEW.published_at = OLD.published_at) THEN
                RETURN NULL;
            END IF;
            IF was THEN
                PERFORM articles_leave_listings(articles_listings_of(OLD.id), OLD.published_at, OLD.id);
            END IF;
            IF now_is THEN
                PERFORM articles_enter_listings(articles_listings_of(NEW.id), NEW.published_at, NEW.id);
            END IF;
        ELSE  -- a topic or author link: OLD is NULL for an insert, NEW for a delete
            IF TG_OP = 'UPDATE' AND NEW.article_id = OLD.article_id
               AND to_jsonb(NEW) ->> owner = to_jsonb(OLD) ->> owner THEN
                RETURN NULL;  -- reordered: the same article in the same listing
            END IF;
            IF TG_OP <> 'INSERT' THEN
                since := articles_published_since(OLD.article_id);
                IF since IS NOT NULL THEN
                    PERFORM articles_leave_listings(
                        ARRAY[TG_ARGV[0] || ':' || (to_jsonb(OLD) ->> owner)], since, OLD.article_id);
                END IF;
            END IF;
            IF TG_OP <> 'DELETE' THEN
                since := articles_published_since(NEW.article_id);
                IF since IS NOT NULL THEN
                    PERFORM articles_enter_listings(
                        ARRAY[TG_ARGV[0] || ':' || (to_jsonb(NEW) ->> owner)], since, NEW.article_id);
                END IF;
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER article_listing_entries AFTER INSERT OR UPDATE OR DELETE ON articles_article
    FOR EACH ROW EXECUTE FUNCTION articles_keep_listing_entries()
    """,
    """
    CREATE TRIGGER article_listing_entries_truncated AFTER TRUNCATE ON articles_article
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_listing_entries()
    """,
    """
    CREATE TRIGGER topic_link_listing_entries AFTER INSERT OR UPDATE OR DELETE ON articles_articletopic
    FOR EACH ROW EXECUTE FUNCTION articles_keep_listing_entries('topic')
    """,
    """
    CREATE TRIGGER topic_links_listing_entries_truncated AFTER TRUNCATE ON articles_articletopic
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_listing_entries('topic')
    """,
    """
    CREATE TRIGGER author_link_listing_entries AFTER INSERT OR UPDATE OR DELETE ON articles_articleauthor
    FOR EACH ROW EXECUTE FUNCTION articles_keep_listing_entries('author')
    """,
    """
    CREATE TRIGGER author_links_listing_entries_truncated AFTER TRUNCATE ON articles_articleauthor
    FOR EACH STATEMENT EXECUTE FUNCTION articles_keep_listing_entries('author')
    """,
    """
    INSERT INTO articles_listingentry (listing, published_at, article_id)
    SELECT listing, a.published_at, a.id
    FROM articles_article a, unnest(articles_listings_of(a.id)) AS listing
    WHERE a.status = 'published' AND a.published_at IS NOT NULL AND listing <> 'all'
    """,
]

DROP = [
    "DROP TRIGGER author_links_listing_entries_truncated ON articles_articleauthor",
    "DROP TRIGGER author_link_listing_entries ON articles_articleauthor",
    "DROP TRIGGER topic_links_listing_entries_truncated ON articles_articletopic",
    "DROP TRIGGER topic_link_listing_entries ON articles_articletopic",
    "DROP TRIGGER article_listing_entries_truncated ON articles_article",
    "DROP TRIGGER article_listing_entries ON articles_article",
    "DROP FUNCTION articles_keep_listing_entries()",
    "DROP FUNCTION articles_leave_listings(text[], timestamptz, bigint)",
    "DROP FUNCTION articles_enter_listings(text[], timestamptz, bigint)",
    "DROP FUNCTION articles_published_since(bigint)",
    "DROP TABLE articles_listingentry",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0018_link_owner_locks")]

    operations = [postgresql_only(CREATE, DROP)]
