"""Tracking-webhook requests shaped as each provider documents them (invented values).

Each kit builds the request a provider would send for one kind of event: ``n`` tells
events apart (a new event id and time), so the same ``n`` twice is one event delivered
twice. Shapes follow the providers' webhook documentation as django-anymail parses it:
Postmark (bounce, spam complaint, delivery, subscription change webhooks), Mailgun
(JSON webhooks with a signature block), Mailjet (grouped event arrays), SparkPost
(``msys`` batches), Unisender Go (``events_by_user``, MD5 ``auth``) and Brevo
(transactional webhooks, one event per request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Any

SECRET = "hooks:s3cret-for-tests"
MAILGUN_SIGNING_KEY = "mailgun-signing-key-for-tests"
UNISENDER_GO_API_KEY = "unisender-go-api-key-for-tests-9c1e"
BASE_TIME = 1767780000  # 2026-01-07 10:00 UTC


@dataclass
class Request:
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def basic_auth(secret: str = SECRET) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def iso(n: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(BASE_TIME + n, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


# Postmark ----------------------------------------------------------------------------


def postmark(payload: Any) -> Request:
    return Request(json.dumps(payload).encode(), basic_auth())


def postmark_bounce_payload(email: Any, n: int, bounce_type: str = "HardBounce", record_type: str = "Bounce") -> dict:
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "ID": 4323372036854775000 + n,
        "Type": bounce_type,
        "TypeCode": {"HardBounce": 1, "Transient": 2, "SoftBounce": 4096, "SpamComplaint": 512, "Blocked": 100006}.get(
            bounce_type, 1
        ),
        "Name": bounce_type,
        "Tag": "newsletter",
        "MessageID": f"883953f4-6105-42a2-a16a-{n:012d}",
        "Metadata": {},
        "ServerID": 23,
        "Description": f"Invented {bounce_type} description.",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "newsletter@example.org",
        "BouncedAt": iso(n),
        "DumpAvailable": False,
        "Inactive": bounce_type in ("HardBounce", "SpamComplaint"),
        "CanActivate": True,
        "Subject": "A piece",
    }


def postmark_subscription_change(email: str, n: int, suppress: bool, reason: str | None = "ManualSuppression") -> dict:
    return {
        "RecordType": "SubscriptionChange",
        "MessageID": f"883953f4-6105-42a2-a16a-{n:012d}",
        "ServerID": 23,
        "MessageStream": "outbound",
        "ChangedAt": iso(n),
        "Recipient": email,
        "Origin": "Recipient" if suppress else "Customer",
        "SuppressSending": suppress,
        "SuppressionReason": reason if suppress else None,
        "Tag": "newsletter",
        "Metadata": {},
    }


class Postmark:
    name = "postmark"

    @staticmethod
    def hard_bounce(email: str, n: int) -> Request:
        return postmark(postmark_bounce_payload(email, n))

    @staticmethod
    def soft_bounce(email: str, n: int) -> Request:
        return postmark(postmark_bounce_payload(email, n, "SoftBounce"))

    @staticmethod
    def delay(email: str, n: int) -> Request:
        return postmark(postmark_bounce_payload(email, n, "Transient"))

    @staticmethod
    def complaint(email: str, n: int) -> Request:
        return postmark(postmark_bounce_payload(email, n, "SpamComplaint", "SpamComplaint"))

    @staticmethod
    def unsubscribe(email: str, n: int) -> Request:
        return postmark(postmark_subscription_change(email, n, suppress=True))

    @staticmethod
    def delivered(email: str, n: int) -> Request:
        return postmark(
            {
                "RecordType": "Delivery",
                "ServerID": 23,
                "MessageStream": "outbound",
                "MessageID": f"883953f4-6105-42a2-a16a-{n:012d}",
                "Recipient": email,
                "Tag": "newsletter",
                "DeliveredAt": iso(n),
                "Details": "smtp;250 2.0.0 OK",
                "Metadata": {},
            }
        )


# Mailgun -----------------------------------------------------------------------------


def mailgun(event_data: dict, n: int, key: str = MAILGUN_SIGNING_KEY) -> Request:
    token = f"{n:050d}"
    timestamp = str(BASE_TIME + n)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload = {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event_data}
    return Request(json.dumps(payload).encode(), basic_auth())


def mailgun_event(email: str, n: int, event: str, **fields: Any) -> dict:
    return {
        "event": event,
        "id": f"CPgfbmQMTCKtHW6uIWtuVe{n}",
        "timestamp": BASE_TIME + n + 0.5,
        "recipient": email,
        "recipient-domain": email.partition("@")[2],
        "tags": [],
        "user-variables": {},
        "message": {"headers": {"message-id": f"20260107100000.{n}@mg.example.org", "to": email}},
        **fields,
    }


class Mailgun:
    name = "mailgun"

    @staticmethod
    def hard_bounce(email: str, n: int) -> Request:
        status = {"code": 550, "message": "5.1.1 The email account does not exist", "description": "Not delivered"}
        return mailgun(
            mailgun_event(email, n, "failed", severity="permanent", reason="bounce", **{"delivery-status": status}), n
        )

    @staticmethod
    def soft_bounce(email: str, n: int) -> Request:
        # Mailgun gave up retrying a temporary failure (a full mailbox).
        status = {"code": 452, "message": "4.2.2 The email account is over quota", "description": ""}
        return mailgun(
            mailgun_event(email, n, "failed", severity="permanent", reason="old", **{"delivery-status": status}), n
        )

    @staticmethod
    def delay(email: str, n: int) -> Request:
        status = {
            "code": 452,
            "message": "4.2.2 The email account is over quota",
            "description": "",
            "retry-seconds": 600,
        }
        return mailgun(
            mailgun_event(email, n, "failed", severity="temporary", reason="generic", **{"delivery-status": status}), n
        )

    @staticmethod
    def complaint(email: str, n: int) -> Request:
        return mailgun(mailgun_event(email, n, "complained"), n)

    @staticmethod
    def unsubscribe(email: str, n: int) -> Request:
        return mailgun(mailgun_event(email, n, "unsubscribed"), n)

    @staticmethod
    def delivered(email: str, n: int) -> Request:
        status = {"code": 250, "message": "OK", "description": ""}
        return mailgun(mailgun_event(email, n, "delivered", **{"delivery-status": status}), n)


# Mailjet -----------------------------------------------------------------------------


def mailjet(events: list[dict]) -> Request:
    return Request(json.dumps(events).encode(), basic_auth())


def mailjet_event(email: Any, n: int, event: str, **fields: Any) -> dict:
    return {
        "event": event,
        "time": BASE_TIME + n,
        "MessageID": 12345678901234000 + n,
        "email": email,
        "mj_campaign_id": 1234567890,
        "mj_contact_id": 9876543210,
        "customcampaign": "",
        **fields,
    }


class Mailjet:
    name = "mailjet"

    @staticmethod
    def hard_bounce(email: str, n: int) -> Request:
        return mailjet(
            [
                mailjet_event(
                    email,
                    n,
                    "bounce",
                    blocked=False,
                    hard_bounce=True,
                    error_related_to="recipient",
                    error="user unknown",
                )
            ]
        )

    @staticmethod
    def soft_bounce(email: str, n: int) -> Request:
        return mailjet(
            [
                mailjet_event(
                    email,
                    n,
                    "bounce",
                    blocked=False,
                    hard_bounce=False,
                    error_related_to="recipient",
                    error="quota exceeded",
                )
            ]
        )

    @staticmethod
    def delay(email: str, n: int) -> Request:
        return mailjet(
            [
                mailjet_event(
                    email, n, "bounce", blocked=True, hard_bounce=False, error_related_to="domain", error="greylisted"
                )
            ]
        )

    @staticmethod
    def complaint(email: str, n: int) -> Request:
        return mailjet([mailjet_event(email, n, "spam", source="JMRPP")])

    @staticmethod
    def unsubscribe(email: str, n: int) -> Request:
        return mailjet(
            [mailjet_event(email, n, "unsub", mj_list_id=0, ip="127.0.0.4", geo="", agent="List-Unsubscribe")]
        )

    @staticmethod
    def delivered(email: str, n: int) -> Request:
        return mailjet([mailjet_event(email, n, "sent", mj_message_id=str(n), smtp_reply="sent (250 2.0.0 OK)")])


# SparkPost ---------------------------------------------------------------------------


def sparkpost(event_class: str, event: dict) -> Request:
    return Request(json.dumps([{"msys": {event_class: event}}]).encode(), basic_auth())


def sparkpost_event(email: str, n: int, event_type: str, **fields: Any) -> dict:
    return {
        "type": event_type,
        "event_id": str(84345317653491000 + n),
        "message_id": f"0004e3724f57753a{n:04d}",
        "raw_rcpt_to": email,
        "rcpt_to": email.lower(),
        "rcpt_meta": {},
        "timestamp": str(BASE_TIME + n),
        "transmission_id": str(84345317650824000 + n),
        **fields,
    }


class SparkPost:
    name = "sparkpost"

    @staticmethod
    def hard_bounce(email: str, n: int) -> Request:
        reason = "550 5.1.1 Recipient address rejected: User unknown"
        return sparkpost(
            "message_event", sparkpost_event(email, n, "bounce", bounce_class="10", error_code="550", raw_reason=reason)
        )

    @staticmethod
    def soft_bounce(email: str, n: int) -> Request:
        reason = "552 5.2.2 Mailbox full"
        return sparkpost(
            "message_event", sparkpost_event(email, n, "bounce", bounce_class="22", error_code="552", raw_reason=reason)
        )

    @staticmethod
    def delay(email: str, n: int) -> Request:
        reason = "454 4.4.4 [internal] no MX or A for domain"
        return sparkpost(
            "message_event",
            sparkpost_event(email, n, "delay", bounce_class="21", error_code="454", raw_reason=reason, num_retries="1"),
        )

    @staticmethod
    def complaint(email: str, n: int) -> Request:
        return sparkpost("message_event", sparkpost_event(email, n, "spam_complaint", fbtype="abuse"))

    @staticmethod
    def unsubscribe(email: str, n: int) -> Request:
        return sparkpost("unsubscribe_event", sparkpost_event(email, n, "list_unsubscribe"))

    @staticmethod
    def delivered(email: str, n: int) -> Request:
        return sparkpost("message_event", sparkpost_event(email, n, "delivery"))


# Unisender Go ------------------------------------------------------------------------


def unisender_go(event_data: list[dict], api_key: str = UNISENDER_GO_API_KEY) -> Request:
    """The body signed as Unisender Go does: ``auth`` is the MD5 of the body written
    with the API key in its place."""
    payload = {
        "auth": UNISENDER_GO_API_KEY,
        "events_by_user": [
            {
                "user_id": 456,
                "project_id": "6432890213745872",
                "project_name": "Newsletter",
                "events": [{"event_name": "transactional_email_status", "event_data": data} for data in event_data],
            }
        ],
    }
    with_key = json.dumps(payload, separators=(",", ":")).encode()
    signed_with = with_key.replace(UNISENDER_GO_API_KEY.encode(), api_key.encode())
    auth = hashlib.md5(signed_with).hexdigest().encode()  # noqa: S324 (Unisender Go's signature scheme)
    return Request(with_key.replace(UNISENDER_GO_API_KEY.encode(), auth), basic_auth())


def unisender_go_event(email: Any, n: int, status: str, delivery_status: str = "", response: str = "") -> dict:
    from datetime import UTC, datetime

    data: dict[str, Any] = {
        "job_id": f"1a3Q2V-0000OZ-{n:02d}",
        "metadata": {"campaign": "7"},
        "email": email,
        "status": status,
        "event_time": datetime.fromtimestamp(BASE_TIME + n, tz=UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if delivery_status:
        data["delivery_info"] = {"delivery_status": delivery_status, "destination_response": response}
    return data


class UnisenderGo:
    name = "unisender_go"

    @staticmethod
    def hard_bounce(email: str, n: int) -> Request:
        return unisender_go(
            [unisender_go_event(email, n, "hard_bounced", "err_user_unknown", "550 5.1.1 User unknown")]
        )

    @staticmethod
    def soft_bounce(email: str, n: int) -> Request:
        # Unisender Go stopped retrying: the mailbox stayed full.
        return unisender_go(
            [unisender_go_event(email, n, "hard_bounced", "err_mailbox_full", "552 5.2.2 Mailbox full")]
        )

    @staticmethod
    def delay(email: str, n: int) -> Request:
        return unisender_go([unisender_go_event(email, n, "soft_bounced", "err_will_retry", "451 4.7.1 Try later")])

    @staticmethod
    def complaint(email: str, n: int) -> Request:
        return unisender_go([unisender_go_event(email, n, "spam")])

    @staticmethod
    def unsubscribe(email: str, n: int) -> Request:
        return unisender_go([unisender_go_event(email, n, "unsubscribed")])

    @staticmethod
    def delivered(email: str, n: int) -> Request:
        return unisender_go([unisender_go_event(email, n, "delivered")])


# Brevo -------------------------------------------------------------------------------


def brevo(email: Any, n: int, event: str, reason: str = "") -> Request:
    payload = {
        "event": event,
        "email": email,
        "id": 1234567,
        "date": "2026-01-07 11:00:00",
        "ts": BASE_TIME + n,
        "ts_event": BASE_TIME + n,
        "ts_epoch": (BASE_TIME + n) * 1000,
        "message-id": f"<202601071000.{n}@smtp-relay.mailin.fr>",
        "subject": "A piece",
        "tag": "newsletter",
        "sending_ip": "185.41.28.109",
        "reason": reason,
    }
    return Request(json.dumps(payload).encode(), basic_auth())


class Brevo:
    name = "brevo"

    @staticmethod
    def hard_bounce(email: str, n: int) -> Request:
        return brevo(email, n, "hard_bounce", "550 5.1.1 User unknown")

    @staticmethod
    def soft_bounce(email: str, n: int) -> Request:
        return brevo(email, n, "soft_bounce", "552 5.2.2 Mailbox full")

    @staticmethod
    def delay(email: str, n: int) -> Request:
        return brevo(email, n, "deferred", "421 4.7.0 Try again later")

    @staticmethod
    def complaint(email: str, n: int) -> Request:
        return brevo(email, n, "spam")

    @staticmethod
    def unsubscribe(email: str, n: int) -> Request:
        return brevo(email, n, "unsubscribe")

    @staticmethod
    def delivered(email: str, n: int) -> Request:
        return brevo(email, n, "delivered")


PROVIDERS = [Postmark, Mailgun, Mailjet, SparkPost, UnisenderGo, Brevo]
