"""Tracking webhooks of every provider the engine sends through: what each kind of event
does to the reader, that a repeated event counts once, and that what cannot be read
answers 400 and changes nothing."""

from __future__ import annotations

import json
import threading

import pytest
import time_machine
from anymail.signals import AnymailTrackingEvent, EventType
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from django.db import connection, connections
from django.test import Client, RequestFactory

from newsletter.models import ProcessedTrackingEvent, Subscriber
from newsletter.webhooks import classify, handle_tracking_event
from tests.support import tracking_payloads as payloads
from tests.support.factories import SubscriberFactory
from tests.support.tracking_payloads import PROVIDERS, Request

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def webhook_keys(settings):
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "WEBHOOK_SECRET": payloads.SECRET,
        "MAILGUN_WEBHOOK_SIGNING_KEY": payloads.MAILGUN_SIGNING_KEY,
        "UNISENDER_GO_API_KEY": payloads.UNISENDER_GO_API_KEY,
    }
    settings.NEWSLETTER_SOFT_BOUNCE_THRESHOLD = 3


def url(esp: str) -> str:
    return f"/newsletter/webhooks/{esp}/tracking/"


def post(client, esp: str, request: Request, **extra):
    headers = {**request.headers, **extra}
    return client.post(url(esp), request.body, content_type="application/json", **headers)


def state(reader: Subscriber) -> tuple[str, int]:
    reader.refresh_from_db()
    return reader.status, reader.soft_bounce_count


by_provider = pytest.mark.parametrize("provider", PROVIDERS, ids=lambda provider: provider.name)


@by_provider
def test_a_hard_bounce_suppresses_the_reader_at_once(client, provider):
    reader = SubscriberFactory.create(email="gone@example.org")
    response = post(client, provider.name, provider.hard_bounce("Gone@example.org", 1))
    assert response.status_code == 200
    assert state(reader) == (Subscriber.Status.BOUNCED, 0)
    assert reader.suppressed_at is not None
    assert reader.suppression_reason.startswith(
        ("Postmark", "Mailgun", "Mailjet", "SparkPost", "Unisender Go", "Brevo")
    )


@by_provider
def test_soft_bounces_are_counted_and_suppress_at_the_threshold(client, provider):
    reader = SubscriberFactory.create(email="full@example.org")
    for n in (1, 2):
        assert post(client, provider.name, provider.soft_bounce("full@example.org", n)).status_code == 200
        assert state(reader) == (Subscriber.Status.CONFIRMED, n)
    post(client, provider.name, provider.soft_bounce("full@example.org", 3))
    assert state(reader) == (Subscriber.Status.BOUNCED, 3)
    assert "3 soft bounces" in reader.suppression_reason


@by_provider
def test_a_complaint_suppresses_the_reader_as_complained(client, provider):
    reader = SubscriberFactory.create(email="angry@example.org")
    assert post(client, provider.name, provider.complaint("angry@example.org", 1)).status_code == 200
    assert state(reader) == (Subscriber.Status.COMPLAINED, 0)


@by_provider
def test_an_unsubscribe_at_the_provider_unsubscribes_the_reader(client, provider):
    reader = SubscriberFactory.create(email="leaving@example.org")
    assert post(client, provider.name, provider.unsubscribe("leaving@example.org", 1)).status_code == 200
    assert state(reader) == (Subscriber.Status.UNSUBSCRIBED, 0)
    assert reader.unsubscribed_at is not None
    assert reader not in Subscriber.objects.confirmed()


@by_provider
def test_the_same_event_delivered_twice_counts_once(client, provider):
    reader = SubscriberFactory.create(email="twice@example.org")
    for _ in range(2):
        assert post(client, provider.name, provider.soft_bounce("twice@example.org", 7)).status_code == 200
    assert state(reader) == (Subscriber.Status.CONFIRMED, 1)
    assert ProcessedTrackingEvent.objects.count() == 1
    post(client, provider.name, provider.soft_bounce("twice@example.org", 8))  # a new event counts
    assert state(reader) == (Subscriber.Status.CONFIRMED, 2)


@by_provider
def test_an_event_for_an_unknown_address_answers_200_and_changes_nothing(client, provider):
    reader = SubscriberFactory.create(email="known@example.org")
    for request in (provider.hard_bounce("stranger@example.org", 1), provider.complaint("stranger@example.org", 2)):
        assert post(client, provider.name, request).status_code == 200
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    assert Subscriber.objects.count() == 1
    assert ProcessedTrackingEvent.objects.count() == 0


@by_provider
def test_a_complaint_outranks_a_later_bounce(client, provider):
    reader = SubscriberFactory.create(email="both@example.org")
    post(client, provider.name, provider.complaint("both@example.org", 1))
    post(client, provider.name, provider.hard_bounce("both@example.org", 2))
    for n in (3, 4, 5):
        post(client, provider.name, provider.soft_bounce("both@example.org", n))
    assert state(reader)[0] == Subscriber.Status.COMPLAINED


@by_provider
def test_a_delay_notice_is_not_a_soft_bounce(client, provider):
    reader = SubscriberFactory.create(email="slow@example.org")
    for n in (1, 2, 3, 4):
        assert post(client, provider.name, provider.delay("slow@example.org", n)).status_code == 200
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)


@by_provider
def test_a_delivery_restarts_the_soft_bounce_count(client, provider):
    reader = SubscriberFactory.create(email="flaky@example.org")
    post(client, provider.name, provider.soft_bounce("flaky@example.org", 1))
    post(client, provider.name, provider.soft_bounce("flaky@example.org", 2))
    assert post(client, provider.name, provider.delivered("flaky@example.org", 3)).status_code == 200
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    post(client, provider.name, provider.soft_bounce("flaky@example.org", 4))
    assert state(reader) == (Subscriber.Status.CONFIRMED, 1)


@by_provider
def test_a_webhook_is_off_until_its_key_is_configured(client, settings, provider):
    settings.ANYMAIL = {}
    reader = SubscriberFactory.create(email="forged@example.org")
    response = post(client, provider.name, provider.hard_bounce("forged@example.org", 1))
    assert response.status_code == 403
    assert "ANYMAIL_" in response.content.decode()
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)


@by_provider
def test_a_request_with_the_wrong_basic_auth_is_refused(client, provider):
    reader = SubscriberFactory.create(email="safe@example.org")
    response = post(client, provider.name, provider.hard_bounce("safe@example.org", 1), **payloads.basic_auth("x:y"))
    assert response.status_code == 400
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)


def test_a_mailgun_event_with_a_forged_signature_is_refused(client, settings):
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": payloads.MAILGUN_SIGNING_KEY}  # signature only, no basic auth
    reader = SubscriberFactory.create(email="safe@example.org")
    event = payloads.mailgun_event("safe@example.org", 1, "complained")
    assert post(client, "mailgun", payloads.mailgun(event, 1, key="not-the-key")).status_code == 400
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    assert post(client, "mailgun", payloads.mailgun(event, 1)).status_code == 200
    assert state(reader) == (Subscriber.Status.COMPLAINED, 0)


def test_a_unisender_go_event_signed_with_another_key_is_refused(client, settings):
    settings.ANYMAIL = {"UNISENDER_GO_API_KEY": payloads.UNISENDER_GO_API_KEY}
    reader = SubscriberFactory.create(email="safe@example.org")
    event = payloads.unisender_go_event("safe@example.org", 1, "spam")
    assert post(client, "unisender_go", payloads.unisender_go([event], api_key="another-key")).status_code == 400
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    assert post(client, "unisender_go", payloads.unisender_go([event])).status_code == 200
    assert state(reader) == (Subscriber.Status.COMPLAINED, 0)


def test_a_provider_without_a_webhook_is_not_found(client):
    assert post(client, "pigeon", payloads.Postmark.hard_bounce("a@example.org", 1)).status_code == 404


# Malformed bodies: authenticated, but not what the provider documents -----------------


def raw(body: str) -> Request:
    return Request(body.encode(), payloads.basic_auth())


MALFORMED_POSTMARK = {
    "invalid JSON": raw('{"RecordType": "Bounce", "Email": '),
    "a JSON list": raw(json.dumps([payloads.postmark_bounce_payload("victim@example.org", 1)])),
    "a JSON string": raw('"Bounce"'),
    "a number for Email": payloads.postmark(payloads.postmark_bounce_payload(12345, 1)),
    "a list for Email": payloads.postmark(payloads.postmark_bounce_payload(["victim@example.org"], 1)),
    "no Email": payloads.postmark({k: v for k, v in payloads.postmark_bounce_payload("x", 1).items() if k != "Email"}),
    "no fields at all": raw("{}"),
    "a number for BouncedAt": payloads.postmark(
        {**payloads.postmark_bounce_payload("victim@example.org", 1), "BouncedAt": 7}
    ),
    "a NUL in Email": payloads.postmark(payloads.postmark_bounce_payload("victim\x00@example.org", 1)),
    "not UTF-8": Request(b'{"Email": "\xff\xfe"}', payloads.basic_auth()),
}


@pytest.mark.parametrize("request_", MALFORMED_POSTMARK.values(), ids=MALFORMED_POSTMARK.keys())
def test_a_malformed_postmark_body_answers_400_and_changes_nothing(client, request_):
    reader = SubscriberFactory.create(email="victim@example.org")
    response = post(client, "postmark", request_)
    assert response.status_code == 400
    assert "Malformed Postmark tracking webhook" in response.content.decode()
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    assert ProcessedTrackingEvent.objects.count() == 0


MALFORMED_OTHERS = {
    "mailgun: invalid JSON": ("mailgun", raw("{not json")),
    "mailgun: a JSON list": ("mailgun", raw("[]")),
    "mailgun: no event-data": (
        "mailgun",
        Request(
            json.dumps(
                {"signature": json.loads(payloads.Mailgun.complaint("v@example.org", 1).body)["signature"]}
            ).encode(),
            payloads.basic_auth(),
        ),
    ),
    "mailjet: a number for email": ("mailjet", payloads.mailjet([payloads.mailjet_event(42, 1, "spam")])),
    "mailjet: one bad event among good ones": (
        "mailjet",
        payloads.mailjet(
            [payloads.mailjet_event("victim@example.org", 1, "spam"), payloads.mailjet_event(None, 2, "bounce")]
        ),
    ),
    "sparkpost: an object instead of a list": ("sparkpost", raw('{"msys": {}}')),
    "sparkpost: invalid JSON": ("sparkpost", raw("[{")),
    "unisender_go: a JSON list": ("unisender_go", raw("[1, 2]")),
    "unisender_go: a number for email": (
        "unisender_go",
        payloads.unisender_go([payloads.unisender_go_event(7, 1, "spam")]),
    ),
}


@pytest.mark.parametrize(("esp", "request_"), MALFORMED_OTHERS.values(), ids=MALFORMED_OTHERS.keys())
def test_a_malformed_body_from_any_provider_answers_400_and_changes_nothing(client, esp, request_):
    reader = SubscriberFactory.create(email="victim@example.org")
    response = post(client, esp, request_)
    assert response.status_code == 400
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    assert ProcessedTrackingEvent.objects.count() == 0


# Postmark's bounce types and subscription changes --------------------------------------


def test_a_postmark_blocked_bounce_counts_as_a_soft_bounce(client):
    reader = SubscriberFactory.create(email="walled@example.org")
    for n in (1, 2):
        response = post(
            client, "postmark", payloads.postmark(payloads.postmark_bounce_payload("walled@example.org", n, "Blocked"))
        )
        assert response.status_code == 200
        assert state(reader) == (Subscriber.Status.CONFIRMED, n)
    post(client, "postmark", payloads.postmark(payloads.postmark_bounce_payload("walled@example.org", 3, "Blocked")))
    assert state(reader) == (Subscriber.Status.BOUNCED, 3)


def test_a_postmark_transient_bounce_changes_nothing(client):
    reader = SubscriberFactory.create(email="later@example.org")
    for n in (1, 2, 3):
        post(
            client, "postmark", payloads.postmark(payloads.postmark_bounce_payload("later@example.org", n, "Transient"))
        )
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)


def test_a_rejection_about_the_sender_changes_no_reader(client):
    reader = SubscriberFactory.create(email="innocent@example.org")
    for n in (1, 2, 3):
        bounce = payloads.postmark_bounce_payload("innocent@example.org", n, "DMARCPolicy")
        assert post(client, "postmark", payloads.postmark(bounce)).status_code == 200
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("ManualSuppression", Subscriber.Status.UNSUBSCRIBED),
        ("HardBounce", Subscriber.Status.BOUNCED),
        ("SpamComplaint", Subscriber.Status.COMPLAINED),
    ],
)
def test_a_postmark_subscription_change_that_suppresses_sending_stops_sends(client, reason, status):
    reader = SubscriberFactory.create(email="changed@example.org")
    change = payloads.postmark_subscription_change("changed@example.org", 1, suppress=True, reason=reason)
    assert post(client, "postmark", payloads.postmark(change)).status_code == 200
    assert state(reader)[0] == status
    assert reader not in Subscriber.objects.confirmed()


def test_a_postmark_reactivation_lifts_a_bounce(client):
    reader = SubscriberFactory.create(email="back@example.org")
    post(client, "postmark", payloads.Postmark.hard_bounce("back@example.org", 1))
    assert state(reader)[0] == Subscriber.Status.BOUNCED
    change = payloads.postmark_subscription_change("back@example.org", 2, suppress=False)
    assert post(client, "postmark", payloads.postmark(change)).status_code == 200
    assert state(reader) == (Subscriber.Status.CONFIRMED, 0)
    assert (reader.suppressed_at, reader.suppression_reason) == (None, "")


@pytest.mark.parametrize("status", [Subscriber.Status.COMPLAINED, Subscriber.Status.UNSUBSCRIBED])
def test_a_postmark_reactivation_keeps_the_readers_own_choice(client, status):
    reader = SubscriberFactory.create(email="chose@example.org", status=status)
    change = payloads.postmark_subscription_change("chose@example.org", 1, suppress=False)
    assert post(client, "postmark", payloads.postmark(change)).status_code == 200
    assert state(reader)[0] == status


# Concurrent repeats -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_counts_once():
    """Providers retry when an answer is slow, so a repeat can arrive while the first
    delivery is still being processed; the unique event key settles it in the database."""

    if connection.vendor != "postgresql":
        pytest.skip("concurrent writers need PostgreSQL")
    reader = SubscriberFactory.create(email="racing@example.org")
    request = payloads.Mailjet.soft_bounce("racing@example.org", 1)
    start = threading.Barrier(4)
    statuses: list[int] = []

    def deliver() -> None:
        try:
            start.wait()
            statuses.append(post(Client(), "mailjet", request).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200, 200, 200, 200]
    assert state(reader) == (Subscriber.Status.CONFIRMED, 1)
    assert ProcessedTrackingEvent.objects.count() == 1


# Amazon SES ---------------------------------------------------------------------------
# Its webhook view needs boto3 (django-anymail[amazon-ses]), which this project does not
# install; anymail's own SES parser still reads the notifications, fed to the handler.


def ses_notification(n: int, ses_event: dict) -> dict:
    """An SNS notification carrying an SES event, as AWS documents both."""
    return {
        "Type": "Notification",
        "MessageId": f"8a5a5b1f-5a3e-5d0e-9c8b-{n:012d}",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "Message": json.dumps(ses_event),
        "Timestamp": payloads.iso(n).replace(".0000000Z", ".000Z"),
        "SignatureVersion": "1",
        "Signature": "invented",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-invented.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
    }


def ses_bounce(n: int, bounce_type: str, *emails: str) -> dict:
    return ses_notification(
        n,
        {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General" if bounce_type == "Permanent" else "MailboxFull",
                "bouncedRecipients": [
                    {"emailAddress": email, "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1"}
                    for email in emails
                ],
                "timestamp": payloads.iso(n),
                "feedbackId": f"0102016a-{n:08d}",
            },
            "mail": {"timestamp": payloads.iso(n), "messageId": f"0102016a-mail-{n}", "destination": list(emails)},
        },
    )


def ses_complaint(n: int, email: str) -> dict:
    return ses_notification(
        n,
        {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": email}],
                "timestamp": payloads.iso(n),
                "feedbackId": f"0102016a-{n:08d}",
                "complaintFeedbackType": "abuse",
            },
            "mail": {"timestamp": payloads.iso(n), "messageId": f"0102016a-mail-{n}", "destination": [email]},
        },
    )


def deliver_ses(notification: dict) -> None:

    request = RequestFactory().post("/", json.dumps(notification), content_type="text/plain")
    view = object.__new__(AmazonSESTrackingWebhookView)  # its __init__ only prepares boto3
    for event in view.parse_events(request):
        handle_tracking_event(AmazonSESTrackingWebhookView, event=event, esp_name=view.esp_name)


def test_amazon_ses_bounces_and_complaints_reach_every_named_reader_once():
    first, second = (SubscriberFactory.create(email=f"ses{i}@example.org") for i in (1, 2))
    deliver_ses(ses_bounce(1, "Transient", "ses1@example.org", "ses2@example.org"))
    deliver_ses(ses_bounce(1, "Transient", "ses1@example.org", "ses2@example.org"))  # SNS redelivers
    assert state(first) == state(second) == (Subscriber.Status.CONFIRMED, 1)
    deliver_ses(ses_bounce(2, "Permanent", "ses1@example.org"))
    assert state(first)[0] == Subscriber.Status.BOUNCED
    deliver_ses(ses_complaint(3, "ses2@example.org"))
    deliver_ses(ses_bounce(4, "Permanent", "ses2@example.org"))
    assert state(second)[0] == Subscriber.Status.COMPLAINED


def test_the_amazon_ses_webhook_says_what_it_needs_when_boto3_is_missing(client):
    try:
        import boto3  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("boto3 is installed")
    body = json.dumps(ses_complaint(1, "a@example.org"))
    response = client.post(
        url("amazon_ses"),
        body,
        content_type="text/plain",
        **payloads.basic_auth(),
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
    )
    assert response.status_code == 503
    assert "amazon-ses" in response.content.decode()


# Classification of the other providers' bounces, and how long events are remembered ----


@pytest.mark.parametrize(
    ("esp_name", "esp_event", "mta_response", "expected"),
    [
        ("Mandrill", {"event": "soft_bounce"}, None, "soft bounce"),
        ("Mandrill", {"event": "hard_bounce"}, "550 5.1.1 unknown user", "hard bounce"),
        ("MailerSend", {"data": {"type": "soft_bounced"}}, None, "soft bounce"),
        ("MailerSend", {"data": {"type": "hard_bounced"}}, None, "hard bounce"),
        ("Resend", {"data": {"bounce": {"type": "Transient", "message": "mailbox full"}}}, None, "soft bounce"),
        ("Resend", {"data": {"bounce": {"type": "Permanent", "message": "no such user"}}}, None, "hard bounce"),
        ("Another ESP", {}, "452 4.2.2 Mailbox full", "soft bounce"),
    ],
)
def test_other_providers_bounces_are_told_apart_by_their_own_fields(esp_name, esp_event, mta_response, expected):

    event = AnymailTrackingEvent(
        event_type=EventType.BOUNCED, recipient="a@example.org", esp_event=esp_event, mta_response=mta_response
    )
    assert classify(event, esp_name).value == expected


def test_processed_events_are_forgotten_after_thirty_days(client):

    reader = SubscriberFactory.create(email="old@example.org")
    with time_machine.travel("2026-01-07 10:00Z"):
        post(client, "postmark", payloads.Postmark.soft_bounce("old@example.org", 1))
    with time_machine.travel("2026-02-07 10:00Z"):
        post(client, "postmark", payloads.Postmark.soft_bounce("old@example.org", 2))
    assert state(reader) == (Subscriber.Status.CONFIRMED, 2)
    assert ProcessedTrackingEvent.objects.count() == 1  # the January one is gone
