"""The sending engine: plan a campaign's ledger, claim batches, send, record, recover.

Each Delivery row moves pending -> sending -> sent | retrying | failed | skipped.
A batch claims rows (``claimed_by`` + a lease in ``claimed_at``), sends them over one
connection and records each result before sending the next message, so a worker that
dies can leave at most one message sent but unrecorded. ``recover_stalled_campaigns``
(a beat task) returns expired leases to pending and restarts stalled campaigns; it
does not wait for the broker's visibility timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import smtplib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from articles.models import Article
from euro_prospects import metrics
from newsletter.emails import CampaignEmail, Recipient, render_campaign_email
from newsletter.models import Campaign, Delivery, Subscriber

logger = logging.getLogger("newsletter.sending")
T = TypeVar("T")


# --- Planning -------------------------------------------------------------------


def start_campaign_for_article(*, article_id: int) -> Campaign | None:
    """Create (once) and plan the campaign of a published article; None when it is not to be sent."""
    article = Article.objects.filter(pk=article_id).first()
    if article is None or not article.send_to_subscribers or article.status != Article.Status.PUBLISHED:
        return None
    try:
        with transaction.atomic():
            campaign, _ = Campaign.objects.get_or_create(article=article)
    except IntegrityError:  # another worker created it between our read and insert
        campaign = Campaign.objects.get(article=article)
    if campaign.status == Campaign.Status.PLANNING:
        campaign = plan_campaign(campaign=campaign)
    return campaign


def plan_campaign(*, campaign: Campaign) -> Campaign:
    """Insert one pending Delivery per confirmed subscriber who wants the article, in one statement."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != Campaign.Status.PLANNING:
            return campaign
        now = timezone.now()
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(_PLAN_SQL, [campaign.pk, now, now, campaign.article_id])
        campaign.recipients = Delivery.objects.filter(campaign=campaign).count()
        campaign.status = Campaign.Status.SENDING
        campaign.planned_at = campaign.last_activity_at = timezone.now()
        campaign.save(update_fields=["recipients", "status", "planned_at", "last_activity_at"])
        logger.info(
            "campaign=%s event=planned recipients=%s seconds=%.3f",
            campaign.pk,
            campaign.recipients,
            time.monotonic() - started,
        )
        transaction.on_commit(lambda: launch_batches(campaign_id=campaign.pk))
    return campaign


# Confirmed readers on the immediate cadence who take every topic or one of the article's.
# (Weekly readers get the digest instead.) ON CONFLICT makes re-planning harmless.
_PLAN_SQL = """
INSERT INTO newsletter_delivery
    (campaign_id, subscriber_id, email, status, attempts, last_error, provider_message_id,
     claimed_by, created_at, updated_at)
SELECT %s, s.id, s.email, 'pending', 0, '', '', '', %s, %s
FROM newsletter_subscriber s
WHERE s.status = 'confirmed' AND s.cadence = 'immediate'
  AND (s.all_topics OR EXISTS (
      SELECT 1 FROM newsletter_subscriber_topics st
      JOIN articles_articletopic at ON at.topic_id = st.topic_id
      WHERE st.subscriber_id = s.id AND at.article_id = %s))
ORDER BY s.id
ON CONFLICT (campaign_id, subscriber_id) DO NOTHING
"""


def launch_batches(*, campaign_id: int) -> None:
    """Start the campaign's parallel batch chains (each re-enqueues itself while work remains)."""
    from newsletter.tasks import send_campaign_batch

    for _ in range(settings.NEWSLETTER_SEND_CONCURRENCY):
        send_campaign_batch.delay(campaign_id)


# --- Claiming -------------------------------------------------------------------


def _due(now: datetime) -> Any:
    from django.db.models import Q

    return Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.RETRYING, next_attempt_at__lte=now)


def claim_batch(*, campaign: Campaign, claimed_by: str, size: int) -> list[Recipient]:
    """Take up to ``size`` due deliveries for this batch; skip readers who are no longer confirmed."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(_due(now), campaign=campaign)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:size]
        )
        if not ids:
            return []
        Delivery.objects.filter(id__in=ids).update(
            status=Delivery.Status.SENDING, claimed_by=claimed_by, claimed_at=now, updated_at=now
        )
        Delivery.objects.filter(id__in=ids).exclude(subscriber__status=Subscriber.Status.CONFIRMED).update(
            status=Delivery.Status.SKIPPED, claimed_by="", last_error="Reader no longer subscribed", updated_at=now
        )
        Campaign.objects.filter(pk=campaign.pk).update(last_activity_at=now)
        rows = Delivery.objects.filter(id__in=ids, status=Delivery.Status.SENDING).order_by("id")
        return [
            Recipient(delivery_id=d, subscriber_id=s, email=e, name=n, campaign_id=campaign.pk)
            for d, s, e, n in rows.values_list("id", "subscriber_id", "email", "subscriber__name")
        ]


# --- Recording (each result is committed before the next message is sent) ----------


def with_database_retry(operation: Callable[[], T]) -> T:
    """Run ``operation``, reconnecting while the database is unreachable.

    A message the server has accepted must be recorded before anything else is sent,
    or it would be sent again; so we wait for the database rather than give up.
    """
    deadline = time.monotonic() + settings.NEWSLETTER_DATABASE_WAIT_SECONDS
    while True:
        try:
            return operation()
        except (OperationalError, InterfaceError) as exc:
            if connection.in_atomic_block or time.monotonic() > deadline:
                raise
            logger.warning("event=database_unavailable error=%r; retrying", exc)
            connection.close()
            time.sleep(0.5)


def _update_claimed(recipient: Recipient, claimed_by: str, **fields: Any) -> bool:
    fields.setdefault("claimed_by", "")
    fields["updated_at"] = timezone.now()
    updated = with_database_retry(
        lambda: Delivery.objects.filter(
            pk=recipient.delivery_id, claimed_by=claimed_by, status=Delivery.Status.SENDING
        ).update(**fields)
    )
    if not updated:
        logger.warning("delivery=%s event=lease_lost (recovered by another worker)", recipient.delivery_id)
    return bool(updated)


def record_sent(recipient: Recipient, claimed_by: str, provider_message_id: str) -> None:
    """Record one accepted message before the next is sent.

    One plain UPDATE per message is the hot path of every send: the ORM's query
    building would cost more than the database round trip, so the SQL is written out.
    """
    table = Delivery._meta.db_table
    sql = (
        f"UPDATE {table} SET status = %s, sent_at = %s, updated_at = %s, attempts = attempts + 1, "  # noqa: S608
        "provider_message_id = %s, claimed_by = '' WHERE id = %s AND claimed_by = %s AND status = %s"
    )
    now = timezone.now()
    params: list[str | int | datetime] = [
        Delivery.Status.SENT.value,
        now,
        now,
        provider_message_id[:255],
        recipient.delivery_id,
        claimed_by,
        Delivery.Status.SENDING.value,
    ]

    def update() -> int:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return int(cursor.rowcount)

    if with_database_retry(update):
        metrics.record_emails_sent(campaign_id=recipient.campaign_id)
    else:
        logger.warning("delivery=%s event=lease_lost (recovered by another worker)", recipient.delivery_id)


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter, capped."""
    base = settings.NEWSLETTER_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return float(min(base, settings.NEWSLETTER_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2))  # noqa: S311


def record_transient_failure(recipient: Recipient, claimed_by: str, error: str, attempts_before: int) -> None:
    attempts = attempts_before + 1
    now = timezone.now()
    if attempts >= settings.NEWSLETTER_MAX_ATTEMPTS:
        failed = Delivery.Status.FAILED
        if _update_claimed(recipient, claimed_by, status=failed, attempts=attempts, last_error=error[:500]):
            metrics.record_emails_failed(campaign_id=recipient.campaign_id)
        return
    _update_claimed(
        recipient,
        claimed_by,
        status=Delivery.Status.RETRYING,
        attempts=attempts,
        last_error=error[:500],
        next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
    )


def record_permanent_failure(recipient: Recipient, claimed_by: str, error: str, *, suppress: bool) -> None:
    from django.db.models import F

    if _update_claimed(
        recipient, claimed_by, status=Delivery.Status.FAILED, attempts=F("attempts") + 1, last_error=error[:500]
    ):
        metrics.record_emails_failed(campaign_id=recipient.campaign_id)
    if suppress:
        from newsletter.services import suppress_subscriber

        subscriber = Subscriber.objects.filter(pk=recipient.subscriber_id).first()
        if subscriber is not None:
            suppress_subscriber(subscriber=subscriber, status=Subscriber.Status.BOUNCED, reason=error[:200])


def release(claimed_by: str, ids: list[int]) -> None:
    """Give claimed rows we did not try back to pending (no attempt is counted)."""
    if ids:
        with_database_retry(
            lambda: Delivery.objects.filter(pk__in=ids, claimed_by=claimed_by, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.PENDING, claimed_by="", claimed_at=None, updated_at=timezone.now()
            )
        )


# --- Transports ------------------------------------------------------------------


class TransientSendError(Exception):
    """Try again later (4xx, dropped connection, provider throttling)."""

    def __init__(self, message: str, *, connection_lost: bool = False) -> None:
        super().__init__(message)
        self.connection_lost = connection_lost


class PermanentSendError(Exception):
    """Do not try again (5xx); ``suppress`` when the address itself is bad."""

    def __init__(self, message: str, *, suppress: bool = True) -> None:
        super().__init__(message)
        self.suppress = suppress


def _smtp_error(code: int, reply: bytes, stage: str) -> Exception:
    text = f"{code} {reply.decode('utf-8', 'replace')} ({stage})"
    if code == 421 or code < 0:
        return TransientSendError(text, connection_lost=True)
    if 400 <= code < 500:
        return TransientSendError(text)
    return PermanentSendError(text, suppress=stage == "RCPT")


class SMTPTransport:
    """Prebuilt bytes over one SMTP connection, with PIPELINING when the server offers it."""

    def __init__(self, backend: SMTPBackend) -> None:
        self.backend = backend
        self.smtp: smtplib.SMTP | None = None

    def open(self) -> None:
        try:
            self.backend.open()
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientSendError(f"cannot connect: {exc!r}", connection_lost=True) from exc
        self.smtp = self.backend.connection
        if self.smtp is None:
            raise TransientSendError("no connection", connection_lost=True)
        if self.smtp.sock is not None:
            # Without it a message's last TCP segment waits for the server's delayed ACK (~40 ms).
            self.smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.smtp.ehlo_or_helo_if_needed()
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientSendError(f"no greeting: {exc!r}", connection_lost=True) from exc
        self.pipelining = self.smtp.has_extn("pipelining")

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            self.backend.close()

    def send(self, email: CampaignEmail, recipient: Recipient) -> str:
        try:
            sender = email.sender_address.encode("ascii")
            to = recipient.email.encode("ascii")
        except UnicodeEncodeError:
            raise PermanentSendError("address is not ASCII (SMTPUTF8 not supported)", suppress=False) from None
        data = email.as_bytes(recipient)
        try:
            self._transaction(sender, to, data)
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            raise TransientSendError(f"connection lost: {exc!r}", connection_lost=True) from exc
        return email.message_id(recipient)

    def _transaction(self, sender: bytes, to: bytes, data: bytes) -> None:
        smtp = self.smtp
        if smtp is None:
            raise TransientSendError("not connected", connection_lost=True)
        if self.pipelining:
            smtp.send(b"MAIL FROM:<" + sender + b">\r\nRCPT TO:<" + to + b">\r\nDATA\r\n")
            replies = [smtp.getreply(), smtp.getreply(), smtp.getreply()]
        else:
            replies = [smtp.docmd("MAIL", "FROM:<" + sender.decode() + ">")]
            if replies[0][0] == 250:
                replies.append(smtp.docmd("RCPT", "TO:<" + to.decode() + ">"))
            if replies[-1][0] in (250, 251):
                replies.append(smtp.docmd("DATA"))
        stages = ["MAIL", "RCPT", "DATA"]
        failure = next(
            (
                _smtp_error(code, reply, stages[i])
                for i, (code, reply) in enumerate(replies[:2])
                if code not in (250, 251)
            ),
            None,
        )
        data_code = replies[2][0] if len(replies) == 3 else 0
        if data_code == 354 and failure is not None:
            smtp.send(b".\r\n")  # end the DATA the pipeline opened, then forget the transaction
            smtp.getreply()
        if failure is not None or data_code != 354:
            smtp.rset()
            raise failure or _smtp_error(data_code, replies[2][1], "DATA")
        smtp.send(data + b".\r\n" if data.endswith(b"\r\n") else data + b"\r\n.\r\n")
        code, reply = smtp.getreply()
        if code != 250:
            raise _smtp_error(code, reply, "end of DATA")


class BackendTransport:
    """Any Django email backend (django-anymail providers, console, locmem, file)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def open(self) -> None:
        try:
            self.backend.open()
        except Exception as exc:
            raise TransientSendError(f"cannot connect: {exc!r}", connection_lost=True) from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection may already be gone
            self.backend.close()

    def send(self, email: CampaignEmail, recipient: Recipient) -> str:
        message = email.as_message(recipient, connection=self.backend)
        try:
            self.backend.send_messages([message])
        except Exception as exc:
            raise _classify_backend_error(exc) from exc
        status = getattr(message, "anymail_status", None)
        if status is not None:
            statuses = status.status or set()
            if statuses & {"rejected", "invalid"}:
                raise PermanentSendError(f"provider refused the address ({', '.join(sorted(statuses))})")
            return str(status.message_id or email.message_id(recipient))
        return email.message_id(recipient)


def _classify_backend_error(exc: Exception) -> Exception:
    name = type(exc).__name__
    status_code = getattr(exc, "status_code", None)
    if name == "AnymailRecipientsRefused":
        return PermanentSendError(f"provider refused the address: {exc}")
    if isinstance(status_code, int) and 400 <= status_code < 500 and status_code not in (408, 429):
        return PermanentSendError(f"provider error {status_code}: {exc}", suppress=False)
    return TransientSendError(f"{name}: {exc}")


def open_transport() -> SMTPTransport | BackendTransport:
    backend = get_connection(fail_silently=False)
    transport: SMTPTransport | BackendTransport
    transport = SMTPTransport(backend) if isinstance(backend, SMTPBackend) else BackendTransport(backend)
    transport.open()
    return transport


# --- Rate limits -----------------------------------------------------------------


class RateLimiter:
    """Fixed windows counted in Redis, shared by every worker: per second and per hour.

    ``wait()`` sleeps through a full second window; returns the seconds until the
    next hour window when the hourly allowance is spent (the batch then stops).
    """

    def __init__(self) -> None:
        self.per_second = settings.NEWSLETTER_RATE_PER_SECOND
        self.per_hour = settings.NEWSLETTER_RATE_PER_HOUR
        self.redis: Any = None
        if self.per_second or self.per_hour:
            import redis

            self.redis = redis.Redis.from_url(settings.REDIS_URL)

    def _take(self, window: int, limit: int) -> bool:
        now = time.time()
        key = f"newsletter:rate:{window}:{int(now // window)}"
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, window + 1)
        count, _ = pipe.execute()
        return int(count) <= limit

    def wait(self) -> float:
        if self.redis is None:
            return 0.0
        if self.per_hour and not self._take(3600, self.per_hour):
            return 3600 - time.time() % 3600
        while self.per_second and not self._take(1, self.per_second):
            time.sleep(1 - time.time() % 1 + 0.001)
        return 0.0


# --- The batch -------------------------------------------------------------------

_rendered: dict[tuple[int, datetime, str, datetime], CampaignEmail] = {}


def campaign_email(campaign: Campaign) -> CampaignEmail:
    """The campaign's rendered email, rendered once per worker process."""
    key = (campaign.pk, campaign.created_at, campaign.subject, campaign.article.updated_at)
    if key not in _rendered:
        _rendered.clear()
        _rendered[key] = render_campaign_email(campaign)
    return _rendered[key]


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0
    resume_in: float = 0.0
    errors: list[str] = field(default_factory=list)


class _Lease:
    """Renews this batch's claim while it works, and notices a cancelled campaign."""

    def __init__(self, campaign_id: int, claimed_by: str) -> None:
        self.campaign_id = campaign_id
        self.claimed_by = claimed_by
        self.every = settings.NEWSLETTER_LEASE_SECONDS / 3
        self.renewed = time.monotonic()

    def keep(self) -> bool:
        """Renew when due; False when the campaign was cancelled meanwhile."""
        if time.monotonic() - self.renewed < self.every:
            return True
        now = timezone.now()
        with_database_retry(
            lambda: Delivery.objects.filter(claimed_by=self.claimed_by, status=Delivery.Status.SENDING).update(
                claimed_at=now
            )
        )
        status = with_database_retry(
            lambda: Campaign.objects.filter(pk=self.campaign_id).values_list("status", flat=True).first()
        )
        with_database_retry(lambda: Campaign.objects.filter(pk=self.campaign_id).update(last_activity_at=now))
        self.renewed = time.monotonic()
        return status == Campaign.Status.SENDING


@contextmanager
def _transport() -> Iterator[SMTPTransport | BackendTransport]:
    transport = open_transport()
    try:
        yield transport
    finally:
        transport.close()


def send_campaign_batch(*, campaign_id: int) -> BatchResult:
    """Claim one batch of the campaign, send it over one connection and record every result."""
    result = BatchResult()
    campaign = Campaign.objects.select_related("article").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        return result
    claimed_by = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    recipients = claim_batch(campaign=campaign, claimed_by=claimed_by, size=settings.NEWSLETTER_BATCH_SIZE)
    result.claimed = len(recipients)
    if not recipients:
        finish_if_done(campaign_id=campaign_id)
        return result
    started = time.monotonic()
    if not settings.NEWSLETTER_LEDGER_SYNCHRONOUS_COMMIT and connection.vendor == "postgresql":
        # Commits still reach PostgreSQL before the next message is sent (a dead worker loses
        # nothing); only a crash of the PostgreSQL server itself could lose the last ~0.5 s.
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")
    attempts = dict(Delivery.objects.filter(claimed_by=claimed_by).values_list("id", "attempts"))
    email = campaign_email(campaign)
    limiter = RateLimiter()
    lease = _Lease(campaign.pk, claimed_by)
    remaining = list(recipients)
    try:
        with _transport() as transport:
            while remaining:
                if not lease.keep():
                    break
                result.resume_in = limiter.wait()
                if result.resume_in:
                    break
                recipient = remaining[0]
                try:
                    provider_id = transport.send(email, recipient)
                except TransientSendError as exc:
                    remaining.pop(0)
                    record_transient_failure(recipient, claimed_by, str(exc), attempts[recipient.delivery_id])
                    result.retrying += 1
                    result.errors.append(str(exc))
                    if exc.connection_lost:
                        break
                except PermanentSendError as exc:
                    remaining.pop(0)
                    record_permanent_failure(recipient, claimed_by, str(exc), suppress=exc.suppress)
                    result.failed += 1
                    result.errors.append(str(exc))
                else:
                    remaining.pop(0)
                    record_sent(recipient, claimed_by, provider_id)
                    result.sent += 1
    except TransientSendError as exc:  # could not connect: the whole batch waits and retries
        for recipient in remaining:
            record_transient_failure(recipient, claimed_by, str(exc), attempts[recipient.delivery_id])
        result.retrying += len(remaining)
        result.errors.append(str(exc))
        remaining = []
    finally:
        release(claimed_by, [r.delivery_id for r in remaining])
    result.released = len(remaining)
    seconds = time.monotonic() - started
    logger.info(
        "campaign=%s event=batch claimed=%s sent=%s retrying=%s failed=%s released=%s seconds=%.3f rate=%.1f%s",
        campaign_id,
        result.claimed,
        result.sent,
        result.retrying,
        result.failed,
        result.released,
        seconds,
        result.sent / seconds if seconds else 0.0,
        f" first_error={result.errors[0]!r}" if result.errors else "",
    )
    return result


def next_retry_in(*, campaign_id: int) -> float | None:
    """Seconds until the campaign's earliest retry is due, or None when none waits."""
    first = (
        Delivery.objects.filter(campaign_id=campaign_id, status=Delivery.Status.RETRYING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if first is None:
        return None
    return max((first - timezone.now()).total_seconds(), 0.0)


def finish_if_done(*, campaign_id: int) -> bool:
    """Mark the campaign finished once no delivery is pending, sending or retrying."""
    if Delivery.objects.filter(campaign_id=campaign_id).unfinished().exists():
        return False
    finished = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.FINISHED, finished_at=timezone.now()
    )
    if finished:
        campaign = Campaign.objects.get(pk=campaign_id)
        seconds = (campaign.finished_at - campaign.created_at).total_seconds() if campaign.finished_at else 0.0
        metrics.observe_campaign_duration(seconds=seconds)
        logger.info("campaign=%s event=finished seconds=%.1f", campaign_id, seconds)
    return True


# --- Recovery, cancelling, retrying ------------------------------------------------


def recover_stalled_campaigns() -> list[int]:
    """Return expired leases to pending and restart campaigns nobody is working on.

    Runs from beat every ``NEWSLETTER_RECOVERY_INTERVAL`` seconds and when a worker
    starts; returns the ids of campaigns it restarted.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    expired = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=cutoff)
    expired.filter(campaign__status=Campaign.Status.CANCELLED).update(
        status=Delivery.Status.SKIPPED, claimed_by="", last_error="Campaign cancelled", updated_at=now
    )
    returned = expired.update(status=Delivery.Status.PENDING, claimed_by="", claimed_at=None, updated_at=now)
    if returned:
        logger.warning("event=leases_expired deliveries=%s returned to pending", returned)
    restarted = []
    for article_id in Campaign.objects.filter(status=Campaign.Status.PLANNING, created_at__lt=cutoff).values_list(
        "article_id", flat=True
    ):
        from newsletter.tasks import start_campaign

        start_campaign.delay(article_id)
    for campaign_id, last_activity in Campaign.objects.filter(status=Campaign.Status.SENDING).values_list(
        "pk", "last_activity_at"
    ):
        if finish_if_done(campaign_id=campaign_id):
            continue
        stalled = last_activity is None or last_activity < cutoff
        if stalled and Delivery.objects.filter(_due(now), campaign_id=campaign_id).exists():
            Campaign.objects.filter(pk=campaign_id).update(last_activity_at=now)
            logger.warning("campaign=%s event=restarted (no batch worked on it for a lease)", campaign_id)
            launch_batches(campaign_id=campaign_id)
            restarted.append(campaign_id)
    return restarted


def cancel_campaign(*, campaign: Campaign) -> Campaign:
    """Stop a campaign: pending and retrying deliveries are skipped; batches in flight stop at their next check."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (Campaign.Status.PLANNING, Campaign.Status.SENDING):
            return campaign
        now = timezone.now()
        campaign.status = Campaign.Status.CANCELLED
        campaign.cancelled_at = now
        campaign.save(update_fields=["status", "cancelled_at"])
        campaign.deliveries.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]).update(
            status=Delivery.Status.SKIPPED, last_error="Campaign cancelled", updated_at=now
        )
    return campaign


def retry_failed_deliveries(*, campaign: Campaign) -> int:
    """Give failed deliveries of confirmed readers another round of attempts; returns how many."""
    with transaction.atomic():
        now = timezone.now()
        count = campaign.deliveries.filter(
            status=Delivery.Status.FAILED, subscriber__status=Subscriber.Status.CONFIRMED
        ).update(status=Delivery.Status.PENDING, attempts=0, next_attempt_at=None, updated_at=now)
        if count:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.FINISHED).update(
                status=Campaign.Status.SENDING, finished_at=None
            )
            transaction.on_commit(lambda: launch_batches(campaign_id=campaign.pk))
    return count
