"""One batch of a campaign: claim readers, send to each over a reused connection, record each result.

Read top-down: ``send_batch`` (run by the task ``newsletter.tasks.send_campaign_batch``)
claims up to ``NEWSLETTER_BATCH_SIZE`` readers from the ledger, and ``Batch.run`` sends
them over ``NEWSLETTER_CONNECTIONS_PER_BATCH`` connections of the configured transport:
``send_one`` per reader (``begin``, record the previous message, ``finish``), or
``send_call`` per ESP API call of many readers. Each result is recorded before the
next message can be accepted, so a worker that dies can leave at most one message
sent but unrecorded (through an ESP's batch API, one call: ``NEWSLETTER_ESP_BATCH_SIZE``
readers). What the batch claimed and did not try goes back to pending.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.utils import timezone

from articles.models import Article
from euro_prospects import metrics, ratelimit
from euro_prospects.observability import redact_email_addresses
from newsletter.models import Campaign
from newsletter.sending.campaigns import (
    UNPUBLISHED,
    campaign_may_send,
    cancel_campaign,
    finish_if_done,
    pause_campaign,
    skip_unsent_if_cancelled,
)
from newsletter.sending.ledger import (
    SentRecorder,
    claim_batch,
    record_permanent_failure,
    record_transient_failure,
    release,
    renew_lease,
    with_database_retry,
)
from newsletter.sending.message import Recipient, UnsendableAddress, campaign_email, sendable_address
from newsletter.sending.transports import (
    CampaignPausingError,
    PermanentSendError,
    TransientSendError,
    Transport,
    open_transport,
)
from newsletter.sending.transports.esp import NOT_SENT, REFUSED, CannotBuildCall, ESPBatchTransport

logger = logging.getLogger("newsletter.sending")


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0
    resume_in: float = 0.0
    errors: list[str] = field(default_factory=list)
    # The campaign is no longer sending (cancelled, paused, unpublished): the chain ends.
    stopped: bool = False


def send_batch(*, campaign_id: int) -> BatchResult:
    """Claim one batch of the campaign, send it and record every result."""
    campaign = Campaign.objects.select_related("article").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.SENDING:
        return BatchResult(stopped=True)
    if campaign.article is not None and campaign.article.status != Article.Status.PUBLISHED:
        cancel_campaign(campaign=campaign, reason=UNPUBLISHED)
        return BatchResult(stopped=True)
    now = timezone.now()
    if campaign.resume_at is not None and campaign.resume_at > now:  # the hourly allowance is spent
        return BatchResult(resume_in=(campaign.resume_at - now).total_seconds())
    claimed_by = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    recipients = claim_batch(campaign=campaign, claimed_by=claimed_by, size=settings.NEWSLETTER_BATCH_SIZE)
    if not recipients:
        finish_if_done(campaign_id=campaign_id)
        return BatchResult()
    started = time.monotonic()
    batch = Batch(campaign, claimed_by, recipients)
    batch.run(min(settings.NEWSLETTER_CONNECTIONS_PER_BATCH, len(recipients)))
    result = batch.result
    if result.resume_in and not result.stopped:
        resume_at = timezone.now() + timedelta(seconds=result.resume_in)
        Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(resume_at=resume_at)
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


class Batch:
    """One claimed batch, sent over ``NEWSLETTER_CONNECTIONS_PER_BATCH`` connections at once.

    Each connection (a thread of its own, with a ``SentRecorder`` on its own database
    connection) takes the next reader, builds the message and sends its envelope and
    body. Only the final "." that makes the server accept a message, and the ledger
    record of that message, are taken one at a time (``accepting``): so while one
    connection waits for the server and the database, the others are already sending,
    yet a worker that dies leaves at most one message accepted but unrecorded, however
    many connections it had open. Through an ESP's batch API a connection sends many
    readers per call (``send_in_api_calls``), and a call's readers take the place of
    that one message.
    """

    def __init__(self, campaign: Campaign, claimed_by: str, recipients: list[Recipient]) -> None:
        self.campaign_id = campaign.pk
        self.claimed_by = claimed_by
        self.email = campaign_email(campaign, recipients[0].content_id if recipients else None)
        self.queue = deque(recipients)
        self.result = BatchResult(claimed=len(recipients))
        self.counting = threading.Lock()
        self.accepting = threading.Lock()
        self.stop = threading.Event()
        self.lease = _Lease(campaign.pk, claimed_by)
        self.unreachable: list[TransientSendError] = []
        self.connected = 0
        self.connections = 1
        self.crashed: list[BaseException] = []
        # Readers refused in a row with one error that says nothing about their mailbox,
        # held (still claimed) until the run ends (``break_streak``) or pauses the campaign.
        self.streak: list[tuple[Recipient, PermanentSendError]] = []
        self.unrecorded: list[tuple[Recipient, PermanentSendError]] = []

    def run(self, connections: int) -> None:
        self.connections = connections
        try:
            if connections <= 1:
                self.send_over_one_connection()
            else:
                # This thread sends too: its database connection outlives the batch, while
                # each extra thread opens one of its own.
                threads = [
                    threading.Thread(target=self._thread, name=f"send-{index}", daemon=True)
                    for index in range(1, connections)
                ]
                for thread in threads:
                    thread.start()
                try:
                    self.send_over_one_connection()
                except BaseException:
                    self.stop.set()
                    raise
                finally:
                    for thread in threads:
                        thread.join()
                if self.crashed:
                    raise self.crashed[0]
            if self.unreachable and not self.connected and not self.stop.is_set():
                # No connection could be opened: the whole batch waits and retries.
                error = str(self.unreachable[0])
                while self.queue:
                    recipient = self.queue.popleft()
                    self.record_failure(recipient, TransientSendError(error))
        finally:
            self.break_streak()
            self.record_failures([])
            release(self.claimed_by, [r.delivery_id for r in self.queue])
            self.result.released = len(self.queue)
            if self.lease.stopped or self.result.stopped:
                self.result.stopped = True
                skip_unsent_if_cancelled(campaign_id=self.campaign_id)
            if self.result.sent % 100:
                metrics.record_emails_sent(campaign_id=self.campaign_id, count=self.result.sent % 100)

    def _thread(self) -> None:
        try:
            self.send_over_one_connection()
        except BaseException as exc:
            self.crashed.append(exc)
            self.stop.set()
        finally:
            connection.close()  # each thread has a database connection of its own

    def send_over_one_connection(self) -> None:
        if not settings.NEWSLETTER_LEDGER_SYNCHRONOUS_COMMIT and connection.vendor == "postgresql":
            # Commits still reach PostgreSQL before the next message is sent (a dead worker loses
            # nothing); only a crash of the PostgreSQL server itself could lose the last ~0.5 s.
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
        recorder = SentRecorder(self.claimed_by)  # on this thread's database connection
        try:
            with _transport() as transport:
                with self.counting:
                    self.connected += 1
                if isinstance(transport, ESPBatchTransport):
                    self.send_in_api_calls(transport, recorder)
                    return
                recipient = self.take(recorder)
                while recipient is not None:
                    following = self.take(recorder)
                    if not self.send_one(transport, recorder, recipient, following):
                        if following is not None:
                            self.queue.appendleft(following)
                        break
                    recipient = following
        except TransientSendError as exc:  # could not connect
            self.unreachable.append(exc)
        except CampaignPausingError as exc:  # e.g. the server refused our login
            self.pause([], str(exc))
        finally:
            self.confirmed(recorder)

    def take(self, recorder: SentRecorder) -> Recipient | None:
        """The next reader for this connection, or None when the batch is done or must stop."""
        if self.stop.is_set():
            return None
        if self.lease.due() and not self.confirmed(recorder):  # the connection serves one statement at a time
            return None
        if not self.lease.keep():
            self.stop.set()
            return None
        per_second, per_hour = settings.NEWSLETTER_RATE_PER_SECOND, settings.NEWSLETTER_RATE_PER_HOUR
        resume_in = ratelimit.take_turn("newsletter:rate", per_second=per_second, per_hour=per_hour)
        if resume_in:
            self.result.resume_in = resume_in
            self.stop.set()
            return None
        try:
            return self.queue.popleft()
        except IndexError:
            return None

    def confirmed(self, recorder: SentRecorder) -> bool:
        """Wait for the connection's record in flight; a lost lease stops the whole batch."""
        if recorder.confirm():
            return True
        self.stop.set()
        return False

    def send_one(
        self, transport: Transport, recorder: SentRecorder, recipient: Recipient, following: Recipient | None
    ) -> bool:
        """Send to one reader and record the result; False when this connection should stop."""
        try:
            transport.begin(self.email, recipient)
            with self.accepting:
                # The previous message is recorded before this one can be accepted. With one
                # connection, a stop that came while this reader was taken (a cancel, an hourly
                # allowance spent) still lets their message go; with several, it stops here.
                lease_held = self.confirmed(recorder)
                if not lease_held or (self.connections > 1 and self.stop.is_set()):
                    transport.abort()  # the server discards a message without its final "."
                    self.queue.appendleft(recipient)
                    return False
                provider_id = transport.finish(self.email, recipient, following)
                recorder.start([(recipient, provider_id)])
                if self.connections > 1:
                    lease_held = self.confirmed(recorder)
                # With one connection, this record completes while the next message's body travels.
        except CampaignPausingError as exc:
            self.confirmed(recorder)
            self.pause([recipient], str(exc))
            return False
        except (TransientSendError, PermanentSendError) as exc:
            lease_held = self.confirmed(recorder)
            self.record_failure(recipient, exc)
            connection_lost = isinstance(exc, TransientSendError) and exc.connection_lost
            return lease_held and not connection_lost and not self.stop.is_set()  # a streak may have paused
        except (DatabaseError, InterfaceError, psycopg.Error):
            raise  # the message may have been accepted: recovery decides, never a retry from here
        except Exception as exc:  # unforeseen: this reader's failure; the connection's state is unknown
            logger.exception("delivery=%s event=send_error", recipient.delivery_id)
            transport.abort()
            self.confirmed(recorder)
            self.record_failure(recipient, TransientSendError(f"unexpected error: {exc!r}", connection_lost=True))
            return False
        self.count_sent(1)
        return lease_held

    def count_sent(self, count: int) -> None:
        if self.streak:
            self.break_streak()
        with self.counting:
            before, self.result.sent = self.result.sent, self.result.sent + count
            hundreds = self.result.sent // 100 - before // 100
        if hundreds:  # the metric follows the send without a call per message
            metrics.record_emails_sent(campaign_id=self.campaign_id, count=100 * hundreds)

    def send_in_api_calls(self, transport: ESPBatchTransport, recorder: SentRecorder) -> None:
        """Send the readers ``transport.size`` at a time, one API call each.

        A reader whose address cannot be sent to fails alone, before the call; a second
        reader at the same address (two spellings of one domain) waits for the next call,
        as the ESP keys each copy's links by address.
        """
        while True:
            recipients: list[Recipient] = []
            addresses: set[str] = set()
            later: list[Recipient] = []
            while len(recipients) < transport.size and (recipient := self.take(recorder)) is not None:
                try:
                    address = sendable_address(recipient.email).lower()
                except UnsendableAddress as exc:
                    self.record_failure(
                        recipient, PermanentSendError(f"cannot send to this address: {exc}", suppress=False)
                    )
                    continue
                if address in addresses:
                    later.append(recipient)
                    continue
                addresses.add(address)
                recipients.append(recipient)
            self.queue.extendleft(reversed(later))
            if not recipients or not self.send_call(transport, recorder, recipients):
                return

    def send_call(self, transport: ESPBatchTransport, recorder: SentRecorder, recipients: list[Recipient]) -> bool:
        """Send one API call and record its results; False when this connection should stop.

        The ESP accepts a whole call at once, so the call and the ledger record of all
        it accepted are taken together (``accepting``): a worker that dies between the
        answer and the record re-sends at most one call, ``NEWSLETTER_ESP_BATCH_SIZE`` readers.
        """
        try:
            with self.accepting:
                # A cancelled campaign or a lost lease sends nothing more; readers already
                # counted against an hourly allowance just spent (``resume_in``) still go.
                if not self.confirmed(recorder) or (self.stop.is_set() and not self.result.resume_in):
                    self.queue.extendleft(reversed(recipients))
                    return False
                outcomes = transport.send_many(self.email, recipients)
                accepted = [
                    (o.recipient, o.provider_message_id) for o in outcomes if o.status not in REFUSED | NOT_SENT
                ]
                recorder.start(accepted)
                lease_held = self.confirmed(recorder)
        except CampaignPausingError as exc:
            self.pause(recipients, str(exc))
            return False
        except CannotBuildCall:  # nothing was sent: each reader's own send finds and records the fault
            return self.send_one_by_one(transport, recorder, recipients)
        except PermanentSendError as exc:
            if len(recipients) == 1:
                self.record_failure(recipients[0], exc)
                return True
            # The ESP refused the whole call (nothing was sent), often for one bad address:
            # send these readers one at a time, so only a bad address fails.
            return self.send_one_by_one(transport, recorder, recipients)
        except TransientSendError as exc:  # throttled or unreachable: the rest waits for a later batch
            for recipient in recipients:
                self.record_failure(recipient, exc)
            return False
        self.count_sent(len(accepted))
        for outcome in outcomes:
            if outcome.status in REFUSED:
                self.record_failure(
                    outcome.recipient, PermanentSendError(f"provider refused the address ({outcome.status})")
                )
            elif outcome.status in NOT_SENT:
                self.record_failure(outcome.recipient, TransientSendError(f"provider did not send ({outcome.status})"))
        return lease_held

    def send_one_by_one(
        self, transport: ESPBatchTransport, recorder: SentRecorder, recipients: list[Recipient]
    ) -> bool:
        for index, recipient in enumerate(recipients):
            if not self.send_one(transport, recorder, recipient, None):
                self.queue.extendleft(reversed(recipients[index + 1 :]))
                return False
        return True

    def record_failure(self, recipient: Recipient, exc: TransientSendError | PermanentSendError) -> None:
        if isinstance(exc, PermanentSendError) and exc.streak and settings.NEWSLETTER_PAUSE_AFTER:
            self.extend_streak(recipient, exc)
            return
        self.break_streak()
        self.record_failures([(recipient, exc)])

    def record_failures(self, failures: list[tuple[Recipient, TransientSendError | PermanentSendError]]) -> None:
        """Record these failures, after those of readers held in a streak that has ended."""
        with self.counting:
            failures, self.unrecorded = [*self.unrecorded, *failures], []
        for recipient, exc in failures:
            if isinstance(exc, PermanentSendError):
                record_permanent_failure(recipient, self.claimed_by, str(exc), suppress=exc.suppress)
            else:
                record_transient_failure(recipient, self.claimed_by, str(exc), recipient.attempts)
            with self.counting:
                if isinstance(exc, PermanentSendError):
                    self.result.failed += 1
                else:
                    self.result.retrying += 1
                # For the batch's log line: a server's reply may quote the address.
                self.result.errors.append(f"subscriber={recipient.subscriber_id} {redact_email_addresses(str(exc))}")

    def extend_streak(self, recipient: Recipient, exc: PermanentSendError) -> None:
        """Hold a reader refused without a word about their mailbox; pause at a long run of the same refusal."""
        with self.counting:
            if self.streak and self.streak[0][1].streak != exc.streak:
                self.unrecorded.extend(self.streak)
                self.streak = []
            self.streak.append((recipient, exc))
            run = self.streak if len(self.streak) >= settings.NEWSLETTER_PAUSE_AFTER else []
            if run:
                self.streak = []
        if run:
            self.pause([held for held, _ in run], f"{len(run)} readers in a row refused alike: {exc}")

    def break_streak(self) -> None:
        """Another outcome came between: the readers held were refused for themselves after all."""
        with self.counting:
            self.unrecorded.extend(self.streak)
            self.streak = []

    def pause(self, recipients: list[Recipient], reason: str) -> None:
        """Stop the batch and pause the campaign; ``recipients`` go back to pending untouched."""
        self.queue.extendleft(reversed(recipients))
        self.stop.set()
        self.result.stopped = True
        pause_campaign(campaign_id=self.campaign_id, reason=reason)


@contextmanager
def _transport() -> Iterator[Transport]:
    transport = open_transport()
    try:
        yield transport
    except BaseException:
        # A message may be half sent (a database that stayed away past the wait): a QUIT
        # would go out as part of its body and wait for the server's timeout; dropping the
        # connection makes the server discard the message at once.
        transport.abort()
        raise
    finally:
        transport.close()


# A batch looks at its campaign this often between two messages, so a cancel, a pause or
# an unpublished article stops it at once; one indexed read a second costs nothing.
STOP_CHECK_SECONDS = 1.0


class _Lease:
    """Renews this batch's claim while it works, and notices a campaign that must stop."""

    def __init__(self, campaign_id: int, claimed_by: str) -> None:
        self.campaign_id = campaign_id
        self.claimed_by = claimed_by
        self.every = settings.NEWSLETTER_LEASE_SECONDS / 3
        self.check_every = min(STOP_CHECK_SECONDS, self.every)
        self.renewed = self.checked = time.monotonic()
        self.stopped = False
        self.lock = threading.Lock()

    def due(self) -> bool:
        return time.monotonic() - self.checked >= self.check_every

    def keep(self) -> bool:
        """Check the campaign (and renew the claim) when due; False when it must stop sending."""
        if not self.due():
            return not self.stopped
        with self.lock:  # one connection's thread checks for all of them
            if not self.due():
                return not self.stopped
            if time.monotonic() - self.renewed >= self.every:
                renew_lease(campaign_id=self.campaign_id, claimed_by=self.claimed_by)
                self.renewed = time.monotonic()
            self.stopped = not with_database_retry(lambda: campaign_may_send(campaign_id=self.campaign_id))
            self.checked = time.monotonic()
            return not self.stopped
