"""The sending engine's guarantees, with real parts: Celery worker processes on a
real Redis broker, the test database, and a real SMTP server (aiosmtpd).

Every test checks recipient by recipient: who got how many copies.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection

from articles.signals import article_published
from euro_prospects.celery import app as celery_app
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.tasks import start_campaign
from tests.conftest import ROOT, WorkerProcess, wait_until
from tests.factories import ArticleFactory, SubscriberFactory
from tests.smtp import RecordingHandler, SMTPServer, free_port

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST_RECOVERY = {
    "NEWSLETTER_BATCH_SIZE": "25",
    "NEWSLETTER_LEASE_SECONDS": "6",
    "NEWSLETTER_RECOVERY_INTERVAL": "2",
    "NEWSLETTER_RETRY_BASE_SECONDS": "1",
    "NEWSLETTER_RETRY_MAX_SECONDS": "2",
}


class SlowHandler(RecordingHandler):
    """Takes a few milliseconds per message, so a test can act in the middle of a send."""

    delay: float = 0.01

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    server.handler = server.controller.handler = SlowHandler()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def worker(smtp: SMTPServer, *, beat: bool = False, **env: str) -> WorkerProcess:
    args = ["--beat", "--schedule", str(ROOT / "var" / f"beat-{time.monotonic_ns()}")] if beat else []
    return WorkerProcess(extra_env={"EMAIL_URL": smtp.url, **FAST_RECOVERY, **env}, extra_args=args)


def copies(smtp: SMTPServer) -> Counter[str]:
    return Counter(smtp.handler.recipients())


def campaign_finished() -> bool:
    return Campaign.objects.filter(status=Campaign.Status.FINISHED).exists()


def test_publishing_reaches_every_reader_once_through_faults(slow_smtp):
    """4xx, a dropped connection and a 5xx in one send: the first two are retried, the last suppressed."""
    slow_smtp.handler.delay = 0
    readers = [SubscriberFactory.create() for _ in range(120)]
    busy, gone = readers[10], readers[50]
    slow_smtp.handler.rcpt_faults[busy.email] = "450 4.2.1 Mailbox busy"
    slow_smtp.handler.rcpt_faults[gone.email] = "550 5.1.1 No such user"
    slow_smtp.handler.drop_after = 30
    article = ArticleFactory.create()
    celery_app.control.purge()
    sender = worker(slow_smtp, beat=True).start()
    try:
        article_published.send(sender=type(article), article_id=article.pk)
        wait_until(lambda: Delivery.objects.filter(subscriber=busy, attempts__gte=1).exists(), timeout=60)
        del slow_smtp.handler.rcpt_faults[busy.email]
        wait_until(campaign_finished, timeout=60)
    finally:
        sender.stop()

    received = copies(slow_smtp)
    for reader in readers:
        assert received[reader.email] == (0 if reader is gone else 1), reader.email
    assert Delivery.objects.get(subscriber=busy).status == Delivery.Status.SENT
    assert Delivery.objects.get(subscriber=busy).attempts >= 2
    refused = Delivery.objects.get(subscriber=gone)
    assert refused.status == Delivery.Status.FAILED
    assert "550 5.1.1" in refused.last_error
    gone.refresh_from_db()
    assert gone.status == Subscriber.Status.BOUNCED
    assert Delivery.objects.filter(last_error__contains="connection lost", status=Delivery.Status.SENT).exists()
    assert Campaign.objects.get().recipients == len(readers)


def test_a_killed_worker_costs_at_most_one_duplicate_and_the_send_completes_by_itself(slow_smtp):
    readers = [SubscriberFactory.create() for _ in range(300)]
    article = ArticleFactory.create()
    celery_app.control.purge()
    doomed = worker(slow_smtp).start()
    try:
        article_published.send(sender=type(article), article_id=article.pk)
        wait_until(lambda: len(slow_smtp.handler.recipients()) >= 60, timeout=60)
        doomed.kill()
    finally:
        doomed.stop()
    # A final "." the worker sent just before dying is still accepted by the (slow) server.
    time.sleep(slow_smtp.handler.delay * 20)
    accepted_before_kill = set(slow_smtp.handler.recipients())
    recorded_before_kill = set(Delivery.objects.filter(status=Delivery.Status.SENT).values_list("email", flat=True))
    unrecorded = accepted_before_kill - recorded_before_kill
    assert len(unrecorded) <= 1
    assert len(accepted_before_kill) < len(readers)  # it really died in the middle

    rescuer = worker(slow_smtp, beat=True).start()
    try:
        wait_until(campaign_finished, timeout=90)
    finally:
        rescuer.stop()

    received = copies(slow_smtp)
    for reader in readers:
        expected = {1, 2} if reader.email in unrecorded else {1}
        assert received[reader.email] in expected, reader.email
    assert sum(received.values()) <= len(readers) + 1
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


@pytest.fixture
def private_redis() -> Iterator[Any]:
    """A Redis of this test's own, which it may kill and restart (the shared one stays up)."""
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()

    class PrivateRedis:
        url = f"redis://127.0.0.1:{port}/0"
        process: subprocess.Popen[bytes] | None = None

        def start(self) -> None:
            self.process = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
            )
            ping = ["redis-cli", "-p", str(port), "ping"]
            wait_until(lambda: subprocess.run(ping, capture_output=True).returncode == 0)

        def kill(self) -> None:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        if redis.process and redis.process.poll() is None:
            redis.kill()


def test_restarting_redis_in_the_middle_of_a_send_causes_no_duplicates(slow_smtp, private_redis, monkeypatch):
    readers = [SubscriberFactory.create() for _ in range(300)]
    article = ArticleFactory.create()
    sender = worker(slow_smtp, beat=True, CELERY_BROKER_URL=private_redis.url, REDIS_URL=private_redis.url)

    # WorkerProcess.start pings through the test's own broker; this worker listens on the private one.
    def ready(destination: list[str], timeout: float) -> bool:
        time.sleep(timeout)
        return "ready." in sender.log_path.read_text()

    monkeypatch.setattr(celery_app.control, "ping", ready)
    sender.start()
    monkeypatch.undo()
    try:
        with celery_app.connection_for_write(private_redis.url) as conn:
            start_campaign.apply_async((article.pk,), connection=conn)  # type: ignore[call-arg]
        wait_until(lambda: len(slow_smtp.handler.recipients()) >= 60, timeout=60)
        private_redis.kill()  # every queued task is lost with it: no persistence
        wait_until(lambda: "Connection to broker lost" in sender.log_path.read_text(), timeout=30)
        private_redis.start()
        wait_until(campaign_finished, timeout=60)
    finally:
        sender.stop()

    received = copies(slow_smtp)
    for reader in readers:
        assert received[reader.email] == 1, reader.email


def test_postgresql_going_away_in_the_middle_of_a_send_causes_no_duplicates(slow_smtp):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: it refuses connections to the test database for a few seconds")
    readers = [SubscriberFactory.create() for _ in range(300)]
    article = ArticleFactory.create()
    database = connection.settings_dict["NAME"]
    admin_dsn = f"host={connection.settings_dict.get('HOST') or '127.0.0.1'} user=postgres dbname=postgres"
    celery_app.control.purge()
    # A long lease: a short outage must not look like a dead worker.
    sender = worker(slow_smtp, beat=True, NEWSLETTER_LEASE_SECONDS="40").start()
    try:
        article_published.send(sender=type(article), article_id=article.pk)
        wait_until(lambda: len(slow_smtp.handler.recipients()) >= 60, timeout=60)
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                    [database, connection.cursor().connection.info.backend_pid],
                )

                def outage_retries() -> int:
                    return sender.log_path.read_text().count("event=database_unavailable")

                wait_until(outage_retries, timeout=30)
                during = len(slow_smtp.handler.recipients())
                seen = outage_retries()
                wait_until(lambda: outage_retries() >= seen + 4, timeout=30)  # 0.5 s apart
                assert len(slow_smtp.handler.recipients()) <= during + 1  # sending waits for the ledger
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        wait_until(campaign_finished, timeout=90)
    finally:
        sender.stop()

    received = copies(slow_smtp)
    for reader in readers:
        assert received[reader.email] == 1, reader.email
