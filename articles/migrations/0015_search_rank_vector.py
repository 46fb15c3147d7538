"""On PostgreSQL, a long article is ranked by a short vector kept beside its full one.

The full vector of a real article (1,500 words: about 7.5 KB) does not fit in a table row,
and PostgreSQL keeps it out of line (TOAST). Ranking a thousand such matches fetched a
thousand of those values: 5.6 of a results page's 7.8 ms on the bench's long articles.
Finding the matches does not need them: the GIN index answers which articles hold the
words.

So ``articles_searchentry`` gains ``rank_vector``. For an article whose full vector is over
1,500 bytes (one that does not fit in the row), it holds the vector of the title (weight A),
the standfirst (B, its first 1,000 characters) and the body's opening text (C,
``Article.opening_text``: the first 1,000 characters of the body), a kilobyte or so, kept
in the row uncompressed (storage PLAIN: its inputs are bounded, so it always fits). For a
shorter article it is NULL: the full vector is in the row already, holds little more than
the opening, and ranks as before. Search ranks by ``coalesce(rank_vector, search_vector)``:
a word in the title, standfirst or opening of a long article counts; a word only further
down its body still finds it, and it ranks below those, newest first among equals.

The trigger of migration 0013 now writes both. The entries are written again, into a
fresh table (TRUNCATE, then INSERT) rather than updated in place, which would leave a dead
copy of every row behind; newest first, the order search reads them in, so that keeping the
best twenty of the matches, which arrive in the table's order, rarely has to replace one.
"""

from importlib import import_module

from django.db import migrations

from articles.migrations._postgresql import postgresql_only

# The trigger function as migration 0013 wrote it, to put back when this one is reversed.
KEEP_SEARCH_ENTRY = import_module("articles.migrations.0013_search_entries").KEEP_SEARCH_ENTRY

CREATE = [
    """
    CREATE FUNCTION articles_rank_vector(full_vector tsvector, title text, standfirst text, opening text)
    RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        -- `|| ''` makes a new value, never compressed: the vector's own size, however it is stored
        SELECT CASE WHEN pg_column_size(full_vector || ''::tsvector) > 1500 THEN
            setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
            || setweight(to_tsvector('english'::regconfig, left(coalesce(standfirst, ''), 1000)), 'B')
            || setweight(to_tsvector('english'::regconfig, coalesce(opening, '')), 'C')
        END
    $$
    """,
    "ALTER TABLE articles_searchentry ADD COLUMN rank_vector tsvector",
    "ALTER TABLE articles_searchentry ALTER COLUMN rank_vector SET STORAGE PLAIN",
    """
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
              AND NEW.search_vector IS NOT DISTINCT FROM OLD.search_vector
              AND NEW.opening_text IS NOT DISTINCT FROM OLD.opening_text THEN
            NULL;  -- nothing search reads has changed (the title and standfirst are in the vector)
        ELSIF NEW.status = 'published' AND NEW.published_at IS NOT NULL THEN
            IF TG_OP = 'UPDATE' AND NEW.id <> OLD.id THEN
                DELETE FROM articles_searchentry WHERE article_id = OLD.id;
            END IF;
            INSERT INTO articles_searchentry (article_id, published_at, search_vector, rank_vector)
            VALUES (NEW.id, NEW.published_at, NEW.search_vector,
                    articles_rank_vector(NEW.search_vector, NEW.title, NEW.standfirst, NEW.opening_text))
            ON CONFLICT (article_id) DO UPDATE
                SET published_at = EXCLUDED.published_at, search_vector = EXCLUDED.search_vector,
                    rank_vector = EXCLUDED.rank_vector;
        ELSE
            DELETE FROM articles_searchentry WHERE article_id IN (NEW.id, OLD.id);
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "TRUNCATE articles_searchentry",
    """
    INSERT INTO articles_searchentry (article_id, published_at, search_vector, rank_vector)
    SELECT id, published_at, search_vector, articles_rank_vector(search_vector, title, standfirst, opening_text)
    FROM articles_article
    WHERE status = 'published' AND published_at IS NOT NULL
    ORDER BY published_at DESC, id DESC
    """,
]

DROP = [
    KEEP_SEARCH_ENTRY.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1),
    "ALTER TABLE articles_searchentry DROP COLUMN rank_vector",
    "DROP FUNCTION articles_rank_vector(tsvector, text, text, text)",
]


class Migration(migrations.Migration):
    dependencies = [("articles", "0014_article_bylines")]

    operations = [postgresql_only(CREATE, DROP)]
