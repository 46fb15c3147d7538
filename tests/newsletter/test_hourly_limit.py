"""A campaign that spent its hourly allowance waits for the next hour with a bounded
number of parked tasks, none of which waits longer than the broker's visibility timeout.

Time is moved by time-machine; the tasks go to the real broker (Redis), and this test
plays the worker: it runs each queued task whose time has come, in this process.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.utils import timezone

from euro_prospects.celery import app as celery_app
from newsletter import sending, tasks
from newsletter.models import Campaign
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@dataclass
class Queued:
    task: str
    args: list[Any]
    eta: datetime | None
    raw: Any  # the message as the broker holds it


def broker() -> redis.Redis:
    return redis.Redis.from_url(django_settings.CELERY_BROKER_URL)


def queued() -> list[Queued]:
    """The campaign's batch tasks waiting in the broker."""
    found = []
    for raw in broker().lrange("celery", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] != "newsletter.tasks.send_campaign_batch":
            continue
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        eta = message["headers"].get("eta")
        found.append(Queued(message["headers"]["task"], args, datetime.fromisoformat(eta) if eta else None, raw))
    return found


def parked() -> list[Queued]:
    return [message for message in queued() if message.eta is not None and message.eta > timezone.now()]


def run_due_tasks() -> None:
    """Run every queued task that is due now, as a worker would, until none is left."""
    for _ in range(100):
        due = [message for message in queued() if message.eta is None or message.eta <= timezone.now()]
        if not due:
            return
        for message in due:
            broker().lrem("celery", 1, message.raw)
            tasks.send_campaign_batch(*message.args)
    pytest.fail("tasks kept enqueueing each other")


@pytest.fixture
def empty_broker() -> None:
    celery_app.control.purge()
    client = broker()
    for key in client.scan_iter("*ratelimit:newsletter:rate:*"):
        client.delete(key)


def test_waiting_for_the_next_hour_parks_one_task_per_chain_each_shorter_than_the_visibility_timeout(
    smtp_server, settings, empty_broker
):
    settings.NEWSLETTER_RATE_PER_HOUR = 3
    settings.NEWSLETTER_SEND_CONCURRENCY = 2
    settings.NEWSLETTER_LEASE_SECONDS = 90
    visibility_timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    readers = [SubscriberFactory.create() for _ in range(5)]
    article = ArticleFactory.create()

    with time_machine.travel(datetime(2031, 3, 4, 9, 0, 30, tzinfo=UTC)) as traveller:
        campaign = sending.start_campaign_for_article(article_id=article.pk)
        assert campaign is not None
        campaigns.launch_batches(campaign_id=campaign.pk)  # on commit in production
        run_due_tasks()
        assert len(smtp_server.handler.recipients()) == 3  # this hour's allowance

        # Recovery runs every 30 s and a lease is 90 s: watch a dozen leases of the wait.
        for _ in range(12):
            traveller.shift(timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS + 1))
            sending.recover_stalled_campaigns()
            run_due_tasks()
            waiting = parked()
            assert 1 <= len(waiting) <= settings.NEWSLETTER_SEND_CONCURRENCY
            for message in waiting:
                assert message.eta is not None
                assert (message.eta - timezone.now()).total_seconds() <= visibility_timeout
            assert len(smtp_server.handler.recipients()) == 3

        traveller.move_to(datetime(2031, 3, 4, 10, 0, 5, tzinfo=UTC))
        while parked() or queued():
            traveller.shift(timedelta(seconds=60))
            run_due_tasks()

    assert Counter(smtp_server.handler.recipients()) == Counter(r.email for r in readers)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
