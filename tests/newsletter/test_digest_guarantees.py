"""Digests with real parts: Celery worker processes on the real Redis broker, the test
database and a real SMTP server. Checked reader by reader: who got how many copies."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from articles.models import SiteSettings
from articles.services import publish_article
from euro_prospects.celery import app as celery_app
from newsletter import digests
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.tasks import send_due_digests
from tests.newsletter.test_sending_guarantees import copies, slow_smtp, worker
from tests.support.factories import ArticleFactory, SubscriberFactory, TopicFactory
from tests.support.mail import link_to
from tests.support.workers import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

__all__ = ["slow_smtp"]  # the fixture, shared with the article campaigns' guarantees


def digest_finished(cadence: str = "weekly") -> bool:
    return Campaign.objects.filter(digest=cadence, status=Campaign.Status.FINISHED, recipients__gt=0).exists()


def weekly_readers(count: int, *topics) -> list[Subscriber]:
    readers = []
    for index in range(count):
        reader = SubscriberFactory.create(
            cadence=Subscriber.Cadence.WEEKLY, all_topics=False, confirmed_at=timezone.now() - timedelta(days=3)
        )
        reader.topics.set([topics[index % len(topics)]])
        readers.append(reader)
    return readers


def test_a_worker_killed_mid_digest_costs_at_most_one_duplicate_and_the_digest_completes(slow_smtp):
    energy, farming = TopicFactory.create(), TopicFactory.create()
    readers = weekly_readers(300, energy, farming)
    ArticleFactory.create(topics=[energy])
    ArticleFactory.create(topics=[farming])
    ArticleFactory.create(topics=[energy, farming])
    celery_app.control.purge()
    doomed = worker(slow_smtp).start()
    try:
        digests.start_due_digests(digest="weekly", at_once=True)
        wait_until(lambda: len(slow_smtp.handler.recipients()) >= 60, timeout=60)
        doomed.kill()
    finally:
        doomed.stop()
    time.sleep(slow_smtp.handler.delay * 20)  # a final "." sent just before dying is still accepted
    accepted_before_kill = set(slow_smtp.handler.recipients())
    recorded_before_kill = set(Delivery.objects.filter(status=Delivery.Status.SENT).values_list("email", flat=True))
    unrecorded = accepted_before_kill - recorded_before_kill
    assert len(unrecorded) <= 1
    assert len(accepted_before_kill) < len(readers)  # it really died in the middle

    rescuer = worker(slow_smtp, beat=True).start()
    try:
        wait_until(digest_finished, timeout=90)
    finally:
        rescuer.stop()

    received = copies(slow_smtp)
    for reader in readers:
        expected = {1, 2} if reader.email in unrecorded else {1}
        assert received[reader.email] in expected, reader.email
    assert sum(received.values()) <= len(readers) + 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_beat_firing_twice_starts_one_digest_and_each_reader_gets_it_once(smtp_server):
    last, _ = digests.period_bounds(digest="weekly", now=timezone.now(), site=SiteSettings.load())
    topic = TopicFactory.create()
    readers = weekly_readers(20, topic)
    for reader in readers:
        Subscriber.objects.filter(pk=reader.pk).update(confirmed_at=last - timedelta(days=2))
    ArticleFactory.create(topics=[topic], published_at=last - timedelta(hours=3))
    celery_app.control.purge()
    sender = worker(smtp_server).start()
    try:
        send_due_digests.delay()
        send_due_digests.delay()
        wait_until(digest_finished, timeout=60)
    finally:
        sender.stop()
    send_due_digests.apply()  # a later run, here in the test process, starts nothing either

    assert Campaign.objects.filter(digest="weekly").count() == 1
    assert Campaign.objects.filter(digest="daily").count() == 1  # empty: nobody reads daily
    assert sorted(smtp_server.handler.recipients()) == sorted(r.email for r in readers)


def test_a_new_reader_picks_weekly_and_reads_the_digest(mail_worker, smtp_server, eva):
    address = "new.reader@example.org"
    client = Client()
    client.post("/newsletter/subscribe/", {"email": address})
    [confirmation] = wait_until(lambda: smtp_server.handler.to(address), timeout=60)
    client.post(link_to(confirmation, "/newsletter/confirm/"))
    welcome = wait_until(lambda: smtp_server.handler.to(address)[1:], timeout=60)[0]
    response = client.post(link_to(welcome, "/newsletter/preferences/"), {"all_topics": "1", "cadence": "weekly"})
    assert response.status_code == 200
    everyone_else = SubscriberFactory.create(confirmed_at=timezone.now() - timedelta(days=1))

    titles = ["Cross-border grids before winter", "A new corridor for grain", "Ports under strain"]
    for title in titles:
        publish_article(article=ArticleFactory.create(title=title, status="approved", published_at=None), by=eva)
    wait_until(lambda: len(smtp_server.handler.to(everyone_else.email)) == 3, timeout=60)
    call_command("send_digests", "--now")

    [digest] = wait_until(lambda: smtp_server.handler.to(address)[2:], timeout=60)
    text = digest.get_body(("plain",)).get_content()
    assert [text.index(title) for title in reversed(titles)] == sorted(text.index(title) for title in titles)
    assert digest["Subject"] == "Your weekly digest: Ports under strain and 2 more"
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert len(smtp_server.handler.to(address)) == 3  # confirmation, welcome, digest: no article email
