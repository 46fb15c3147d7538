"""The contributor's loop: a piece sent through /write/, its private status page, the
editor's decisions emailed with their note, the published link, and an attached image."""

import io
import re
from datetime import timedelta

import pytest
import time_machine
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from articles import contributors, permissions, services
from articles.models import Article
from euro_prospects import ratelimit
from euro_prospects.celery import app as celery_app
from tests.support.factories import TopicFactory
from tests.support.workers import WorkerProcess, wait_until

WRITE_URL = "/write/"


@pytest.fixture(autouse=True)
def fresh_rate_limit():
    ratelimit.reset("write:127.0.0.1")
    yield
    ratelimit.reset("write:127.0.0.1")


@pytest.fixture
def topic(db):
    return TopicFactory.create(name="Energy", slug="energy")


def image_file(width=1400, height=800, fmt="PNG", name="cable.png"):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 80, 140)).save(buffer, fmt)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type=f"image/{fmt.lower()}")


def post(topic, **changes):
    data = {
        "name": "Petra Novakova",
        "email": "petra@example.org",
        "bio": "Petra studies energy markets.",
        "title": "Why the interconnector matters",
        "standfirst": "A cable under the sea could change prices on both shores.",
        "body": "First paragraph.\n\nSecond paragraph.",
        "topics": [topic.pk],
        "consent": "on",
        "website": "",
    }
    data.update(changes)
    return data


def body_of(message) -> str:
    return message.get_body(("plain",)).get_content()


def status_path_in(message) -> str:
    found = re.search(r"https?://[^/\s]+(/write/status/[^/\s]+/)", body_of(message))
    assert found, body_of(message)
    return found.group(1)


@pytest.fixture
def mail_worker(smtp_server, transactional_db):
    """A real Celery worker process sending its mail to ``smtp_server``."""
    celery_app.control.purge()
    worker = WorkerProcess(extra_env={"EMAIL_URL": smtp_server.url}).start(timeout=60)
    try:
        yield worker
    finally:
        worker.stop()


def mail_to(smtp_server, address, count):
    return wait_until(lambda: (found := smtp_server.handler.to(address)) and len(found) >= count and found)


@pytest.mark.integration
def test_the_contributor_hears_of_each_step_with_the_editors_note(client, topic, eva, smtp_server, mail_worker):
    response = client.post(WRITE_URL, post(topic))
    assert response.status_code == 302
    thanks = client.get(response["Location"])
    assert "Thank you: your article is with our editors" in thanks.content.decode()
    assert "With our editors" in thanks.content.decode()
    [acknowledgement] = mail_to(smtp_server, "petra@example.org", 1)
    status = status_path_in(acknowledgement)
    assert response["Location"].startswith(status)

    article = Article.objects.get()
    services.return_to_draft(article=article, by=eva, note="Please add a source for the price figures.")
    sent_back = mail_to(smtp_server, "petra@example.org", 2)[1]
    assert "asks for changes" in sent_back["Subject"]
    assert "Please add a source for the price figures." in body_of(sent_back)
    assert sent_back["Reply-To"] == "eva@example.org"
    page = client.get(status).content.decode()
    assert "Sent back to you" in page
    assert "Please add a source for the price figures." in page

    services.submit_for_review(article=article, by=eva)
    services.approve_article(article=article, by=eva, note="Thank you, the sources are good.")
    accepted = mail_to(smtp_server, "petra@example.org", 3)[2]
    assert "is accepted" in accepted["Subject"]
    assert "the sources are good" in body_of(accepted)
    assert "Accepted" in client.get(status).content.decode()

    services.publish_article(article=article, by=eva)
    live = mail_to(smtp_server, "petra@example.org", 4)[3]
    assert "is live" in live["Subject"]
    assert f"/articles/{article.slug}/" in body_of(live)
    page = client.get(status).content.decode()
    assert "Published" in page
    assert f"/articles/{article.slug}/" in page


def test_a_declined_piece_tells_the_contributor_why(
    client, topic, eva, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        client.post(WRITE_URL, post(topic))
    article = Article.objects.get()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.decline_article(article=article, by=eva, note="We covered this subject last month.")
    [_enqueued] = [callback for callback in callbacks if "notify_contributors_of_step" in repr(callback)]
    step = article.transitions.latest("at")
    from articles.tasks import notify_contributors_of_step

    notify_contributors_of_step(step.pk)  # what the worker runs
    [declined] = smtp_server.handler.to("petra@example.org")
    assert "We covered this subject last month." in body_of(declined)
    assert "decided not to publish it" in body_of(declined)
    article.refresh_from_db()
    assert article.status == Article.Status.DRAFT
    author = article.article_authors.get().author
    page = client.get(contributors.status_path(article, author)).content.decode()
    assert "Declined" in page
    assert "We covered this subject last month." in page


def test_a_staff_author_hears_the_editor_s_note_with_a_link_to_the_admin(coras_draft, eva, smtp_server, settings):
    services.submit_for_review(article=coras_draft, by=eva)
    services.return_to_draft(article=coras_draft, by=eva, note="Shorter, please.")
    from articles.tasks import notify_contributors_of_step

    notify_contributors_of_step(coras_draft.transitions.latest("at").pk)  # what the worker runs
    [sent_back] = smtp_server.handler.to("cora@example.org")  # her account's address: her author record has none
    assert smtp_server.handler.recipients() == ["cora@example.org"]
    assert "asks for changes" in sent_back["Subject"]
    assert "Shorter, please." in body_of(sent_back)
    assert f"{settings.SITE_URL}/admin/articles/article/{coras_draft.pk}/change/" in body_of(sent_back)
    assert "/write/status/" not in body_of(sent_back)  # status links are for contributors without an account
    assert "reply to this email with your revised piece" not in body_of(sent_back)
    assert sent_back["Reply-To"] == "eva@example.org"


def test_a_staff_author_s_own_address_on_the_byline_wins_over_the_account_s(coras_draft, cora, eva):
    author = cora.author_profile
    author.email = "cora.desk@example.org"
    author.save()
    services.submit_for_review(article=coras_draft, by=cora)
    step = services.approve_article(article=coras_draft, by=eva).transitions.latest("at")
    assert [recipient.email for recipient in contributors.recipients_of(step)] == ["cora.desk@example.org"]


def test_whoever_takes_the_step_is_not_emailed_about_it(coras_draft, cora, eva):
    """Eva edits and co-writes the piece: when she sends it back, Cora and the outside
    contributor on the byline hear of it, Eva does not; nor does a deactivated account."""
    from tests.support.factories import AuthorFactory, UserFactory

    evas_profile = AuthorFactory.create(name="Eva Marsh", slug="eva-marsh", user=eva, email="eva.desk@example.org")
    guest = AuthorFactory.create(name="Petra Novakova", slug="petra-novakova", email="petra@example.org")
    gone = AuthorFactory.create(name="Former Writer", slug="former", user=UserFactory.create(is_active=False))
    services.set_authors(article=coras_draft, authors=[cora.author_profile, evas_profile, guest, gone])
    services.submit_for_review(article=coras_draft, by=cora)
    step = services.return_to_draft(article=coras_draft, by=eva, note="Shorter.").transitions.latest("at")
    recipients = contributors.recipients_of(step)
    assert [(r.email, r.has_account) for r in recipients] == [("cora@example.org", True), ("petra@example.org", False)]
    assert "/admin/articles/article/" in recipients[0].link
    assert "/write/status/" in recipients[1].link

    # A piece going live is nobody's step: everyone on the byline hears of it.
    services.submit_for_review(article=coras_draft, by=cora)
    services.approve_article(article=coras_draft, by=eva)
    published = services.publish_article(article=coras_draft, by=None).transitions.latest("at")
    assert [r.email for r in contributors.recipients_of(published)] == [
        "cora@example.org",
        "eva.desk@example.org",
        "petra@example.org",
    ]


def test_the_editor_writes_the_note_in_the_admin(client, topic, eva, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        client.post(WRITE_URL, post(topic))
    article = Article.objects.get()
    client.force_login(eva)
    page = client.get(f"/admin/articles/article/{article.pk}/change/").content.decode()
    assert 'name="_workflow_note"' in page
    assert 'value="decline"' in page
    from tests.articles.test_admin import form_data

    data = form_data(
        title=article.title,
        slug=article.slug,
        standfirst=article.standfirst,
        body=article.body,
        _workflow="return_to_draft",
        _workflow_note="Cut the second half.",
    )
    response = client.post(f"/admin/articles/article/{article.pk}/change/", data)
    assert response.status_code == 302
    step = article.transitions.latest("at")
    assert (step.action, step.note, step.by) == ("return_to_draft", "Cut the second half.", eva)


def test_the_status_link_is_the_same_in_every_email_and_page(client, topic, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(WRITE_URL, post(topic))
    article = Article.objects.get()
    author = article.article_authors.get().author
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):
        later = contributors.status_path(article, author)
    assert response["Location"] == later + "?sent=1"
    assert "With our editors" in client.get(later).content.decode()


def test_a_status_link_sent_with_a_timestamp_still_opens(client, topic, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        client.post(WRITE_URL, post(topic))
    article = Article.objects.get()
    author = article.article_authors.get().author
    timestamped = signing.dumps([article.pk, author.pk], salt=contributors.SALT, compress=False)
    assert "With our editors" in client.get(f"/write/status/{timestamped}/").content.decode()


@pytest.mark.parametrize("token", ["nonsense", signing.dumps([1, 1], salt="other.purpose")])
def test_a_forged_status_link_answers_404(client, db, token):
    response = client.get(f"/write/status/{token}/")
    assert response.status_code == 404
    assert "does not work" in response.content.decode()


def test_the_status_page_is_private(client, topic, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(WRITE_URL, post(topic))
    page = client.get(response["Location"])
    assert page["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-store" in page["Cache-Control"]


def test_a_contributor_attaches_an_image_with_its_credit(
    client, topic, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    data = post(topic, image=image_file(), image_alt="A cable ship in a harbour", image_credit="Petra Novakova")
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(WRITE_URL, data)
    assert response.status_code == 302
    article = Article.objects.get()
    assert article.hero_image.name.endswith(".png")
    assert (article.hero_image_alt, article.hero_image_credit) == ("A cable ship in a harbour", "Petra Novakova")
    assert article.hero_image_page
    assert article.hero_image_email


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": "small"}, "it must be at least 1200 x 630"),
        ({"image": "svg"}, "SVG images are not accepted"),
        ({"image": "text"}, "not an image we can read"),
        ({"image_credit": ""}, "An image needs a credit."),
        ({"image_alt": ""}, "An image needs a description."),
    ],
)
def test_an_image_that_would_not_do_as_a_hero_is_refused(client, topic, settings, tmp_path, changes, message):
    settings.MEDIA_ROOT = tmp_path
    files = {
        "small": image_file(800, 400),
        "svg": SimpleUploadedFile("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "image/svg+xml"),
        "text": SimpleUploadedFile("x.png", b"not an image at all", "image/png"),
    }
    data = post(topic, image=image_file(), image_alt="A harbour", image_credit="Petra Novakova")
    data.update({name: files.get(value, value) for name, value in changes.items()})
    response = client.post(WRITE_URL, data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert Article.objects.count() == 0


def test_only_editors_decline(coras_draft, cora, otto):
    from django.core.exceptions import PermissionDenied

    services.submit_for_review(article=coras_draft, by=cora)
    for author in (cora, otto):
        with pytest.raises(PermissionDenied):
            services.decline_article(article=coras_draft, by=author, note="No.")
    coras_draft.refresh_from_db()
    assert coras_draft.status == Article.Status.IN_REVIEW
    assert "decline" not in permissions.allowed_actions(cora, coras_draft)
