"""Subscriptions: every change to a subscriber goes through these functions.

Views, the API, admin actions, webhooks, tasks and the import command call them;
each is keyword-only, atomic and returns what it changed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from email_validator import EmailNotValidError, validate_email

from articles.models import Topic
from euro_prospects import metrics
from euro_prospects.celery import QueueUnavailable, enqueue, enqueue_on_commit, notify_on_commit
from newsletter.engagement.figures import reader_clicks
from newsletter.engagement.models import EngagementCount
from newsletter.engagement.rollup import forget_reader, record_outcome
from newsletter.models import Subscriber, Suppression, email_hash

SUPPRESSED = (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED)


class InvalidEmail(ValueError):
    """The address is not a syntactically valid email address."""


# Plain ASCII addresses that email-validator certainly accepts, checked without
# it (too slow per address for bulk imports: docs/performance.md). Anything else,
# including internationalised addresses and special-use domains, goes through it.
_PLAIN_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9_+-]{1,64}(?:\.[A-Za-z0-9_+-]+)*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
_SPECIAL_USE_TLDS = {"arpa", "invalid", "local", "localhost", "onion", "test", "internal", "home", "lan", "alt"}


def _plain_email(email: str) -> str | None:
    match = _PLAIN_EMAIL.fullmatch(email)
    if match is None or len(email) > 254 or len(match["local"]) > 64:
        return None
    domain = match["domain"].lower()
    if "--" in domain or domain.rsplit(".", 1)[1] in _SPECIAL_USE_TLDS or len(domain) > 253:
        return None
    return f"{match['local']}@{domain}"


def normalise_email(email: str) -> str:
    """The address as we store it, or InvalidEmail with a reason a person can read.

    Syntax only: no DNS look-ups, so the answer never depends on the network. The
    domain is stored in its ASCII (IDNA) form, lower case: ``leser@bücher.de`` and
    ``leser@xn--bcher-kva.de`` are one address, stored as the latter, the form every
    mail server and ESP takes and reports back.
    """
    email = email.strip()
    plain = _plain_email(email)
    if plain is not None:
        return plain
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from None
    normalised = f"{result.local_part}@{result.ascii_domain.lower()}"
    if len(normalised) > 254:
        raise InvalidEmail("The email address is too long.")
    return normalised


def _clean(text: str, max_length: int) -> str:
    """Free text from outside (headers, webhooks, form extras) made storable: PostgreSQL refuses NUL."""
    return text.replace("\x00", "")[:max_length]


def subscribe(
    *,
    email: str,
    name: str = "",
    topics: Iterable[Topic] | None = None,
    cadence: str | None = None,
    source: str,
    ip: str | None = None,
    user_agent: str = "",
    consent_version: str | None = None,
    consent_source: str = "",
) -> Subscriber:
    """Start (or restart) a double opt-in for ``email`` and return the subscriber.

    New, pending and unsubscribed addresses become pending and get a
    confirmation email, re-sent at most once per NEWSLETTER_CONFIRM_RESEND_INTERVAL.
    Confirmed addresses are left alone, and so are bounced or complained ones
    (only an editor lifts a suppression). Callers answer the same in every case.
    """
    email = normalise_email(email)
    now = timezone.now()
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().filter(email__iexact=email).first()
        if subscriber is not None and subscriber.status in (Subscriber.Status.CONFIRMED, *SUPPRESSED):
            return subscriber
        if subscriber is None:
            subscriber = Subscriber(email=email, source=source)
        subscriber.status = Subscriber.Status.PENDING
        subscriber.name = _clean(name or subscriber.name, 120)
        subscriber.consent_at = now
        subscriber.consent_source = _clean(consent_source or source, 200)
        subscriber.consent_ip = ip
        subscriber.consent_user_agent = _clean(user_agent, 500)
        subscriber.consent_version = _clean(consent_version or settings.NEWSLETTER_CONSENT_VERSION, 40)
        chosen = list(topics) if topics is not None else None
        if chosen is not None:
            subscriber.all_topics = not chosen
        if cadence is not None and cadence != subscriber.cadence:
            subscriber.previous_cadence, subscriber.cadence = "", cadence
            subscriber.cadence_since = now
        resend_after = timedelta(seconds=settings.NEWSLETTER_CONFIRM_RESEND_INTERVAL)
        send = subscriber.confirmation_sent_at is None or subscriber.confirmation_sent_at <= now - resend_after
        if send:
            subscriber.confirmation_sent_at = now
        subscriber.save()
        if chosen is not None:
            subscriber.topics.set(chosen)
        if send:
            transaction.on_commit(functools.partial(_queue_confirmation, subscriber.pk, now))
        transaction.on_commit(metrics.record_subscription)
    return subscriber


def _queue_confirmation(subscriber_id: int, sent_at: datetime) -> None:
    """Queue the confirmation; with the broker down, mark it unsent for ``queue_unsent_confirmations``.

    The reader gets the same "check your inbox" answer either way (an answer that differed
    would tell who is subscribed), and the email once the broker is back.
    """
    from newsletter.tasks import send_confirmation_email

    try:
        enqueue(send_confirmation_email, subscriber_id)
    except QueueUnavailable:
        Subscriber.objects.filter(pk=subscriber_id, confirmation_sent_at=sent_at).update(confirmation_sent_at=None)


def queue_unsent_confirmations() -> int:
    """Queue the confirmations of the last day's sign-ups that the broker could not take when
    they came (``_queue_confirmation``); how many. Beat runs it with the campaign recovery."""
    since = timezone.now() - timedelta(days=1)
    unsent = Subscriber.objects.filter(
        status=Subscriber.Status.PENDING,
        confirmation_sent_at__isnull=True,
        consent_at__gte=since,
        source__in=(Subscriber.Source.FORM, Subscriber.Source.API),
    )
    queued = 0
    for subscriber_id in unsent.values_list("pk", flat=True)[:1000]:
        now = timezone.now()
        # Taken by one process only: two beats, or a sign-up again meanwhile, send it once.
        if Subscriber.objects.filter(pk=subscriber_id, confirmation_sent_at__isnull=True).update(
            confirmation_sent_at=now
        ):
            _queue_confirmation(subscriber_id, now)
            queued += 1
    return queued


def confirm_subscriber(*, subscriber: Subscriber) -> Subscriber:
    """Confirm a pending subscriber and queue the welcome email; other states are left alone."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status != Subscriber.Status.PENDING:
            return subscriber
        subscriber.status = Subscriber.Status.CONFIRMED
        subscriber.confirmed_at = timezone.now()
        subscriber.unsubscribed_at = None
        subscriber.unsubscribe_reason = ""
        subscriber.save()
        # A reader who once asked for erasure and now confirmed again has consented anew.
        Suppression.objects.filter(email_hash=email_hash(subscriber.email)).delete()
        from newsletter.tasks import send_welcome_email

        notify_on_commit(send_welcome_email, subscriber.pk)  # the confirmation stands without it
        transaction.on_commit(metrics.record_confirmation)
    return subscriber


def unsubscribe(*, subscriber: Subscriber, reason: str) -> Subscriber:
    """Stop every send to ``subscriber`` at once. Idempotent."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == Subscriber.Status.UNSUBSCRIBED:
            return subscriber
        if subscriber.status not in SUPPRESSED:
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
        subscriber.unsubscribed_at = timezone.now()
        subscriber.unsubscribe_reason = _clean(reason, 200)
        subscriber.save()
        record_outcome(subscriber_id=subscriber.pk, metric=EngagementCount.Metric.UNSUBSCRIBES)
    return subscriber


def update_preferences(
    *,
    subscriber: Subscriber,
    all_topics: bool,
    topics: Iterable[Topic] = (),
    cadence: str | None = None,
    name: str | None = None,
) -> Subscriber:
    """Set which topics (all, or the chosen ones) and how often a reader receives."""
    chosen = list(topics)
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        subscriber.all_topics = all_topics or not chosen
        if cadence is not None and cadence != subscriber.cadence:
            # The old cadence's next digest still brings what it owes up to now (newsletter.digests).
            now = timezone.now()
            if subscriber.cadence in (Subscriber.Cadence.DAILY, Subscriber.Cadence.WEEKLY):
                setattr(subscriber, f"left_{subscriber.cadence}_at", now)
            subscriber.previous_cadence = subscriber.cadence
            subscriber.cadence = cadence
            subscriber.cadence_since = now
        if name is not None:
            subscriber.name = _clean(name, 120)
        subscriber.save()
        subscriber.topics.set([] if subscriber.all_topics else chosen)
    return subscriber


def suppress_subscriber(*, subscriber: Subscriber, status: str, reason: str) -> Subscriber:
    """Stop all sends to an address that bounced hard or complained; record why and when."""
    if status not in SUPPRESSED:
        raise ValueError(f"suppression status must be bounced or complained, not {status!r}")
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        # A complaint outranks a bounce; neither replaces an unsubscribe's record.
        if subscriber.status == Subscriber.Status.COMPLAINED and status == Subscriber.Status.BOUNCED:
            return subscriber
        if subscriber.status != status:
            metric = (
                EngagementCount.Metric.COMPLAINTS
                if status == Subscriber.Status.COMPLAINED
                else EngagementCount.Metric.BOUNCES
            )
            record_outcome(subscriber_id=subscriber.pk, metric=metric)
        subscriber.status = status
        subscriber.suppressed_at = timezone.now()
        subscriber.suppression_reason = _clean(reason, 300)
        subscriber.save()
    return subscriber


def record_soft_bounce(*, subscriber: Subscriber, reason: str) -> Subscriber:
    """Count a soft bounce; at NEWSLETTER_SOFT_BOUNCE_THRESHOLD the address is suppressed."""
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        subscriber.soft_bounce_count += 1
        subscriber.save(update_fields=["soft_bounce_count"])
        if subscriber.soft_bounce_count >= settings.NEWSLETTER_SOFT_BOUNCE_THRESHOLD and subscriber.status not in (
            SUPPRESSED
        ):
            return suppress_subscriber(
                subscriber=subscriber,
                status=Subscriber.Status.BOUNCED,
                reason=f"{subscriber.soft_bounce_count} soft bounces, last: {reason}",
            )
    return subscriber


def clear_soft_bounces(*, subscriber: Subscriber) -> Subscriber:
    """A message reached the reader: earlier soft bounces were passing trouble, so the count restarts."""
    Subscriber.objects.filter(pk=subscriber.pk, soft_bounce_count__gt=0).update(soft_bounce_count=0)
    subscriber.refresh_from_db(fields=["soft_bounce_count"])
    return subscriber


def lift_bounce_suppression(*, subscriber: Subscriber) -> Subscriber:
    """The provider accepts mail for the address again (e.g. Postmark's reactivation).

    A bounce suppression is about the mailbox, so it is lifted and the soft-bounce count
    restarts. A complaint or an unsubscribe is the reader's own choice and stays.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status == Subscriber.Status.BOUNCED:
            return unsuppress_subscriber(subscriber=subscriber)
        if subscriber.soft_bounce_count:
            subscriber.soft_bounce_count = 0
            subscriber.save(update_fields=["soft_bounce_count"])
    return subscriber


def unsuppress_subscriber(*, subscriber: Subscriber, by: Any = None) -> Subscriber:
    """Undo a bounce or complaint suppression (an editor's decision).

    The reader returns to confirmed if they had confirmed, otherwise to pending.
    """
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(pk=subscriber.pk)
        if subscriber.status not in SUPPRESSED:
            return subscriber
        if subscriber.unsubscribed_at is not None:
            subscriber.status = Subscriber.Status.UNSUBSCRIBED
        elif subscriber.confirmed_at is not None:
            subscriber.status = Subscriber.Status.CONFIRMED
        else:
            subscriber.status = Subscriber.Status.PENDING
        subscriber.suppressed_at = None
        subscriber.suppression_reason = ""
        subscriber.soft_bounce_count = 0
        subscriber.save()
    return subscriber


def export_subscriber_data(*, subscriber: Subscriber) -> dict[str, Any]:
    """Everything we hold about a reader, as JSON-ready data."""

    def when(value: Any) -> str | None:
        return value.isoformat() if value else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "all_topics": subscriber.all_topics,
        "topics": [topic.name for topic in subscriber.topics.order_by("name")],
        "cadence": subscriber.cadence,
        "cadence_since": when(subscriber.cadence_since),
        "previous_cadence": subscriber.previous_cadence,
        "left_daily_digest_at": when(subscriber.left_daily_at),
        "left_weekly_digest_at": when(subscriber.left_weekly_at),
        "source": subscriber.source,
        "consent": {
            "at": when(subscriber.consent_at),
            "source": subscriber.consent_source,
            "ip": subscriber.consent_ip,
            "user_agent": subscriber.consent_user_agent,
            "wording_version": subscriber.consent_version,
        },
        "created_at": when(subscriber.created_at),
        "confirmed_at": when(subscriber.confirmed_at),
        "unsubscribed_at": when(subscriber.unsubscribed_at),
        "unsubscribe_reason": subscriber.unsubscribe_reason,
        "soft_bounce_count": subscriber.soft_bounce_count,
        "suppressed_at": when(subscriber.suppressed_at),
        "suppression_reason": subscriber.suppression_reason,
        "clicks": reader_clicks(subscriber.pk),
    }


def request_data_export(*, subscriber: Subscriber) -> Subscriber:
    """Queue an email to the reader with their data attached as JSON."""
    from newsletter.tasks import send_data_export

    enqueue_on_commit(send_data_export, subscriber.pk)
    return subscriber


def erase_subscriber(*, subscriber: Subscriber, reason: str = "erasure requested") -> Suppression:
    """Delete the reader's row; keep only a hash so no import adds the address again."""
    with transaction.atomic():
        suppression, _ = Suppression.objects.get_or_create(
            email_hash=email_hash(subscriber.email), defaults={"reason": _clean(reason, 200)}
        )
        forget_reader(subscriber_id=subscriber.pk)
        Subscriber.objects.filter(pk=subscriber.pk).delete()
    return suppression
