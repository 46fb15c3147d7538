"""The delivery ledger: claim a batch of readers, hold the lease, record each result.

A batch claims due rows (``claimed_by`` and a lease in ``claimed_at``) and records
each result only while it still holds them: every UPDATE below matches
``claimed_by``. A record that matches nothing means the lease was lost (recovery gave
the rows to another batch): ``SentRecorder.confirm`` answers False, the batch's one
sign of a lost lease, and the batch stops. Every accepted message is recorded through
``SentRecorder``, the one way to record a sent message. Statements wait for a database
that is away (``with_database_retry``): a message the server accepted must be recorded
before anything else is sent.
"""

from __future__ import annotations

import logging
import random
import select
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import Case, CharField, F, Q, Value, When
from django.utils import timezone

from euro_prospects import metrics
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending.message import Recipient

logger = logging.getLogger("newsletter.sending")
T = TypeVar("T")


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


# --- Claiming --------------------------------------------------------------------


def due(now: datetime) -> Q:
    """Deliveries waiting to be sent: pending, or retrying and due."""
    return Q(status=Delivery.Status.PENDING) | Q(status=Delivery.Status.RETRYING, next_attempt_at__lte=now)


def claim_batch(*, campaign: Campaign, claimed_by: str, size: int) -> list[Recipient]:
    """Take up to ``size`` due deliveries for this batch; skip readers who are no longer confirmed."""
    now = timezone.now()
    # A digest's batch takes readers of one content (one set of pieces): one rendering.
    for _ in range(3):  # another batch may take a content's last rows first
        content = _next_content(campaign, now) if campaign.digest else None
        rows = _claim(campaign, claimed_by, size, now, content)
        if rows or content is None:
            break
    if rows:
        Campaign.objects.filter(pk=campaign.pk).update(last_activity_at=now)
    return [
        Recipient(
            delivery_id=d, subscriber_id=s, email=e, name=n, campaign_id=campaign.pk, attempts=a, content_id=content
        )
        for d, s, e, n, a, status in sorted(rows)
        if status == Delivery.Status.SENDING
    ]


def _claim(campaign: Campaign, claimed_by: str, size: int, now: datetime, content: int | None) -> list[tuple[Any, ...]]:
    if connection.vendor == "postgresql":
        return with_database_retry(lambda: _claim_in_one_statement(campaign.pk, claimed_by, size, now, content))
    return _claim_with_the_orm(campaign, claimed_by, size, now, content)


def _next_content(campaign: Campaign, now: datetime) -> int | None:
    waiting = Delivery.objects.filter(due(now), campaign=campaign).order_by("id")
    return with_database_retry(lambda: waiting.values_list("content_id", flat=True).first())


# Every batch of every campaign runs this, so it is one round trip: lock the due rows
# no other batch holds, mark them sending (or skipped, for readers who left since the
# campaign was planned) and return what the batch needs to send.
_CLAIM_SQL = """
WITH due AS (
    SELECT id FROM newsletter_delivery
    WHERE campaign_id = %(campaign)s
      AND (status = 'pending' OR (status = 'retrying' AND next_attempt_at <= %(now)s))
      AND content_id IS NOT DISTINCT FROM %(content)s
    ORDER BY id
    LIMIT %(size)s
    FOR UPDATE SKIP LOCKED
)
UPDATE newsletter_delivery d SET
    status = CASE WHEN s.status = 'confirmed' THEN 'sending' ELSE 'skipped' END,
    claimed_by = CASE WHEN s.status = 'confirmed' THEN %(claimed_by)s ELSE '' END,
    last_error = CASE WHEN s.status = 'confirmed' THEN d.last_error ELSE 'Reader no longer subscribed' END,
    claimed_at = %(now)s,
    updated_at = %(now)s
FROM due, newsletter_subscriber s
WHERE d.id = due.id AND s.id = d.subscriber_id
RETURNING d.id, d.subscriber_id, d.email, s.name, d.attempts, d.status
"""


def _claim_in_one_statement(
    campaign_id: int, claimed_by: str, size: int, now: datetime, content: int | None = None
) -> list[tuple[Any, ...]]:
    params: dict[str, int | str | datetime | None] = {
        "campaign": campaign_id,
        "now": now,
        "size": size,
        "claimed_by": claimed_by,
        "content": content,
    }
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, params)
        return list(cursor.fetchall())


def _claim_with_the_orm(
    campaign: Campaign, claimed_by: str, size: int, now: datetime, content: int | None = None
) -> list[tuple[Any, ...]]:
    with transaction.atomic():
        ids = list(
            Delivery.objects.filter(due(now), campaign=campaign, content_id=content)
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
        rows = Delivery.objects.filter(id__in=ids)
        return list(rows.values_list("id", "subscriber_id", "email", "subscriber__name", "attempts", "status"))


def renew_lease(*, campaign_id: int, claimed_by: str) -> None:
    """Keep this batch's claim (and the campaign's sign of life) fresh, so recovery leaves them alone."""
    now = timezone.now()
    with_database_retry(
        lambda: Delivery.objects.filter(claimed_by=claimed_by, status=Delivery.Status.SENDING).update(claimed_at=now)
    )
    with_database_retry(lambda: Campaign.objects.filter(pk=campaign_id).update(last_activity_at=now))


def release(claimed_by: str, ids: list[int]) -> None:
    """Give claimed rows we did not try back to pending (no attempt is counted)."""
    if ids:
        with_database_retry(
            lambda: Delivery.objects.filter(pk__in=ids, claimed_by=claimed_by, status=Delivery.Status.SENDING).update(
                status=Delivery.Status.PENDING, claimed_by="", claimed_at=None, updated_at=timezone.now()
            )
        )


# --- Recording a sent message (committed before the next one is accepted) ---------


class SentRecorder:
    """Records the messages a connection's server or provider accepted: the one way to do so.

    ``start`` sends the ledger UPDATE of what was just accepted and, where it can (one
    message on PostgreSQL), returns at once; ``confirm`` waits for its answer and says
    False when another worker had taken a delivery back (the lease was lost). A batch
    confirms before it has the next message accepted, so the database records one
    message while the next one's body travels, yet no second message is accepted
    before the first is recorded. ``record`` does both at once. Where the UPDATE
    cannot be sent ahead (SQLite, a failed send, an ESP call's many readers)
    ``confirm`` runs it, waiting through a database outage.
    """

    def __init__(self, claimed_by: str) -> None:
        self.claimed_by = claimed_by
        self.in_flight: tuple[list[tuple[int, str]], datetime, bool] | None = None
        self.db = connections[DEFAULT_DB_ALIAS]  # this thread's; spares a lookup per message
        self.prepared = settings.DB_PREPARED_STATEMENTS

    def record(self, accepted: list[tuple[Recipient, str]]) -> bool:
        """Record the readers accepted, each with their provider message id; False when the lease was lost."""
        self.start(accepted)
        return self.confirm()

    def start(self, accepted: list[tuple[Recipient, str]]) -> None:
        self.confirm()
        now = timezone.now()
        rows = [(recipient.delivery_id, provider_id[:255]) for recipient, provider_id in accepted]
        sent_ahead = False
        if len(rows) == 1 and self.db.vendor == "postgresql":
            try:
                _send_record_one(self.db, now, *rows[0], self.claimed_by, prepared=self.prepared)
                sent_ahead = True
            except (OperationalError, InterfaceError):
                self.db.close()  # confirm() runs it again, waiting for the database
        self.in_flight = (rows, now, sent_ahead)

    def confirm(self) -> bool:
        """Wait for the record in flight; False when another worker had taken a delivery back."""
        if self.in_flight is None:
            return True
        rows, now, sent_ahead = self.in_flight
        self.in_flight = None
        if not rows:
            return True
        updated: int | None = None
        if sent_ahead:
            try:
                with self.db.wrap_database_errors:
                    updated = int(_libpq_answer(self.db.connection.pgconn).command_tuples or 0)
            except (OperationalError, InterfaceError):
                self.db.close()  # the answer is lost: run it again (a second run matches nothing)
        if updated is None:
            updated = with_database_retry(lambda: _record(rows, now, self.claimed_by, prepared=self.prepared))
        return updated == len(rows) or not _lease_lost([delivery_id for delivery_id, _ in rows], recorded=updated)


def _lease_lost(delivery_ids: list[int], *, recorded: int) -> bool:
    """Whether rows a record did not match belong to another batch now.

    A record matches nothing either because another worker took the row back (the
    batch must stop) or because the reader was erased meanwhile, deleting their rows:
    then the message went out as the reader left, and the batch goes on. Run again
    after a lost answer, a record matches nothing too, and the batch stops as if its
    lease were lost (the rest of its deliveries go back to pending).
    """
    remaining = with_database_retry(lambda: Delivery.objects.filter(pk__in=delivery_ids).count())
    if remaining > recorded:
        logger.warning("deliveries=%s event=lease_lost (recovered by another worker)", remaining - recorded)
        return True
    logger.info("deliveries=%s event=erased_while_sending", len(delivery_ids) - recorded)
    return False


_RECORD_SENT_SQL = (
    f"UPDATE {Delivery._meta.db_table} SET status = 'sent', sent_at = %s, updated_at = %s, "  # noqa: S608
    "attempts = attempts + 1, provider_message_id = %s, claimed_by = '' "
    "WHERE id = %s AND claimed_by = %s AND status = 'sending'"
)
_RECORD_SENT_STATEMENT = b"newsletter_record_sent"
_RECORD_SENT_LIBPQ = (
    _RECORD_SENT_SQL.replace("%s", "$1::timestamptz", 1)
    .replace("%s", "$2::timestamptz", 1)
    .replace("%s", "$3", 1)
    .replace("%s", "$4::bigint", 1)
    .replace("%s", "$5", 1)
    .encode()
)
_prepared_on: weakref.WeakSet[Any] = weakref.WeakSet()

_RECORD_MANY_SENT_SQL = f"""
UPDATE {Delivery._meta.db_table} d SET
    status = 'sent', sent_at = %(now)s, updated_at = %(now)s, attempts = d.attempts + 1,
    provider_message_id = accepted.provider_message_id, claimed_by = ''
FROM unnest(%(ids)s::bigint[], %(provider_ids)s::text[]) AS accepted(id, provider_message_id)
WHERE d.id = accepted.id AND d.claimed_by = %(claimed_by)s AND d.status = 'sending'
"""  # noqa: S608 - the table name is ours


def _record(rows: list[tuple[int, str]], now: datetime, claimed_by: str, *, prepared: bool) -> int:
    """Run the ledger UPDATE of these accepted messages and return how many rows it matched."""
    if len(rows) == 1 and connection.vendor == "postgresql":
        _send_record_one(connection, now, *rows[0], claimed_by, prepared=prepared)
        with connection.wrap_database_errors:
            return int(_libpq_answer(connection.connection.pgconn).command_tuples or 0)
    if len(rows) == 1:
        ((delivery_id, provider_id),) = rows
        with connection.cursor() as cursor:
            cursor.execute(_RECORD_SENT_SQL, [now, now, provider_id, delivery_id, claimed_by])
            return int(cursor.rowcount)
    ids = [delivery_id for delivery_id, _ in rows]
    provider_ids = [provider_id for _, provider_id in rows]
    if connection.vendor == "postgresql":
        params: dict[str, Any] = {"now": now, "ids": ids, "provider_ids": provider_ids, "claimed_by": claimed_by}
        with connection.cursor() as cursor:
            cursor.execute(_RECORD_MANY_SENT_SQL, params)
            return int(cursor.rowcount)
    if len(set(provider_ids)) == 1:  # Mailgun: one id for the whole call
        provider_message_id: Any = Value(provider_ids[0])
    else:
        whens = [When(pk=i, then=Value(p)) for i, p in zip(ids, provider_ids, strict=True)]
        provider_message_id = Case(*whens, default=Value(""), output_field=CharField())
    return Delivery.objects.filter(pk__in=ids, claimed_by=claimed_by, status=Delivery.Status.SENDING).update(
        status=Delivery.Status.SENT,
        sent_at=now,
        updated_at=now,
        attempts=F("attempts") + 1,
        provider_message_id=provider_message_id,
        claimed_by="",
    )


def _send_record_one(
    db: Any, now: datetime, delivery_id: int, provider_message_id: str, claimed_by: str, *, prepared: bool
) -> None:
    """Send one message's ledger UPDATE through libpq without waiting for its answer.

    It runs between the server accepting one message and the next, for every message,
    so it skips the cursor: a statement prepared once per connection, or, with
    ``DB_PREPARED_STATEMENTS=false`` (a pooler that cannot keep prepared statements),
    the same statement with its parameters bound on the server each time.
    """
    db.ensure_connection()
    raw = db.connection
    values = [value.encode() for value in (now.isoformat(), now.isoformat(), provider_message_id, str(delivery_id))]
    values.append(claimed_by.encode())
    with db.wrap_database_errors:
        if not prepared:
            raw.pgconn.send_query_params(_RECORD_SENT_LIBPQ, values)
        else:
            if raw not in _prepared_on:
                raw.pgconn.send_prepare(_RECORD_SENT_STATEMENT, _RECORD_SENT_LIBPQ)
                _libpq_answer(raw.pgconn)
                _prepared_on.add(raw)
            raw.pgconn.send_query_prepared(_RECORD_SENT_STATEMENT, values)
        while raw.pgconn.flush():
            select.select([], [raw.pgconn.socket], [])


def _libpq_answer(pgconn: Any) -> Any:
    """Wait for the answer to the one command sent, without holding the GIL while waiting."""
    while pgconn.flush():
        select.select([], [pgconn.socket], [])
    while True:
        pgconn.consume_input()
        if not pgconn.is_busy():
            break
        select.select([pgconn.socket], [], [])
    answers = []
    while (answer := pgconn.get_result()) is not None:
        answers.append(answer)
    failed = [a for a in answers if a.status != psycopg.pq.ExecStatus.COMMAND_OK]
    if failed or not answers:
        message = failed[0].error_message.decode(errors="replace") if failed else "no answer"
        raise psycopg.OperationalError(message.strip())
    return answers[0]


# --- Recording a failure ---------------------------------------------------------


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter, capped."""
    base = settings.NEWSLETTER_RETRY_BASE_SECONDS * (2 ** max(attempts - 1, 0))
    return float(min(base, settings.NEWSLETTER_RETRY_MAX_SECONDS) * random.uniform(0.8, 1.2))  # noqa: S311


def record_transient_failure(recipient: Recipient, claimed_by: str, error: str, attempts_before: int) -> None:
    """Retry this reader later, or fail them after ``NEWSLETTER_MAX_ATTEMPTS`` attempts."""
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
    """Fail this reader's delivery; ``suppress`` the address when it is the address that is bad."""
    if _update_claimed(
        recipient, claimed_by, status=Delivery.Status.FAILED, attempts=F("attempts") + 1, last_error=error[:500]
    ):
        metrics.record_emails_failed(campaign_id=recipient.campaign_id)
    if suppress:
        from newsletter.services import suppress_subscriber

        subscriber = Subscriber.objects.filter(pk=recipient.subscriber_id).first()
        if subscriber is not None:
            suppress_subscriber(subscriber=subscriber, status=Subscriber.Status.BOUNCED, reason=error[:200])


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
