"""Bounces and complaints reported by the email provider through django-anymail's
tracking webhooks (connected to anymail's ``tracking`` signal in NewsletterConfig.ready).

Hard bounces and spam complaints suppress the address at once; soft bounces
(and deferrals) are counted and suppress it at NEWSLETTER_SOFT_BOUNCE_THRESHOLD.
"""

from __future__ import annotations

import logging
from typing import Any

from anymail.signals import AnymailTrackingEvent, EventType
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from newsletter import services
from newsletter.models import Subscriber, canonical_email

logger = logging.getLogger(__name__)

# Provider bounce types that are temporary although reported as "bounced".
SOFT_BOUNCE_TYPES = {"SoftBounce", "soft", "transient"}


def is_soft_bounce(event: AnymailTrackingEvent) -> bool:
    if event.event_type == EventType.DEFERRED:
        return True
    esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
    return event.event_type == EventType.BOUNCED and str(esp_event.get("Type", "")) in SOFT_BOUNCE_TYPES


def handle_tracking_event(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    if event.event_type not in (EventType.BOUNCED, EventType.COMPLAINED, EventType.DEFERRED) or not event.recipient:
        return
    subscriber = Subscriber.objects.filter(email__iexact=canonical_email(event.recipient)).first()
    if subscriber is None:
        return
    detail = event.description or event.mta_response or ""
    reason = f"{esp_name} {event.event_type}" + (f": {detail}" if detail else "")
    if event.event_type == EventType.COMPLAINED:
        services.suppress_subscriber(subscriber=subscriber, status=Subscriber.Status.COMPLAINED, reason=reason)
    elif is_soft_bounce(event):
        services.record_soft_bounce(subscriber=subscriber, reason=reason)
    else:
        services.suppress_subscriber(subscriber=subscriber, status=Subscriber.Status.BOUNCED, reason=reason)
    logger.info("tracking event %s for subscriber %s", event.event_type, subscriber.pk)


_postmark_tracking_view = PostmarkTrackingWebhookView.as_view()


@csrf_exempt
def postmark_tracking(request: HttpRequest) -> HttpResponse:
    """Anymail's Postmark tracking webhook, refused unless ANYMAIL_WEBHOOK_SECRET is set:
    unauthenticated, anyone could suppress any address with a forged bounce."""
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return HttpResponse("Webhooks are off: set ANYMAIL_WEBHOOK_SECRET.", status=403, content_type="text/plain")
    response: HttpResponse = _postmark_tracking_view(request)
    return response
