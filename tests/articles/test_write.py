"""The public /write/ form: a contributor's piece lands in the review queue; bad input is refused."""

import pytest

from articles.models import Article, ArticleTransition, Author
from articles.tasks import notify_editors_of_submission, send_submission_acknowledgement
from euro_prospects import ratelimit
from tests.support.factories import AuthorFactory, TopicFactory
from tests.support.people import member_of
from tests.support.workers import WorkerProcess, wait_until

WRITE_URL = "/write/"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    ratelimit.reset("write:127.0.0.1")
    yield
    ratelimit.reset("write:127.0.0.1")


@pytest.fixture
def topics(db):
    return [TopicFactory.create(name="Energy", slug="energy"), TopicFactory.create(name="Economy", slug="economy")]


def valid_post(topic_choices, **changes):
    data = {
        "name": "Petra Novakova",
        "email": "petra@example.org",
        "bio": "Petra studies energy markets in Central Europe.",
        "title": "Why the interconnector matters",
        "standfirst": "A cable under the sea could change prices on both shores.",
        "body": "First paragraph about the cable.\n\nSecond paragraph, with a < sign and an & in it.",
        "topics": [topic_choices[0].pk],
        "consent": "on",
        "website": "",
    }
    data.update(changes)
    return data


def test_the_form_shows_every_field(client, topics):
    response = client.get(WRITE_URL)
    assert response.status_code == 200
    page = response.content.decode()
    for name in ["name", "email", "bio", "title", "standfirst", "body", "topics", "consent"]:
        assert f'name="{name}"' in page
    assert "Energy" in page


def task_name(callback) -> str:
    """The Celery task an on-commit callback enqueues, or "" for other callbacks."""
    # task.delay (enqueue_on_commit) or a notice's sender with the task first (notify_on_commit)
    task = getattr(getattr(callback, "func", None), "__self__", None) or next(iter(getattr(callback, "args", ())), None)
    return getattr(task, "name", "")


def test_a_contribution_arrives_in_the_review_queue(client, topics, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(WRITE_URL, valid_post(topics))
    assert response.status_code == 302
    assert response["Location"].startswith("/write/status/")  # the piece's private status page
    article = Article.objects.get(title="Why the interconnector matters")
    assert article.status == Article.Status.IN_REVIEW
    assert article.body == (
        "<p>First paragraph about the cable.</p><p>Second paragraph, with a &lt; sign and an &amp; in it.</p>"
    )
    author = Author.objects.get(email="petra@example.org")
    assert author.name == "Petra Novakova"
    assert [a.author for a in article.article_authors.all()] == [author]
    assert [t.topic for t in article.article_topics.all()] == [topics[0]]
    assert list(article.transitions.values_list("to_status", "by")) == [("draft", None), ("in_review", None)]
    enqueued = sorted(task_name(callback) for callback in callbacks if task_name(callback))
    # the acknowledgement and the editors' notice, after commit
    assert enqueued == ["articles.tasks.notify_editors_of_submission", "articles.tasks.send_submission_acknowledgement"]


def test_a_piece_under_a_correspondents_address_never_joins_their_byline(client, topics, cora, eva, smtp_server):
    staff_profile = Author.objects.get(user=cora)
    staff_profile.email = "cora@example.org"
    staff_profile.save()
    response = client.post(WRITE_URL, valid_post(topics, name="Cora Lindqvist", email="Cora@Example.org"))
    assert response.status_code == 302
    article = Article.objects.get()
    [byline] = [link.author for link in article.article_authors.all()]
    assert byline != staff_profile
    assert byline.user is None
    assert byline.same_email_as == staff_profile  # flagged for an editor to merge
    assert byline.slug == "cora-lindqvist-2"
    assert not staff_profile.articles.exists()
    notify_editors_of_submission(article.pk)
    [notice] = smtp_server.handler.to("eva@example.org")
    assert "also the one of the author Cora Lindqvist" in notice.get_body(("plain",)).get_content()


def test_a_returning_contributor_gets_a_new_record_flagged_for_an_editor(client, topics):
    existing = AuthorFactory.create(name="P. Novakova", email="Petra@Example.org")
    client.post(WRITE_URL, valid_post(topics, email="petra@example.org"))
    client.post(WRITE_URL, valid_post(topics, email="petra@example.org", title="A second piece"))
    records = Author.objects.exclude(pk=existing.pk)
    assert records.count() == 2
    assert {record.same_email_as for record in records} == {existing}  # both point at the first, not at each other
    assert not existing.articles.exists()


def test_an_editor_merges_the_contributor_record_into_the_existing_author(client, topics, eva, cora):
    existing = AuthorFactory.create(name="P. Novakova", email="petra@example.org")
    client.post(WRITE_URL, valid_post(topics))
    article = Article.objects.get()
    record = Author.objects.get(same_email_as=existing)
    client.force_login(cora)
    assert "merge_selected" not in client.get("/admin/articles/author/").content.decode()
    response = client.post("/admin/articles/author/", {"action": "merge_selected", "_selected_action": [record.pk]})
    assert Author.objects.filter(pk=record.pk).exists(), response.status_code
    client.force_login(eva)
    response = client.post(
        "/admin/articles/author/", {"action": "merge_selected", "_selected_action": [record.pk]}, follow=True
    )
    assert "is merged into “P. Novakova”" in response.content.decode()
    assert [link.author for link in article.article_authors.all()] == [existing]
    assert not Author.objects.filter(pk=record.pk).exists()


def test_two_pieces_with_the_same_title_get_distinct_addresses(client, topics):
    client.post(WRITE_URL, valid_post(topics))
    client.post(WRITE_URL, valid_post(topics))
    assert sorted(Article.objects.values_list("slug", flat=True)) == [
        "why-the-interconnector-matters",
        "why-the-interconnector-matters-2",
    ]


def assert_refused(response, status, message):
    assert response.status_code == status
    assert message in response.content.decode()
    assert Article.objects.count() == 0
    assert Author.objects.count() == 0
    assert ArticleTransition.objects.count() == 0


@pytest.mark.parametrize("missing", ["name", "email", "bio", "title", "standfirst", "body", "topics", "consent"])
def test_a_missing_field_is_refused_with_a_message(client, topics, missing):
    data = valid_post(topics)
    del data[missing]
    assert_refused(client.post(WRITE_URL, data), 400, "This field is required.")


def test_an_oversized_body_is_refused(client, topics):
    response = client.post(WRITE_URL, valid_post(topics, body="word " * 9000))
    assert_refused(response, 400, "Ensure this value has at most 40000 characters")


def test_a_request_too_large_to_read_is_refused_without_a_500(client, topics):
    response = client.post(WRITE_URL, valid_post(topics, body="x" * 3_000_000))
    assert response.status_code == 400
    assert Article.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("body", "Hello <script>alert(1)</script>"),
        ("body", '<img src=x onerror="alert(1)">'),
        ("title", "<b>Bold title</b>"),
        ("name", "<a href='https://spam.example'>Cheap</a>"),
        ("standfirst", "Click javascript:alert(1)"),
        ("bio", "&#60;script&#62;"),
    ],
)
def test_html_is_refused_with_a_message(client, topics, field, value):
    response = client.post(WRITE_URL, valid_post(topics, **{field: value}))
    assert_refused(response, 400, "Please write plain text without HTML tags")


def test_an_unknown_topic_or_bad_email_is_refused(client, topics):
    assert_refused(client.post(WRITE_URL, valid_post(topics, topics=["99999"])), 400, "Select a valid choice")
    assert_refused(client.post(WRITE_URL, valid_post(topics, email="not-an-email")), 400, "valid email")


def test_more_than_three_topics_are_refused(client, db):
    many = [TopicFactory.create() for _ in range(4)]
    assert_refused(client.post(WRITE_URL, valid_post(many, topics=[t.pk for t in many])), 400, "at most 3 topics")


def test_a_filled_honeypot_is_refused_and_nothing_is_saved(client, topics):
    response = client.post(WRITE_URL, valid_post(topics, website="https://spam.example"))
    assert_refused(response, 400, "could not be accepted")


def test_too_many_posts_from_one_address_are_refused(client, topics, settings):
    settings.WRITE_RATE_LIMIT = 2
    assert client.post(WRITE_URL, valid_post(topics, title="One")).status_code == 302
    assert client.post(WRITE_URL, valid_post(topics, title="Two")).status_code == 302
    response = client.post(WRITE_URL, valid_post(topics, title="Three"))
    assert response.status_code == 429
    assert "Please try again in an hour" in response.content.decode()
    assert sorted(Article.objects.values_list("title", flat=True)) == ["One", "Two"]
    # Another address is not affected.
    other = client.post(WRITE_URL, valid_post(topics, title="Four"), REMOTE_ADDR="192.0.2.7")
    ratelimit.reset("write:192.0.2.7")
    assert other.status_code == 302


def test_the_emails_render_with_the_piece(topics, smtp_server, client):
    member_of("Editors", username="desk", email="desk@example.org")
    client.post(WRITE_URL, valid_post(topics))
    article = Article.objects.get()
    send_submission_acknowledgement(article.pk)
    notify_editors_of_submission(article.pk)
    [ack] = smtp_server.handler.to("petra@example.org")
    assert ack["Subject"].strip() == "We received your article “Why the interconnector matters”"
    assert "Dear Petra Novakova" in ack.get_body(("plain",)).get_content()
    assert "Dear Petra Novakova" in ack.get_body(("html",)).get_content()
    [notice] = smtp_server.handler.to("desk@example.org")
    assert notice["Reply-To"] == "petra@example.org"
    assert f"/admin/articles/article/{article.pk}/change/" in notice.get_body(("plain",)).get_content()


def test_a_task_for_a_deleted_article_does_nothing(db, smtp_server):
    send_submission_acknowledgement(123456)
    notify_editors_of_submission(123456)
    assert smtp_server.handler.recipients() == []


@pytest.mark.integration
def test_a_real_worker_mails_the_contributor_and_the_editors(transactional_db, smtp_server, client, topics):
    member_of("Editors", username="desk", email="desk@example.org")
    worker = WorkerProcess(extra_env={"EMAIL_URL": smtp_server.url}).start(timeout=60)
    try:
        response = client.post(WRITE_URL, valid_post(topics))
        assert response.status_code == 302
        wait_until(lambda: smtp_server.handler.to("petra@example.org"), timeout=60)
        wait_until(lambda: smtp_server.handler.to("desk@example.org"), timeout=60)
    finally:
        worker.stop()
    assert len(smtp_server.handler.to("petra@example.org")) == 1
    assert len(smtp_server.handler.to("desk@example.org")) == 1


@pytest.mark.integration
def test_a_refused_submission_enqueues_no_email(client, topics, django_capture_on_commit_callbacks, mailoutbox):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(WRITE_URL, valid_post(topics, body="<script>x</script>"))
    assert response.status_code == 400
    assert Article.objects.count() == 0
    # The same capture sees both emails' tasks for a piece that is taken (test above).
    assert [task_name(callback) for callback in callbacks if task_name(callback)] == []
    assert mailoutbox == []


def test_the_rate_limiter_counts_per_key_within_a_window(db):
    ratelimit.reset("test:a")
    ratelimit.reset("test:b")
    assert [ratelimit.hit("test:a", limit=2, window_seconds=60) for _ in range(3)] == [True, True, False]
    assert ratelimit.hit("test:b", limit=2, window_seconds=60)
    ratelimit.reset("test:a")
    assert ratelimit.hit("test:a", limit=2, window_seconds=60)
