from html import unescape

from articles.models import Article, SiteSettings
from tests.support.factories import ArticleFactory, AuthorFactory, TopicFactory


def test_second_anonymous_visit_is_served_from_the_cache_without_queries(client, db, django_assert_num_queries):
    article = ArticleFactory.create(topics=[TopicFactory.create()], authors=[AuthorFactory.create()])
    first = client.get(article.get_absolute_url())
    with django_assert_num_queries(0):
        second = client.get(article.get_absolute_url())
    assert second.content == first.content
    assert second["ETag"] == first["ETag"]


def test_article_page_changes_right_after_an_edit(client, db, django_capture_on_commit_callbacks):
    article = ArticleFactory.create(title="Ports reopen")
    assert "Ports reopen" in client.get(article.get_absolute_url()).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        article.title = "Ports reopen after the strike"
        article.save()
    assert "Ports reopen after the strike" in client.get(article.get_absolute_url()).content.decode()
    assert "Ports reopen after the strike" in client.get("/").content.decode()


def test_publishing_shows_the_article_at_once_and_unpublishing_hides_it(client, db, django_capture_on_commit_callbacks):
    topic = TopicFactory.create()
    article = ArticleFactory.create(title="Quiet piece", status=Article.Status.APPROVED, topics=[topic])
    assert "Quiet piece" not in client.get("/").content.decode()
    assert "Quiet piece" not in client.get(topic.get_absolute_url()).content.decode()
    assert client.get(article.get_absolute_url()).status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        article.status = Article.Status.PUBLISHED
        article.save()
    assert "Quiet piece" in client.get("/").content.decode()
    assert "Quiet piece" in client.get(topic.get_absolute_url()).content.decode()
    assert client.get(article.get_absolute_url()).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        article.status = Article.Status.UNPUBLISHED
        article.save()
    assert "Quiet piece" not in client.get("/").content.decode()
    assert client.get(article.get_absolute_url()).status_code == 404


def test_renaming_an_author_or_changing_topics_or_the_disclaimer_shows_at_once(
    client, db, django_capture_on_commit_callbacks
):
    author = AuthorFactory.create(name="Ida Holm")
    article = ArticleFactory.create(authors=[author])
    url = article.get_absolute_url()
    assert "Ida Holm" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        author.name = "Ida Holm-Berg"
        author.save()
    assert "Ida Holm-Berg" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        article.topics.add(TopicFactory.create(name="Fisheries"), through_defaults={"position": 0})
    assert "Fisheries" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        site = SiteSettings.load()
        site.default_disclaimer = "A brand new disclaimer."
        site.save()
    assert "A brand new disclaimer." in client.get(url).content.decode()


def test_an_edit_inside_a_transaction_that_rolls_back_keeps_the_cached_page(client, db):
    article = ArticleFactory.create(title="Steady")
    first = client.get(article.get_absolute_url())
    article.title = "Never committed"
    article.save()  # the test transaction never commits: no invalidation
    assert client.get(article.get_absolute_url()).content == first.content


def test_pages_carry_validators_and_answer_not_modified(client, db):
    article = ArticleFactory.create()
    response = client.get(article.get_absolute_url())
    assert response["ETag"].startswith('"')
    assert response["Last-Modified"].endswith("GMT")
    assert "public" in response["Cache-Control"]
    assert "max-age=60" in response["Cache-Control"]
    again = client.get(article.get_absolute_url(), headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304
    assert again.content == b""
    since = client.get(article.get_absolute_url(), headers={"If-Modified-Since": response["Last-Modified"]})
    assert since.status_code == 304


def test_a_hit_carries_the_validators_of_the_render_and_honours_every_precondition(
    client, db, django_assert_num_queries
):
    url = ArticleFactory.create().get_absolute_url()
    rendered = client.get(url)
    with django_assert_num_queries(0):
        hit = client.get(url)
    for header in ("ETag", "Last-Modified", "Cache-Control", "Content-Type"):
        assert hit[header] == rendered[header]
    assert client.get(url, headers={"If-Match": '"another"'}).status_code == 412
    assert client.get(url, headers={"If-Match": rendered["ETag"]}).status_code == 200
    assert client.get(url, headers={"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}).status_code == 412
    assert client.get(url, headers={"If-None-Match": '"another"'}).status_code == 200


def test_an_entry_stored_without_its_http_date_is_served_with_the_same_last_modified(
    client, db, django_assert_num_queries
):
    # Entries written before the HTTP date was stored beside the timestamp (an upgrade).
    from articles import cache

    url = ArticleFactory.create().get_absolute_url()
    rendered = client.get(url)
    assert cache.redis_client().hdel(cache._page_key(url), "last_modified_http") == 1
    cache._local_pages.clear()
    with django_assert_num_queries(0):
        hit = client.get(url)
    assert hit["Last-Modified"] == rendered["Last-Modified"]
    assert hit.content == rendered.content


def test_pages_with_a_session_cookie_are_neither_served_from_nor_stored_in_the_cache(client, db):
    article = ArticleFactory.create(title="Original")
    client.get(article.get_absolute_url())  # cached for anonymous readers
    Article.objects.filter(pk=article.pk).update(title="Changed quietly")
    client.cookies["sessionid"] = "whatever"
    assert "Changed quietly" in client.get(article.get_absolute_url()).content.decode()
    del client.cookies["sessionid"]
    assert "Original" in client.get(article.get_absolute_url()).content.decode()


def test_cache_can_be_switched_off(client, db, settings):
    settings.PAGE_CACHE_ENABLED = False
    article = ArticleFactory.create(title="Original")
    client.get(article.get_absolute_url())
    Article.objects.filter(pk=article.pk).update(title="Changed quietly")
    assert "Changed quietly" in client.get(article.get_absolute_url()).content.decode()


def test_a_change_announced_by_another_process_reaches_this_one(client, db):
    from articles import cache
    from tests.support.workers import wait_until

    article = ArticleFactory.create(title="Old title")
    cache.watcher.known()
    wait_until(lambda: cache.watcher.listening, timeout=10)
    client.get(article.get_absolute_url())
    assert "Old title" in client.get(article.get_absolute_url()).content.decode()
    Article.objects.filter(pk=article.pk).update(title="New title")
    # What another web process does on commit: a new generation, announced on the channel.
    redis = cache.redis_client()
    redis.set(cache._key("generation"), "from-another-process")
    redis.publish(cache._key("changed"), "1")
    wait_until(lambda: "New title" in client.get(article.get_absolute_url()).content.decode(), timeout=10)


def test_without_the_subscription_every_hit_reads_the_generation_from_redis(client, db, monkeypatch):
    from articles import cache

    monkeypatch.setattr(cache.watcher, "listening", False)
    article = ArticleFactory.create(title="Old title")
    client.get(article.get_absolute_url())
    Article.objects.filter(pk=article.pk).update(title="New title")
    cache.redis_client().set(cache._key("generation"), "from-another-process")  # no announcement
    assert "New title" in client.get(article.get_absolute_url()).content.decode()


def test_pages_are_still_served_when_redis_is_unreachable(client, db, monkeypatch):
    import redis

    from articles import cache

    article = ArticleFactory.create(title="Still readable")
    monkeypatch.setattr(cache.watcher, "listening", False)
    unreachable = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(cache, "redis_client", lambda: unreachable)
    monkeypatch.setattr(cache, "_lookup_script", None)
    response = client.get(article.get_absolute_url())
    assert response.status_code == 200
    assert "Still readable" in response.content.decode()


def test_without_the_page_cache_site_settings_and_menu_are_read_once_until_they_change(
    client, db, settings, django_assert_num_queries, django_capture_on_commit_callbacks
):
    from articles import cache
    from tests.support.workers import wait_until

    settings.PAGE_CACHE_ENABLED = False
    cache.watcher.known()
    wait_until(lambda: cache.watcher.listening, timeout=10)
    article = ArticleFactory.create(topics=[TopicFactory.create(name="Trade")], disclaimer="")
    client.get(article.get_absolute_url())
    with django_assert_num_queries(1):  # the article's own statement; settings and menu are remembered
        page = client.get(article.get_absolute_url()).content.decode()
    assert "Trade" in page
    with django_capture_on_commit_callbacks(execute=True):
        site = SiteSettings.load()
        site.default_disclaimer = "Views are the writers' own, as of today."
        site.save()
    assert "Views are the writers' own, as of today." in unescape(
        client.get(article.get_absolute_url()).content.decode()
    )


# --- what makes a separate entry: the path and the page number, nothing else ----------------------


def stored_pages() -> int:
    """Pages in the real Redis the page cache writes to, whatever their generation."""
    from articles import cache

    return sum(1 for _ in cache.redis_client().scan_iter(match=cache._key("page:*"), count=1000))


def test_a_thousand_junk_query_strings_store_no_more_pages(client, db):
    ArticleFactory.create(title="Harbour news")
    home = client.get("/")
    before = stored_pages()
    assert before >= 1
    for number in range(1000):
        response = client.get(f"/?junk={number}")
        assert response.status_code == 200
    assert response.content == home.content
    assert stored_pages() == before


def test_junk_after_an_article_or_feed_url_stores_nothing_new(client, db):
    article = ArticleFactory.create()
    client.get(article.get_absolute_url())
    client.get("/feed/")
    before = stored_pages()
    for number in range(50):
        assert client.get(f"{article.get_absolute_url()}?page={number + 2}").status_code == 200
        assert client.get(f"/feed/?utm_source=mail{number}").status_code == 200
    assert stored_pages() == before


def test_one_entry_per_page_number_however_it_is_spelt(client, db):
    for _ in range(25):  # two pages on the home page
        ArticleFactory.create()
    client.get("/")
    before = stored_pages()
    second = client.get("/?page=2")
    assert second.status_code == 200
    assert stored_pages() == before + 1
    for spelling in ("/?page=02", "/?page=2&utm_source=mail", "/?utm_source=x&page=0002"):
        assert client.get(spelling).content == second.content
    assert stored_pages() == before + 1


def test_a_page_number_that_is_not_one_is_a_404_and_stores_nothing(client, db):
    ArticleFactory.create()
    before = stored_pages()
    for junk in ("x", "-1", "1e3", "9" * 40, "99999"):
        assert client.get(f"/?page={junk}").status_code == 404
    assert stored_pages() == before


def test_pages_live_in_the_cache_redis_when_it_is_set_apart(client, db, settings, private_redis):
    import redis

    from articles import cache

    broker = redis.Redis.from_url(settings.REDIS_URL)
    pages_in_broker = sum(1 for _ in broker.scan_iter(match=cache._key("page:*")))
    settings.CACHE_REDIS_URL = private_redis.url
    article = ArticleFactory.create(title="Kept apart")
    assert "Kept apart" in client.get(article.get_absolute_url()).content.decode()
    apart = redis.Redis.from_url(private_redis.url)
    assert sum(1 for _ in apart.scan_iter(match=cache._key("page:*"))) == 1
    assert sum(1 for _ in broker.scan_iter(match=cache._key("page:*"))) == pages_in_broker


def test_the_first_page_asked_for_by_number_does_not_replace_the_home_page(client, db):
    featured = ArticleFactory.create(title="The featured piece", is_featured=True)
    for _ in range(25):
        ArticleFactory.create()
    numbered = client.get("/?page=01")  # the home page without its featured block
    home = client.get("/")
    assert home.content != numbered.content
    assert client.get("/?junk=1").content == home.content
    assert client.get("/?page=1").content == numbered.content
    assert featured.title in home.content.decode()
