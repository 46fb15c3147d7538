"""A new reader in a real browser (headless Chromium): subscribe, confirm from
the email, choose topics, unsubscribe in one click."""

import pytest
from django.db import connections

from newsletter.models import Subscriber
from tests.support.factories import TopicFactory
from tests.support.mail import links_in
from tests.support.workers import WorkerProcess, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def browser_page(browser):
    """A page in the session's shared browser (tests/e2e/conftest.py)."""
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
        # Inside Playwright's event loop Django's connections are per context:
        # close the one the test's reads opened, or it outlives the test database.
        connections.close_all()


def test_a_new_reader_subscribes_confirms_chooses_topics_and_unsubscribes(live_server, smtp_server, browser_page):
    TopicFactory.create(name="Energy Union", slug="energy-union")
    TopicFactory.create(name="Enlargement", slug="enlargement")
    worker = WorkerProcess(extra_env={"EMAIL_URL": smtp_server.url, "SITE_URL": live_server.url}).start(timeout=60)
    try:
        page = browser_page
        page.goto(f"{live_server.url}/newsletter/subscribe/")
        page.get_by_label("Email address").fill("browser.reader@example.org")
        page.get_by_label("Name (optional)").fill("Browser Reader")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_role("heading", name="Check your inbox").wait_for()

        [mail] = wait_until(lambda: smtp_server.handler.to("browser.reader@example.org"), timeout=60)
        [confirm_url] = [link for link in links_in(mail) if "/newsletter/confirm/" in link]
        page.goto(confirm_url)
        assert Subscriber.objects.get().status == Subscriber.Status.PENDING
        page.get_by_role("button", name="Confirm my subscription").click()
        page.get_by_role("heading", name="Subscription confirmed").wait_for()
        assert Subscriber.objects.get().status == Subscriber.Status.CONFIRMED

        welcome = wait_until(lambda: smtp_server.handler.to("browser.reader@example.org")[1:], timeout=60)[0]
        [preferences_url] = [link for link in links_in(welcome) if "/newsletter/preferences/" in link]
        page.goto(preferences_url)
        page.get_by_label("Only the topics I choose").check()
        page.get_by_label("Enlargement").check()
        page.get_by_role("button", name="Save preferences").click()
        page.get_by_text("Your preferences are saved").wait_for()
        reader = Subscriber.objects.get()
        assert reader.all_topics is False
        assert [topic.slug for topic in reader.topics.all()] == ["enlargement"]

        page.get_by_role("link", name="Unsubscribe").click()
        page.get_by_role("button", name="Unsubscribe").click()
        page.get_by_role("heading", name="You are unsubscribed").wait_for()
        assert Subscriber.objects.get().status == Subscriber.Status.UNSUBSCRIBED
    finally:
        worker.stop()
