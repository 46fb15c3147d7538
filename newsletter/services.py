"""Business rules of the newsletter app."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from newsletter.models import Subscriber


@transaction.atomic
def suppress_subscriber(*, subscriber: Subscriber, status: str, reason: str) -> Subscriber:
    """Stop all mail to a reader whose address bounced or who complained."""
    if status not in (Subscriber.Status.BOUNCED, Subscriber.Status.COMPLAINED):
        raise ValueError(f"cannot suppress with status {status!r}")
    subscriber.status = status
    subscriber.unsubscribe_reason = reason[:200]
    subscriber.unsubscribed_at = timezone.now()
    subscriber.save(update_fields=["status", "unsubscribe_reason", "unsubscribed_at"])
    return subscriber
