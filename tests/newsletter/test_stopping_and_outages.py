"""Stopping a send, and publishing while the broker is down, with real parts: Celery
worker processes on a real Redis broker, the test database and a real SMTP server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from articles.models import Article
from articles.services import unpublish_article
from articles.signals import article_published
from euro_prospects.celery import app as celery_app
from newsletter import sending
from newsletter.models import Campaign, Delivery
from tests.newsletter.test_sending_guarantees import (  # noqa: F401 (fixtures)
    SlowHandler,
    private_redis,
    slow_smtp,
    worker,
)
from tests.support.factories import ArticleFactory, SubscriberFactory
from tests.support.smtp import SMTPServer
from tests.support.workers import ROOT, database_url, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def batch_let_go() -> bool:
    return not Delivery.objects.filter(status=Delivery.Status.SENDING).exists()


def send_and_stop(smtp: SMTPServer, stop: str) -> tuple[int, int]:
    """Start sending 400 readers in one batch, stop it after 40; the messages sent before and after the stop."""
    assert isinstance(smtp.handler, SlowHandler)
    smtp.handler.delay = 0.02  # at most 50 messages a second
    [SubscriberFactory.create() for _ in range(400)]
    article = ArticleFactory.create()
    celery_app.control.purge()
    # One batch of the whole list, and the default lease: the stop cannot wait for a lease renewal.
    sender = worker(smtp, NEWSLETTER_BATCH_SIZE="400", NEWSLETTER_SEND_CONCURRENCY="1", NEWSLETTER_LEASE_SECONDS="90")
    sender.start()
    try:
        article_published.send(sender=Article, article_id=article.pk)
        wait_until(lambda: len(smtp.handler.recipients()) >= 40, timeout=60)
        if stop == "cancel":
            sending.cancel_campaign(campaign=Campaign.objects.get())
        else:
            unpublish_article(article=article, by=None)
        at_stop = len(smtp.handler.recipients())
        wait_until(batch_let_go, timeout=60)
        time.sleep(0.5)  # a last message would have arrived by now
    finally:
        sender.stop()
    return at_stop, len(smtp.handler.recipients())


@pytest.mark.parametrize("stop", ["cancel", "unpublish"])
def test_cancelling_or_unpublishing_stops_the_batch_in_flight_within_a_second(slow_smtp, stop):  # noqa: F811
    at_stop, total = send_and_stop(slow_smtp, stop)

    assert total - at_stop <= 51 + 10  # one second at 50 a second, the one in flight, and some slack
    assert total < 400
    campaign = Campaign.objects.get()
    assert campaign.status == Campaign.Status.CANCELLED
    sent = campaign.deliveries.filter(status=Delivery.Status.SENT)
    assert sent.count() == total
    assert Counter(slow_smtp.handler.recipients()) == Counter(sent.values_list("email", flat=True))
    assert set(campaign.deliveries.exclude(status=Delivery.Status.SENT).values_list("status", flat=True)) == {
        Delivery.Status.SKIPPED
    }


SETTINGS, SETTINGS_MODULE = "DJANGO_SETTINGS_MODULE", "euro_prospects.settings"
PUBLISH = """
import time
import django
django.setup()
from articles.models import Article
from articles.services import publish_article, publish_scheduled_articles
started = time.monotonic()
publish_article(article=Article.objects.get(pk={now}), by=None)
assert publish_scheduled_articles() == [{scheduled}]
print(f"published in {{time.monotonic() - started:.1f}} s")
"""


def test_publishing_while_the_broker_is_down_still_sends_every_reader_the_piece_once(
    slow_smtp,  # noqa: F811
    private_redis,  # noqa: F811
    monkeypatch,
):
    """An editor publishes and the scheduler publishes while Redis is down: neither fails,
    and once Redis is back each reader gets each piece exactly once."""
    slow_smtp.handler.delay = 0
    readers = [SubscriberFactory.create() for _ in range(30)]
    now = ArticleFactory.create(title="Published by hand", status=Article.Status.APPROVED, published_at=None)
    scheduled = ArticleFactory.create(
        title="Published on schedule",
        status=Article.Status.SCHEDULED,
        published_at=None,
        publish_at=timezone.now() - timedelta(seconds=1),
    )
    env = {"REDIS_URL": private_redis.url, "CELERY_BROKER_URL": private_redis.url}
    sender = worker(slow_smtp, beat=True, **env)

    # WorkerProcess.start pings through the test's own broker; this worker listens on the private one.
    def ready(destination: list[str], timeout: float) -> bool:
        time.sleep(timeout)
        return "ready." in sender.log_path.read_text()

    monkeypatch.setattr(celery_app.control, "ping", ready)
    sender.start()
    monkeypatch.undo()
    try:
        # Celery gives up when its broker goes the moment it connected: wait for a first task.
        wait_until(lambda: re.search(r"recover_campaigns\[\S+\] succeeded", sender.log_path.read_text()), timeout=30)
        private_redis.kill()
        editor = subprocess.run(
            [sys.executable, "-c", PUBLISH.format(now=now.pk, scheduled=scheduled.pk)],
            cwd=ROOT,
            env=os.environ | env | {"DATABASE_URL": database_url(connection.settings_dict), SETTINGS: SETTINGS_MODULE},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert editor.returncode == 0, editor.stderr[-3000:]
        assert set(Article.objects.values_list("status", flat=True)) == {Article.Status.PUBLISHED}
        assert Campaign.objects.count() == 2  # recorded with the publishing, whatever the broker
        time.sleep(2)
        private_redis.start()
        wait_until(
            lambda: Campaign.objects.filter(status=Campaign.Status.FINISHED).count() == 2,
            timeout=90,
            describe=lambda: (
                f"campaigns {list(Campaign.objects.values_list('status', flat=True))}, "
                f"editor said {editor.stdout.strip()!r}; the worker's log ends:\n"
                + "\n".join(sender.log_path.read_text().splitlines()[-40:])
            ),
        )
    finally:
        sender.stop()

    received = Counter((m.recipients[0].lower(), m.parsed()["Subject"]) for m in slow_smtp.handler.messages)
    for reader in readers:
        for title in ("Published by hand", "Published on schedule"):
            assert received[(reader.email.lower(), title)] == 1, (reader.email, title)
    assert sum(received.values()) == 2 * len(readers)
