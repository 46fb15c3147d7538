"""Bounce and complaint webhooks (Postmark payloads through django-anymail) and privacy requests."""

import base64
import itertools
import json

import pytest
from django.urls import reverse

from newsletter import services
from newsletter.models import Subscriber, Suppression, email_hash
from newsletter.tokens import make_token
from tests.support.factories import SubscriberFactory, TopicFactory
from tests.support.mail import link_to

WEBHOOK = "/newsletter/webhooks/postmark/tracking/"
SECRET = "hooks:s3cret-for-tests"
BOUNCE_IDS = itertools.count(4323372036854775807)


@pytest.fixture
def webhook_secret(settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": SECRET}
    return SECRET


def postmark_bounce(email, bounce_type="HardBounce", record_type="Bounce"):
    """A bounce/complaint payload shaped like Postmark's documented webhook."""
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "ID": next(BOUNCE_IDS),  # each bounce is a new event; a repeated ID is a repeat
        "Type": bounce_type,
        "TypeCode": {"HardBounce": 1, "SoftBounce": 4096, "SpamComplaint": 512}.get(bounce_type, 1),
        "Name": bounce_type,
        "Tag": "newsletter",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Metadata": {},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "newsletter@example.org",
        "BouncedAt": "2026-01-07T10:00:00.0000000Z",
        "DumpAvailable": False,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "A piece",
    }


def post_webhook(client, payload, secret=SECRET):
    auth = base64.b64encode(secret.encode()).decode()
    return client.post(
        WEBHOOK, json.dumps(payload), content_type="application/json", HTTP_AUTHORIZATION=f"Basic {auth}"
    )


def test_a_hard_bounce_suppresses_the_address_with_reason_and_time(client, db, webhook_secret):
    reader = SubscriberFactory.create(email="gone@example.org")
    response = post_webhook(client, postmark_bounce("Gone@Example.org"))
    assert response.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    assert reader.suppressed_at is not None
    assert "unable to deliver" in reader.suppression_reason
    assert reader not in Subscriber.objects.confirmed()


def test_a_spam_complaint_suppresses_the_address(client, db, webhook_secret):
    reader = SubscriberFactory.create(email="angry@example.org")
    post_webhook(client, postmark_bounce("angry@example.org", "SpamComplaint", "SpamComplaint"))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.COMPLAINED
    assert reader not in Subscriber.objects.confirmed()


def test_soft_bounces_suppress_only_at_the_threshold(client, db, webhook_secret, settings):
    settings.NEWSLETTER_SOFT_BOUNCE_THRESHOLD = 3
    reader = SubscriberFactory.create(email="full@example.org")
    for expected in (1, 2):
        post_webhook(client, postmark_bounce("full@example.org", "SoftBounce"))
        reader.refresh_from_db()
        assert (reader.soft_bounce_count, reader.status) == (expected, Subscriber.Status.CONFIRMED)
    post_webhook(client, postmark_bounce("full@example.org", "SoftBounce"))
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    assert "3 soft bounces" in reader.suppression_reason


def test_the_webhook_refuses_requests_without_the_secret(client, db, webhook_secret):
    reader = SubscriberFactory.create(email="safe@example.org")
    response = post_webhook(client, postmark_bounce("safe@example.org"), secret="hooks:wrong")
    assert response.status_code == 400
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_the_webhook_is_off_until_a_secret_is_configured(client, db, settings):
    settings.ANYMAIL = {**settings.ANYMAIL, "WEBHOOK_SECRET": None}
    reader = SubscriberFactory.create(email="forged@example.org")
    response = client.post(WEBHOOK, json.dumps(postmark_bounce("forged@example.org")), content_type="application/json")
    assert response.status_code == 403
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED


def test_an_editor_can_undo_a_suppression(client, db, webhook_secret):
    reader = SubscriberFactory.create(email="back@example.org")
    post_webhook(client, postmark_bounce("back@example.org"))
    reader.refresh_from_db()
    services.unsuppress_subscriber(subscriber=reader)
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.CONFIRMED
    assert (reader.suppressed_at, reader.suppression_reason, reader.soft_bounce_count) == (None, "", 0)
    assert reader in Subscriber.objects.confirmed()


def test_a_suppressed_address_that_subscribes_again_stays_suppressed(client, run_tasks):
    reader = SubscriberFactory.create(email="hard@example.org", status=Subscriber.Status.BOUNCED)
    response = client.post("/newsletter/subscribe/", {"email": "hard@example.org"})
    assert b"Check your inbox" in response.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED
    assert run_tasks.handler.messages == []


def test_a_reader_gets_their_data_by_email_as_json(client, run_tasks):
    topic = TopicFactory.create(name="Energy", slug="energy")
    reader = SubscriberFactory.create(email="curious@example.org", name="Cur Ious", all_topics=False)
    reader.topics.set([topic])
    url = reverse("newsletter:preferences_data", args=[make_token(reader.pk, "preferences")])
    response = client.post(url)
    assert b"Your data is on its way" in response.content
    [mail] = run_tasks.handler.to("curious@example.org")
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "newsletter-data.json"
    data = json.loads(attachment.get_content())
    assert data["email"] == "curious@example.org"
    assert data["name"] == "Cur Ious"
    assert data["topics"] == ["Energy"]
    assert data["status"] == "confirmed"


def test_erasure_deletes_the_reader_and_keeps_only_a_hash(client, db):
    reader = SubscriberFactory.create(email="Forget.Me@example.org")
    url = reverse("newsletter:preferences_erase", args=[make_token(reader.pk, "preferences")])
    assert b"cannot be undone" in client.get(url).content
    assert Subscriber.objects.filter(pk=reader.pk).exists()
    response = client.post(url)
    assert b"Your data is erased" in response.content
    assert not Subscriber.objects.filter(pk=reader.pk).exists()
    suppression = Suppression.objects.get()
    assert suppression.email_hash == email_hash("forget.me@example.org")
    assert "Forget" not in str(suppression.__dict__)
    # The old links now say so kindly.
    assert client.get(url).status_code == 404


def test_the_privacy_page_emails_a_manage_link_only_to_listed_addresses(client, run_tasks):
    SubscriberFactory.create(email="listed@example.org")
    for email in ["listed@example.org", "stranger@example.org"]:
        response = client.post("/newsletter/privacy/", {"email": email})
        assert response.status_code == 200
        assert b"If" in response.content
    assert run_tasks.handler.to("stranger@example.org") == []
    [mail] = run_tasks.handler.to("listed@example.org")
    page = client.get(link_to(mail, "/newsletter/preferences/"))
    assert b"Erase my data" in page.content
