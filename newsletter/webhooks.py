"""Tracking webhooks: what the email provider reports about the messages it sent.

Every provider the sending engine can send through has its django-anymail tracking
webhook at ``/newsletter/webhooks/<esp>/tracking/`` (PROVIDERS below). Anymail checks
the request (HTTP basic auth with ANYMAIL_WEBHOOK_SECRET, or the provider's signature)
and turns the provider's payload into normalised events on its ``tracking`` signal;
``handle_tracking_event`` (connected in NewsletterConfig.ready) acts on them, the same
way for every provider:

- hard bounce, or an address the provider calls invalid: suppressed as bounced at once;
- soft bounce, and a block by the receiving server: counted; suppressed as bounced at
  NEWSLETTER_SOFT_BOUNCE_THRESHOLD;
- delay notice (the provider still retries): nothing changes;
- delivered: the soft-bounce count starts again from zero;
- spam complaint: suppressed as complained (a complaint outranks any bounce);
- unsubscribe at the provider: unsubscribed;
- the provider accepts the address again (Postmark's reactivation): a bounce
  suppression is lifted; complaints and unsubscribes stay;
- a rejection about the sender, content or account (DMARC, unconfirmed sender…):
  no reader changes, a warning is logged.

A provider may deliver one event several times; each event is remembered (without the
address) for TRACKING_EVENT_MEMORY, so a repeat changes nothing. A body that cannot be
read answers 400 and changes nothing; a request that fails authentication answers 400
(anymail); a provider whose key is not configured answers 403.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from anymail.exceptions import AnymailAPIError, AnymailConfigurationError, AnymailImproperlyInstalled
from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.brevo import BrevoTrackingWebhookView
from anymail.webhooks.mailersend import MailerSendTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.mailjet import MailjetTrackingWebhookView
from anymail.webhooks.mandrill import MandrillTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.resend import ResendTrackingWebhookView
from anymail.webhooks.sparkpost import SparkPostTrackingWebhookView
from anymail.webhooks.unisender_go import UnisenderGoTrackingWebhookView
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from newsletter import services
from newsletter.models import ProcessedTrackingEvent, Subscriber, canonical_email

if TYPE_CHECKING:
    from anymail.webhooks.base import AnymailCoreWebhookView as _WebhookBase
else:
    _WebhookBase = object

logger = logging.getLogger(__name__)

# Providers retry a webhook for hours (Mailgun, SparkPost), a day (Mailjet) or a few
# days (Amazon SNS); a repeat older than this is counted again.
TRACKING_EVENT_MEMORY = timedelta(days=30)


class Action(enum.Enum):
    HARD_BOUNCE = "hard bounce"
    SOFT_BOUNCE = "soft bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    REACTIVATED = "reactivated"
    DELIVERED = "delivered"
    SENDER_PROBLEM = "sender problem"
    NONE = "none"


# Events that carry a reader's address and that we act on: one without an address is malformed.
ACTED_ON = {
    EventType.BOUNCED,
    EventType.REJECTED,
    EventType.COMPLAINED,
    EventType.UNSUBSCRIBED,
    EventType.SUBSCRIBED,
    EventType.DELIVERED,
    EventType.DEFERRED,
    EventType.UNKNOWN,
}


def _field(data: Any, *path: str) -> Any:
    """``data[path[0]][path[1]]…``, or None when any step is missing or not a mapping."""
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def _smtp_code_is_temporary(text: Any) -> bool:
    return isinstance(text, str) and text.strip()[:1] == "4"


# Which bounces are hard (the mailbox does not exist or will never take mail), per
# provider, from each provider's own classification in the raw event. Any other bounce
# is soft: full mailbox, message too large, a block by the receiving server, a provider
# that gave up retrying.
def _postmark_hard(event: AnymailTrackingEvent) -> bool:
    esp_event = event.esp_event
    kind = _field(esp_event, "Type") or _field(esp_event, "SuppressionReason")
    return kind in {"HardBounce", "BadEmailAddress", "ManuallyDeactivated"}


def _mailgun_hard(event: AnymailTrackingEvent) -> bool:
    # Permanent failures: "bounce" (5xx for the mailbox), "suppress-bounce" (on Mailgun's
    # bounce list); "old" means Mailgun gave up retrying a temporary failure.
    reason = _field(event.esp_event, "event-data", "reason")
    code = _field(event.esp_event, "event-data", "delivery-status", "code")
    return reason in {"bounce", "suppress-bounce"} and not _smtp_code_is_temporary(str(code or ""))


def _mailjet_hard(event: AnymailTrackingEvent) -> bool:
    return _field(event.esp_event, "hard_bounce") is True


# SparkPost's bounce classes that its documentation calls hard.
SPARKPOST_HARD_CLASSES = {"10", "30", "90"}


def _sparkpost_hard(event: AnymailTrackingEvent) -> bool:
    msys = _field(event.esp_event, "msys") or {}
    body = next(iter(msys.values()), None) if isinstance(msys, dict) else None
    return str(_field(body, "bounce_class")) in SPARKPOST_HARD_CLASSES


UNISENDER_GO_HARD_STATUSES = {"err_user_unknown", "err_user_inactive", "err_mailbox_discarded", "err_domain_inactive"}


def _unisender_go_hard(event: AnymailTrackingEvent) -> bool:
    return _field(event.esp_event, "delivery_info", "delivery_status") in UNISENDER_GO_HARD_STATUSES


def _amazon_ses_hard(event: AnymailTrackingEvent) -> bool:
    return _field(event.esp_event, "bounce", "bounceType") == "Permanent"


def _generic_hard(event: AnymailTrackingEvent) -> bool:
    esp_event = event.esp_event
    if _field(esp_event, "event") == "soft_bounce" or _field(esp_event, "data", "type") == "soft_bounced":
        return False  # Brevo and Mandrill; MailerSend
    if _field(esp_event, "data", "bounce", "type") in ("Transient", "Undetermined"):
        return False  # Resend
    return not _smtp_code_is_temporary(event.mta_response)


HARD_BOUNCE_RULES: dict[str, Callable[[AnymailTrackingEvent], bool]] = {
    "Postmark": _postmark_hard,
    "Mailgun": _mailgun_hard,
    "Mailjet": _mailjet_hard,
    "SparkPost": _sparkpost_hard,
    "Unisender Go": _unisender_go_hard,
    "Amazon SES": _amazon_ses_hard,
}

# Rejections by the provider that say something about the reader's address; others are
# about us (DMARC, an unconfirmed sender, our content, the account) and change no reader.
POSTMARK_ADDRESS_REJECTIONS = {"Blocked", "BadEmailAddress", "ManuallyDeactivated"}
MAILJET_ADDRESS_ERRORS = {"recipient", "domain"}


def _rejection_is_about_the_address(event: AnymailTrackingEvent, esp_name: str) -> bool:
    if event.reject_reason in (RejectReason.INVALID, RejectReason.BOUNCED):
        return True
    if esp_name == "Postmark":
        return _field(event.esp_event, "Type") in POSTMARK_ADDRESS_REJECTIONS
    if esp_name == "Brevo":  # "blocked": the address is on Brevo's blocklist (earlier bounces)
        return _field(event.esp_event, "event") == "blocked"
    if esp_name == "Mailjet":  # "preblocked": Mailjet's own list of addresses that bounced before
        esp_event = event.esp_event
        return (
            _field(esp_event, "error_related_to") in MAILJET_ADDRESS_ERRORS
            or _field(esp_event, "error") == "preblocked"
        )
    return False


def classify(event: AnymailTrackingEvent, esp_name: str) -> Action:
    """What an anymail tracking event means for the reader it names."""
    event_type, reason = event.event_type, event.reject_reason
    if event_type == EventType.COMPLAINED:
        return Action.COMPLAINT
    if event_type == EventType.UNSUBSCRIBED:
        return Action.UNSUBSCRIBE
    if event_type == EventType.SUBSCRIBED:
        return Action.REACTIVATED
    if event_type == EventType.DELIVERED:
        return Action.DELIVERED
    if event_type == EventType.BOUNCED:
        if reason == RejectReason.UNSUBSCRIBED:
            return Action.UNSUBSCRIBE
        is_hard = HARD_BOUNCE_RULES.get(esp_name, _generic_hard)(event)
        return Action.HARD_BOUNCE if is_hard else Action.SOFT_BOUNCE
    if event_type == EventType.REJECTED:
        if reason == RejectReason.UNSUBSCRIBED:
            return Action.UNSUBSCRIBE
        if reason == RejectReason.SPAM:  # the reader reported an earlier message as spam
            return Action.COMPLAINT
        if not _rejection_is_about_the_address(event, esp_name):
            return Action.SENDER_PROBLEM
        if reason in (RejectReason.INVALID, RejectReason.BOUNCED) or (esp_name == "Postmark" and _postmark_hard(event)):
            return Action.HARD_BOUNCE
        return Action.SOFT_BOUNCE
    # Delay notices (EventType.DEFERRED), opens, clicks, queued, sent…: nothing to do.
    return Action.NONE


def event_key(event: AnymailTrackingEvent, esp_name: str, address: str) -> str | None:
    """A stable identity for the event, or None when the payload gives too little to tell
    a repeat from a new event (then it is never taken for a repeat)."""
    if not event.event_id and event.timestamp is None:
        return None
    timestamp = event.timestamp.isoformat() if event.timestamp is not None else ""
    parts = [esp_name, str(event.event_id or ""), address.lower(), str(event.event_type), str(event.message_id or "")]
    return hashlib.sha256("\x1f".join([*parts, timestamp]).encode()).hexdigest()


def _first_time(event: AnymailTrackingEvent, esp_name: str, address: str) -> bool:
    """Remember the event; False when it was already processed. Call inside a transaction."""
    key = event_key(event, esp_name, address)
    if key is None:
        return True
    try:
        with transaction.atomic():
            ProcessedTrackingEvent.objects.create(key=key, esp=esp_name[:40], event_type=str(event.event_type)[:20])
    except IntegrityError:
        return False
    ProcessedTrackingEvent.objects.filter(processed_at__lt=timezone.now() - TRACKING_EVENT_MEMORY).delete()
    return True


def handle_tracking_event(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    action = classify(event, esp_name)
    if action is Action.NONE:
        return
    address = str(event.recipient or "").strip()
    if action is Action.SENDER_PROBLEM:
        logger.warning("%s rejected a message for a reason about the sender: %s", esp_name, _reason(event, esp_name))
        return
    # LOWER(email) = …: the unique index on Lower("email") answers it (iexact's UPPER would
    # scan the table, once per event of a million-reader campaign).
    subscriber = (
        Subscriber.objects.alias(email_lower=Lower("email"))
        .filter(email_lower=canonical_email(address).lower())
        .first()
    )
    if subscriber is None:
        logger.info("%s %s event for an address that is no subscriber", esp_name, event.event_type)
        return
    if action is Action.DELIVERED and subscriber.soft_bounce_count == 0:
        return  # the usual case: nothing to change, nothing worth remembering
    with transaction.atomic():
        if not _first_time(event, esp_name, address):
            logger.info("%s %s event %s already processed", esp_name, event.event_type, event.event_id or "")
            return
        _apply(action, subscriber, _reason(event, esp_name))
    logger.info("%s %s event for subscriber %s: %s", esp_name, event.event_type, subscriber.pk, action.value)


def _reason(event: AnymailTrackingEvent, esp_name: str) -> str:
    detail = event.description or event.mta_response or ""
    return f"{esp_name} {event.event_type}" + (f": {detail}" if detail else "")


def _apply(action: Action, subscriber: Subscriber, reason: str) -> None:
    if action is Action.COMPLAINT:
        services.suppress_subscriber(subscriber=subscriber, status=Subscriber.Status.COMPLAINED, reason=reason)
    elif action is Action.HARD_BOUNCE:
        services.suppress_subscriber(subscriber=subscriber, status=Subscriber.Status.BOUNCED, reason=reason)
    elif action is Action.SOFT_BOUNCE:
        services.record_soft_bounce(subscriber=subscriber, reason=reason)
    elif action is Action.UNSUBSCRIBE:
        services.unsubscribe(subscriber=subscriber, reason=reason)
    elif action is Action.REACTIVATED:
        services.lift_bounce_suppression(subscriber=subscriber)
    elif action is Action.DELIVERED:
        services.clear_soft_bounces(subscriber=subscriber)


# The webhook views ---------------------------------------------------------------


class MalformedPayload(Exception):
    """The body is not what the provider documents; answered with 400."""


# What anymail's parsers raise on a body of the wrong shape (invalid JSON, a list where
# an object belongs, a number where text belongs, a missing field).
_UNREADABLE = (ValueError, KeyError, TypeError, AttributeError, IndexError, AssertionError, AnymailAPIError)


class CheckedTrackingView(_WebhookBase):
    """Anymail's tracking view of one provider, answering 400 to a body it cannot read.

    The events of one request are applied in one transaction: a body with one bad event
    among good ones changes nothing. Errors while applying stay 500 so the provider retries.
    """

    def run_validators(self, request: HttpRequest) -> None:
        try:
            super().run_validators(request)
        except _UNREADABLE as exc:
            raise MalformedPayload(f"unreadable body ({type(exc).__name__})") from exc

    def parse_events(self, request: HttpRequest) -> list[AnymailTrackingEvent]:
        try:
            events: list[AnymailTrackingEvent] = super().parse_events(request)
        except AnymailConfigurationError as exc:  # e.g. an inbound webhook pointed here
            raise MalformedPayload(str(exc)) from exc
        except _UNREADABLE as exc:
            raise MalformedPayload(f"unreadable body ({type(exc).__name__}: {exc})") from exc
        for event in events:
            recipient = event.recipient
            if event.event_type in ACTED_ON and not (isinstance(recipient, str) and recipient.strip()):
                raise MalformedPayload(f"a {event.event_type} event without a recipient address")
            if isinstance(recipient, str) and "\x00" in recipient:
                raise MalformedPayload("a NUL character in the recipient address")
        return events

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            with transaction.atomic():
                response: HttpResponse = super().post(request, *args, **kwargs)
        except MalformedPayload as exc:
            message = f"Malformed {self.esp_name} tracking webhook: {exc}"
            return HttpResponse(message, status=400, content_type="text/plain")
        return response


@dataclass(frozen=True)
class Provider:
    view: type[Any]
    # ANYMAIL settings of which at least one must be set for the webhook to be on:
    # unauthenticated, anyone could suppress any address with a forged bounce.
    keys: tuple[str, ...]

    @property
    def variables(self) -> str:
        return " or ".join(f"ANYMAIL_{key}" for key in self.keys)


BASIC_AUTH = ("WEBHOOK_SECRET",)

# The providers the sending engine can send through (newsletter/sending/transports/), by the name
# EMAIL_URL=anymail://ESP uses; the webhook URL is /newsletter/webhooks/<name>/tracking/.
PROVIDERS: dict[str, Provider] = {
    "postmark": Provider(PostmarkTrackingWebhookView, BASIC_AUTH),
    "mailgun": Provider(MailgunTrackingWebhookView, ("MAILGUN_WEBHOOK_SIGNING_KEY",)),
    "mailjet": Provider(MailjetTrackingWebhookView, BASIC_AUTH),
    "sparkpost": Provider(SparkPostTrackingWebhookView, BASIC_AUTH),
    "unisender_go": Provider(UnisenderGoTrackingWebhookView, ("UNISENDER_GO_API_KEY",)),
    "amazon_ses": Provider(AmazonSESTrackingWebhookView, BASIC_AUTH),
    "brevo": Provider(BrevoTrackingWebhookView, BASIC_AUTH),
    "mailersend": Provider(MailerSendTrackingWebhookView, ("MAILERSEND_SIGNING_SECRET",)),
    "mandrill": Provider(MandrillTrackingWebhookView, ("MANDRILL_WEBHOOK_KEY",)),
    "resend": Provider(ResendTrackingWebhookView, ("RESEND_SIGNING_SECRET", *BASIC_AUTH)),
}


def _checked_view(provider: Provider) -> Callable[..., HttpResponse]:
    view_class: Any = type(f"Checked{provider.view.__name__}", (CheckedTrackingView, provider.view), {})
    view: Callable[..., HttpResponse] = view_class.as_view()
    return view


_VIEWS = {esp: _checked_view(provider) for esp, provider in PROVIDERS.items()}


@csrf_exempt
def tracking_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    """The provider's anymail tracking webhook, refused (403) until its key is configured."""
    provider = PROVIDERS.get(esp)
    if provider is None:
        raise Http404("No tracking webhook for that provider.")
    if not any(settings.ANYMAIL.get(key) for key in provider.keys):
        message = f"The {esp} webhook is off: set {provider.variables}."
        return HttpResponse(message, status=403, content_type="text/plain")
    try:
        response: HttpResponse = _VIEWS[esp](request)
    except AnymailImproperlyInstalled as exc:
        logger.error("the %s webhook needs a package: %s", esp, exc)
        return HttpResponse(str(exc), status=503, content_type="text/plain")
    return response
