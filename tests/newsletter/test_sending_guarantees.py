"""The sending engine's guarantees, with real parts: Celery worker processes on a
real Redis broker, the test database, and a real SMTP server (aiosmtpd).

Every test checks recipient by recipient: who got how many copies.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from articles.signals import article_published
from euro_prospects.celery import app as celery_app
from newsletter import sending
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending import campaigns
from newsletter.services import erase_subscriber
from newsletter.tasks import start_campaign
from tests.support.esp import ESPServer
from tests.support.factories import ArticleFactory, SubscriberFactory
from tests.support.smtp import (
    Login,
    ReceivedMessage,
    RecordingHandler,
    SMTPServer,
    free_port,
    throwaway_certificate,
    tls_context,
)
from tests.support.workers import ROOT, WorkerProcess, wait_until

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


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.stop()


def worker(
    smtp: SMTPServer | None,
    *,
    beat: bool = False,
    concurrency: int = 1,
    env: dict[str, str] | None = None,
    **more_env: str,
) -> WorkerProcess:
    args = ["--beat", "--schedule", str(ROOT / "var" / f"beat-{time.monotonic_ns()}")] if beat else []
    email = {"EMAIL_URL": smtp.url} if smtp is not None else {}
    extra_env = {**email, **FAST_RECOVERY, **(env or {}), **more_env}
    return WorkerProcess(concurrency=concurrency, extra_env=extra_env, extra_args=args)


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


def sender_pid(email: str | None = None) -> int:
    """The process whose batch holds ``email``'s delivery (or any claimed delivery).

    A batch's ``claimed_by`` is ``host:pid:token``. The SMTP server's hooks run in its
    event loop, where Django refuses queries: the lookup runs in a thread of its own."""
    found: list[str] = []

    def look_up() -> None:
        try:
            rows = Delivery.objects.filter(status=Delivery.Status.SENDING)
            if email is not None:
                rows = rows.filter(email__iexact=email)
            found.extend(rows.values_list("claimed_by", flat=True)[:1])
        finally:
            connection.close()

    thread = threading.Thread(target=look_up)
    thread.start()
    thread.join()
    assert found, f"no batch holds {email or 'any delivery'}"
    return int(found[0].split(":")[1])


def database_dsn() -> str:
    settings = connection.settings_dict
    host, user = settings.get("HOST") or "127.0.0.1", settings.get("USER") or "postgres"
    return f"host={host} user={user} dbname={settings['NAME']}"


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] in {"Z", "X"}
    except FileNotFoundError:
        return True


def kill(pid: int, *, whole_worker: bool = True) -> int:
    """SIGKILL the worker of ``pid`` (or only that pool process) and wait until it is dead."""
    pids = [pid]
    if whole_worker:
        group = os.getpgid(pid)
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _group_of(int(p)) == group]
        os.killpg(group, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not all(gone(p) for p in pids):
        assert time.monotonic() < deadline, "the killed worker did not die"
        time.sleep(0.001)
    return pid


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def killer(
    moment: Callable[[Any], bool], *, reader: Any = None, whole_worker: bool = True
) -> tuple[Callable[[Any], None], list[int]]:
    """A server hook that kills the worker sending to ``reader`` (or the only one sending)
    the first time ``moment`` holds; the list it returns gets the killed pid."""
    killed: list[int] = []

    def hook(arg: Any) -> None:
        if not killed and moment(arg):
            killed.append(kill(sender_pid(reader.email if reader else None), whole_worker=whole_worker))

    return hook, killed


def kill_mid_send_and_recover(smtp: SMTPServer | None, killed: list[int], article: Any, **env: str) -> None:
    """Publish with one worker, wait until the server's hook killed it, let a new worker recover."""
    celery_app.control.purge()
    doomed = worker(smtp, env=env).start()
    try:
        article_published.send(sender=type(article), article_id=article.pk)
        wait_until(lambda: killed, timeout=60)
    finally:
        doomed.stop()
    rescuer = worker(smtp, beat=True, env=env).start()
    try:
        wait_until(campaign_finished, timeout=90)
    finally:
        rescuer.stop()


def assert_each_reader_got(received: Counter[str], readers: list[Any], *, twice: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every reader exactly one copy, those in ``twice`` exactly two; and the ledger says sent."""
    got = {reader.email.lower(): received[reader.email.lower()] for reader in readers}
    assert got == {reader.email.lower(): 2 if reader.email.lower() in twice else 1 for reader in readers}
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}


def is_for(reader: Any) -> Callable[[Any], bool]:
    def matches(message_or_envelope: Any) -> bool:
        addresses = getattr(message_or_envelope, "recipients", None) or message_or_envelope.rcpt_tos
        return reader.email.lower() in (a.lower() for a in addresses)

    return matches


def test_a_worker_killed_as_the_server_accepts_a_message_sends_exactly_that_reader_a_second_copy(smtp):
    """Between the server's 250 and the ledger record: the one duplicate a dead worker can cost."""
    readers = [SubscriberFactory.create() for _ in range(60)]
    target = readers[37]
    smtp.handler.before_accept, killed = killer(is_for(target), reader=target)

    kill_mid_send_and_recover(smtp, killed, ArticleFactory.create())

    assert_each_reader_got(copies(smtp), readers, twice={target.email.lower()})


def test_a_worker_killed_in_the_middle_of_a_messages_data_sends_nobody_a_second_copy(smtp):
    """Reader 37's body is on its way, its final "." is not: the server discards the message.

    The worker sends that "." only once reader 36 is recorded; the test holds that
    record back (a lock on the row), so the kill lands before the "." every time."""
    if connection.vendor != "postgresql":
        pytest.skip("holds a row lock in PostgreSQL to keep the worker before its final '.'")
    readers = [SubscriberFactory.create() for _ in range(60)]
    previous, target = readers[36], readers[37]
    kill_at_body, killed = killer(is_for(target), reader=target)
    blocker = psycopg.connect(database_dsn())  # not autocommit: the lock lasts until rollback

    def hold_back_the_record(message: Any) -> None:
        if is_for(previous)(message) and not killed:
            blocker.execute("SELECT id FROM newsletter_delivery WHERE email = %s FOR UPDATE", [previous.email])

    smtp.handler.before_accept = hold_back_the_record

    def mid_data(envelope: Any) -> None:
        kill_at_body(envelope)
        if killed:
            blocker.rollback()

    smtp.handler.mid_data = mid_data
    try:
        kill_mid_send_and_recover(smtp, killed, ArticleFactory.create())
    finally:
        blocker.close()

    assert_each_reader_got(copies(smtp), readers)


def test_a_worker_killed_between_two_messages_sends_nobody_a_second_copy(smtp):
    """The server accepted message 37 and waits for the next MAIL FROM: on PostgreSQL the record
    of 37 already went out ahead of that envelope, so nobody gets a second copy. On SQLite a
    record waits until the next body is sent, so this is still the one accepted-but-unrecorded
    message a dead worker may cost: exactly the 37th reader gets two copies."""
    readers = [SubscriberFactory.create() for _ in range(60)]
    smtp.handler.pipelining = False  # with PIPELINING the next envelope travels with the "."
    smtp.handler.on_mail, killed = killer(lambda accepted: accepted == 37)

    kill_mid_send_and_recover(smtp, killed, ArticleFactory.create())

    thirty_seventh = smtp.handler.messages[36].recipients[0].lower()
    assert_each_reader_got(
        copies(smtp), readers, twice=set() if connection.vendor == "postgresql" else {thirty_seventh}
    )


# --- The configurations we ship, each killed at the moment that costs a duplicate ---


def test_several_worker_processes_one_killed_at_accept_cost_exactly_that_readers_second_copy(smtp):
    """Two pool processes send two batches at once; one dies (as an OOM kill would take it)."""
    readers = [SubscriberFactory.create() for _ in range(100)]
    target = readers[60]
    smtp.handler.before_accept, killed = killer(is_for(target), reader=target, whole_worker=False)
    article = ArticleFactory.create()
    celery_app.control.purge()
    pool = worker(smtp, beat=True, concurrency=2, NEWSLETTER_SEND_CONCURRENCY="2").start()
    try:
        article_published.send(sender=type(article), article_id=article.pk)
        wait_until(lambda: killed, timeout=60)
        wait_until(campaign_finished, timeout=90)
    finally:
        pool.stop()

    assert_each_reader_got(copies(smtp), readers, twice={target.email.lower()})
    assert len({peer for peer, *_ in smtp.handler.sessions}) >= 2


def test_several_connections_per_batch_killed_at_accept_cost_exactly_that_readers_second_copy(smtp):
    readers = [SubscriberFactory.create() for _ in range(60)]
    target = readers[37]
    smtp.handler.before_accept, killed = killer(is_for(target), reader=target)

    kill_mid_send_and_recover(smtp, killed, ArticleFactory.create(), NEWSLETTER_CONNECTIONS_PER_BATCH="3")

    assert_each_reader_got(copies(smtp), readers, twice={target.email.lower()})
    assert len({peer for peer, *_ in smtp.handler.sessions}) >= 3


@pytest.fixture
def mailgun() -> Iterator[ESPServer]:
    server = ESPServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_through_an_esp_batch_api_a_worker_killed_as_the_esp_takes_a_call_re_sends_that_call_only(mailgun):
    """The documented bound: one API call's readers (NEWSLETTER_ESP_BATCH_SIZE), no more."""
    readers = [SubscriberFactory.create() for _ in range(60)]
    calls: list[list[str]] = []

    def second_call(addresses: list[str]) -> bool:  # a batch of 25 goes out in calls of 10, 10, 5
        calls.append(addresses)
        return len(calls) == 2

    mailgun.state.before_answer, killed = killer(second_call)
    esp = {
        "EMAIL_URL": "anymail://mailgun",
        "DJANGO_SETTINGS_MODULE": "tests.support.esp_worker_settings",
        "TEST_MAILGUN_API_URL": f"{mailgun.url}/v3",
        "NEWSLETTER_ESP_BATCH_SIZE": "10",
    }

    kill_mid_send_and_recover(None, killed, ArticleFactory.create(), **esp)

    twice = {address.lower() for address in calls[1]}
    assert len(twice) == 10
    assert_each_reader_got(Counter(mailgun.state.recipients()), readers, twice=twice)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[SMTPServer, Path]]:
    """A relay as production has one: STARTTLS required, then AUTH; a certificate of its own."""
    certificate, key = throwaway_certificate(tmp_path)
    server = SMTPServer(tls=tls_context(certificate, key), login=Login("newsletter", "invented-secret")).start()
    try:
        yield server, certificate
    finally:
        server.stop()


def test_over_starttls_and_auth_a_worker_killed_at_accept_costs_exactly_that_readers_second_copy(relay):
    smtp, certificate = relay
    assert smtp.url.startswith("smtp+tls://newsletter:invented-secret@")
    readers = [SubscriberFactory.create() for _ in range(60)]
    target = readers[37]
    smtp.handler.before_accept, killed = killer(is_for(target), reader=target)

    # The worker verifies the relay's certificate as in production; it trusts this one CA.
    kill_mid_send_and_recover(smtp, killed, ArticleFactory.create(), SSL_CERT_FILE=str(certificate))

    assert_each_reader_got(copies(smtp), readers, twice={target.email.lower()})
    assert {(tls, authenticated) for _, tls, authenticated in smtp.handler.sessions} == {(True, True)}


def test_over_starttls_a_relay_whose_certificate_nobody_vouches_for_gets_nothing(relay, by_hand, settings):
    """Certificate verification is on, as in production: with the system's CAs only,
    the batch cannot connect and every reader waits for a retry; nothing is sent."""
    smtp, _ = relay
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "newsletter", "invented-secret"
    settings.EMAIL_USE_TLS, settings.EMAIL_USE_SSL = True, False
    campaign, _ = plan(3)

    result = sending.send_batch(campaign_id=campaign.pk)

    assert (result.sent, result.retrying) == (0, 3)
    assert "CERTIFICATE_VERIFY_FAILED" in campaign.deliveries.first().last_error  # type: ignore[union-attr]
    assert smtp.handler.messages == []


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


def test_a_database_outage_longer_than_the_wait_gives_up_the_claim_and_re_sends_only_the_message_in_flight(smtp):
    """PostgreSQL goes away as the server accepts reader 37's message and stays away past
    NEWSLETTER_DATABASE_WAIT_SECONDS: the batch sends nothing more, gives up, and once the
    database is back the campaign completes by itself; reader 37, accepted but never
    recorded, is the one reader with a second copy."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: it refuses connections to the test database")
    readers = [SubscriberFactory.create() for _ in range(60)]
    target = readers[37]
    database = connection.settings_dict["NAME"]
    ours = connection.cursor().connection.info.backend_pid
    admin = psycopg.connect(database_dsn().replace(f"dbname={database}", "dbname=postgres"), autocommit=True)
    accepted_when_it_went: list[int] = []

    def take_the_database_away(message: ReceivedMessage) -> None:
        if is_for(target)(message) and not accepted_when_it_went:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> %s",
                [database, ours],
            )
            accepted_when_it_went.append(len(smtp.handler.messages) + 1)

    smtp.handler.before_accept = take_the_database_away
    article = ArticleFactory.create()
    celery_app.control.purge()
    sender = worker(smtp, beat=True, NEWSLETTER_DATABASE_WAIT_SECONDS="2")
    sender.start()
    try:
        article_published.send(sender=type(article), article_id=article.pk)
        try:
            wait_until(lambda: accepted_when_it_went, timeout=60)
            # The batch waited NEWSLETTER_DATABASE_WAIT_SECONDS for the ledger, then gave up.
            # Well before EMAIL_TIMEOUT (30 s): giving up does not wait for the SMTP server.
            wait_until(lambda: "retry: Retry in" in sender.log_path.read_text(), timeout=15)
            assert len(smtp.handler.messages) == accepted_when_it_went[0]
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            admin.close()
        wait_until(campaign_finished, timeout=90)
    finally:
        sender.stop()

    assert_each_reader_got(copies(smtp), readers, twice={target.email.lower()})


# --- Batches that meet each other, a reader erased mid-send: one batch run by hand ----


@pytest.fixture
def by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches run in this process, on the path production runs (no transaction around them)."""
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def in_a_thread(operation: Callable[[], Any]) -> Any:
    """Run a query from an SMTP server hook (its event loop refuses Django queries)."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(operation())
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0] if result else None


def plan(readers: int) -> tuple[Campaign, list[Any]]:
    subscribers = [SubscriberFactory.create() for _ in range(readers)]
    campaign = sending.start_campaign_for_article(article_id=ArticleFactory.create().pk)
    assert campaign is not None
    return campaign, subscribers


@pytest.mark.parametrize("connections", [1, 3])
def test_a_live_batch_whose_rows_another_batch_took_stops_without_sending_them(
    by_hand, smtp_server, settings, connections
):
    """Its lease looked expired: recovery gave its rows to another batch while it was still sending."""
    if connections > 1 and connection.vendor != "postgresql":
        pytest.skip("several connections per batch run on PostgreSQL")
    settings.NEWSLETTER_CONNECTIONS_PER_BATCH = connections
    settings.NEWSLETTER_BATCH_SIZE = 40
    campaign, _ = plan(40)
    thief = "another-host:1:a-later-batch"
    taken: list[int] = []

    def take_the_rows_back(message: ReceivedMessage) -> None:
        if not taken and len(smtp_server.handler.messages) == 10:  # the 11th is being accepted
            taken.append(
                in_a_thread(
                    lambda: Delivery.objects.filter(status=Delivery.Status.SENDING).update(
                        claimed_by=thief, claimed_at=timezone.now()
                    )
                )
            )

    smtp_server.handler.before_accept = take_the_rows_back

    sending.send_batch(campaign_id=campaign.pk)

    assert taken == [30]  # readers 11 to 40, the one being accepted among them
    assert len(smtp_server.handler.recipients()) == 11  # nothing after the 11th, whose record found the row taken
    assert campaign.deliveries.filter(status=Delivery.Status.SENT).count() == 10
    assert campaign.deliveries.filter(status=Delivery.Status.SENDING, claimed_by=thief).count() == 30


def test_two_batches_claiming_at_the_same_moment_split_the_readers_and_send_each_once(by_hand, smtp_server, settings):
    settings.NEWSLETTER_BATCH_SIZE = 40
    if connection.vendor == "postgresql":
        settings.NEWSLETTER_CONNECTIONS_PER_BATCH = 2
    campaign, readers = plan(100)
    start = threading.Barrier(2)
    claimed: list[int] = []

    def chain() -> None:
        try:
            start.wait()
            while result := sending.send_batch(campaign_id=campaign.pk).claimed:
                claimed.append(result)
        finally:
            connection.close()

    chains = [threading.Thread(target=chain) for _ in range(2)]
    for thread in chains:
        thread.start()
    for thread in chains:
        thread.join()

    assert sum(claimed) == 100
    assert_each_reader_got(copies(smtp_server), readers)
    assert campaign.deliveries.filter(status=Delivery.Status.SENT, attempts=1).count() == 100


def test_a_reader_erased_while_their_delivery_is_claimed_does_not_stop_the_batch(by_hand, smtp_server, settings):
    """Erasure deletes the reader's ledger rows; the batch's record of them finds nothing,
    which must not read as a lost lease: the batch goes on with everyone else."""
    settings.NEWSLETTER_BATCH_SIZE = 40
    campaign, readers = plan(40)
    leaving = readers[10]

    def erase_as_accepted(message: ReceivedMessage) -> None:
        if is_for(leaving)(message):
            in_a_thread(lambda: erase_subscriber(subscriber=Subscriber.objects.get(pk=leaving.pk)))

    smtp_server.handler.before_accept = erase_as_accepted

    result = sending.send_batch(campaign_id=campaign.pk)

    assert (result.sent, result.released) == (40, 0)
    others = [reader for reader in readers if reader is not leaving]
    assert_each_reader_got(copies(smtp_server), others)
    assert not Subscriber.objects.filter(pk=leaving.pk).exists()
    assert not Delivery.objects.filter(email=leaving.email).exists()
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0  # the chain's next link
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_a_campaign_cancelled_while_a_batch_is_sending_stops_within_that_batch(by_hand, smtp_server, settings):
    settings.NEWSLETTER_BATCH_SIZE = 40
    campaign, _ = plan(100)

    def cancel_at_the_tenth(message: ReceivedMessage) -> None:
        if len(smtp_server.handler.messages) == 9:
            in_a_thread(lambda: sending.cancel_campaign(campaign=Campaign.objects.get(pk=campaign.pk)))

    smtp_server.handler.before_accept = cancel_at_the_tenth

    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass

    received = copies(smtp_server)
    assert 10 <= len(received) <= 40
    assert set(received.values()) == {1}
    sent = set(campaign.deliveries.filter(status=Delivery.Status.SENT).values_list("email", flat=True))
    assert {email.lower() for email in sent} == set(received)
    assert campaign.deliveries.exclude(status=Delivery.Status.SENT).exclude(status=Delivery.Status.SKIPPED).count() == 0
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
