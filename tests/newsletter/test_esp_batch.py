"""Sending through an ESP's batch API: anymail's Mailgun backend talks to a Mailgun API
on loopback (tests/support/esp.py), which makes one email per reader as Mailgun does."""

import re
from email.utils import parseaddr

import pytest
import redis
from django.utils import timezone

from newsletter import sending
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending import campaigns
from newsletter.sending.transports import esp
from newsletter.tokens import read_token
from tests.support.factories import ArticleFactory, SubscriberFactory

# The engine records outside transactions, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Batches are run by hand here; the chain's enqueueing is tested with real workers."""
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def start_campaign(readers: int) -> tuple[Campaign, list[Subscriber]]:
    subscribers = [SubscriberFactory.create() for _ in range(readers)]
    campaign = sending.start_campaign_for_article(article_id=ArticleFactory.create().pk)
    assert campaign is not None
    return campaign, subscribers


def send_everything(campaign: Campaign) -> None:
    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass


def links_for(text: str, purpose: str) -> set[int]:
    """The readers whose ``purpose`` links (unsubscribe, preferences) appear in ``text``."""
    tokens = re.findall(rf"/newsletter/{purpose}/([^/\s\"<>]+)/", text)
    return {read_token(token, purpose) for token in tokens}


def test_a_campaign_goes_out_in_one_api_call_per_ten_readers_each_with_their_own_links(mailgun_server, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 10
    campaign, readers = start_campaign(25)

    send_everything(campaign)

    assert [len(call.to) for call in mailgun_server.state.calls] == [10, 10, 5]
    for reader in readers:
        (copy,) = mailgun_server.state.to(reader.email)
        for body in (copy.text, copy.html):
            assert "%recipient." not in body
            assert links_for(body, "unsubscribe") == {reader.pk}
            assert links_for(body, "preferences") == {reader.pk}
        web, mailto = (part.strip(" <>") for part in copy.headers["List-Unsubscribe"].split(","))
        assert links_for(web, "unsubscribe") == {reader.pk}
        assert mailto.startswith("mailto:")
        assert copy.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert copy.headers["List-Id"]
        everything = " ".join([copy.text, copy.html, *copy.headers.values()])
        addresses = set(re.findall(r"[\w.+-]+@example\.org", everything))
        assert addresses <= {reader.email}
    sent = campaign.deliveries.filter(status=Delivery.Status.SENT)
    assert sent.count() == 25
    assert sent.values("provider_message_id").distinct().count() == 3  # Mailgun: one id per call
    assert not sent.exclude(claimed_by="").exists()
    assert set(sent.values_list("attempts", flat=True)) == {1}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_a_whole_call_refused_for_one_bad_address_sends_the_others_one_by_one(mailgun_server, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 5
    campaign, readers = start_campaign(8)
    bad = readers[2]
    mailgun_server.state.invalid_addresses.add(bad.email)

    result = sending.send_batch(campaign_id=campaign.pk)

    assert (result.sent, result.failed, result.retrying) == (7, 1, 0)
    # The first call (5 readers) is refused whole, then its readers go one per call.
    assert [len(call.to) for call in mailgun_server.state.calls] == [5, 1, 1, 1, 1, 1, 3]
    assert sorted(mailgun_server.state.recipients()) == sorted(r.email for r in readers if r != bad)
    delivery = campaign.deliveries.get(subscriber=bad)
    assert delivery.status == Delivery.Status.FAILED
    assert "400" in delivery.last_error


def test_readers_the_esp_refuses_are_failed_and_suppressed_while_the_others_are_sent(unisender_go_server, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 10
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    campaign, readers = start_campaign(7)
    invalid, gone, full = readers[1], readers[4], readers[5]
    unisender_go_server.state.failed_emails = {
        invalid.email: "invalid",
        gone.email: "permanent_unavailable",  # anymail: rejected
        full.email: "temporary_unavailable",  # anymail: failed
    }

    result = sending.send_batch(campaign_id=campaign.pk)

    assert (result.sent, result.failed, result.retrying) == (4, 2, 1)
    assert len(unisender_go_server.state.calls) == 1
    others = [r for r in readers if r not in (invalid, gone, full)]
    assert sorted(unisender_go_server.state.recipients()) == sorted(r.email for r in others)
    for reader in others:
        (copy,) = unisender_go_server.state.to(reader.email)
        assert links_for(copy.html, "unsubscribe") == {reader.pk}
        assert links_for(copy.text, "preferences") == {reader.pk}
        assert links_for(copy.headers["List-Unsubscribe"], "unsubscribe") == {reader.pk}
    for refused in (invalid, gone):
        assert campaign.deliveries.get(subscriber=refused).status == Delivery.Status.FAILED
        refused.refresh_from_db()
        assert refused.status == Subscriber.Status.BOUNCED
    assert campaign.deliveries.get(subscriber=full).status == Delivery.Status.RETRYING
    full.refresh_from_db()
    assert full.status == Subscriber.Status.CONFIRMED
    sent = campaign.deliveries.filter(status=Delivery.Status.SENT)
    assert sent.values("provider_message_id").distinct().count() == 4  # an id per reader, recorded at once


@pytest.mark.parametrize("status", [429, 500])
def test_a_throttled_or_failed_call_puts_its_readers_on_retry_and_a_later_batch_sends_them_once(
    mailgun_server, settings, status
):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 10
    settings.NEWSLETTER_RETRY_BASE_SECONDS = 60
    campaign, readers = start_campaign(25)
    mailgun_server.state.call_faults[2] = (status, "Too many requests" if status == 429 else "Internal error")

    first = sending.send_batch(campaign_id=campaign.pk)

    # Call 1 sent 10, call 2 failed for its 10 readers; the last 5 go back to pending.
    assert (first.sent, first.retrying, first.released) == (10, 10, 5)
    retrying = campaign.deliveries.filter(status=Delivery.Status.RETRYING)
    assert retrying.count() == 10
    for delivery in retrying:
        assert delivery.next_attempt_at is not None
        assert 45 <= (delivery.next_attempt_at - timezone.now()).total_seconds() <= 75
        assert str(status) in delivery.last_error
    send_everything(campaign)
    assert len(mailgun_server.state.recipients()) == 15
    retrying.update(next_attempt_at=timezone.now())
    send_everything(campaign)

    assert sorted(mailgun_server.state.recipients()) == sorted(r.email for r in readers)  # each exactly once
    assert campaign.deliveries.filter(status=Delivery.Status.SENT).count() == 25
    assert set(campaign.deliveries.values_list("attempts", flat=True)) == {1, 2}


def test_readers_over_the_rate_limit_wait_for_the_next_window(mailgun_server, settings, time_machine):
    # Half past the hour: the batch cannot straddle two hourly windows.
    time_machine.move_to("2026-11-30 10:30Z", tick=True)
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("*ratelimit:newsletter:rate:*"):  # counters of earlier runs in this hour
        client.delete(key)
    settings.NEWSLETTER_ESP_BATCH_SIZE = 10
    settings.NEWSLETTER_RATE_PER_HOUR = 7
    campaign, _ = start_campaign(12)

    result = sending.send_batch(campaign_id=campaign.pk)

    # Each reader in a call counts against the limit, not the call.
    assert [len(call.to) for call in mailgun_server.state.calls] == [7]
    assert (result.sent, result.released) == (7, 5)
    assert 1700 < result.resume_in <= 1800  # until 11:00, the next window


def test_batch_size_one_sends_one_reader_per_call(mailgun_server, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 1
    campaign, readers = start_campaign(4)

    send_everything(campaign)

    assert [call.to for call in mailgun_server.state.calls] == [[r.email] for r in readers]
    for reader in readers:
        (copy,) = mailgun_server.state.to(reader.email)
        assert links_for(copy.text, "unsubscribe") == {reader.pk}


def test_without_a_known_merge_syntax_each_reader_gets_a_message_of_their_own(mailgun_server, settings):
    settings.NEWSLETTER_ESP_MERGE_FIELD = "off"
    campaign, readers = start_campaign(3)

    send_everything(campaign)

    calls = mailgun_server.state.calls
    assert [call.to for call in calls] == [[r.email] for r in readers]
    for reader in readers:
        (copy,) = mailgun_server.state.to(reader.email)
        assert links_for(copy.text, "unsubscribe") == {reader.pk}
        assert links_for(copy.headers["List-Unsubscribe"], "unsubscribe") == {reader.pk}
        # The engine's own stable Message-ID goes with a message sent to one reader.
        delivery = campaign.deliveries.get(subscriber=reader)
        assert parseaddr(copy.headers["Message-Id"])[1].startswith(f"campaign-{campaign.pk}.delivery-{delivery.pk}@")
    assert campaign.deliveries.filter(status=Delivery.Status.SENT).count() == 3


def test_the_merge_syntax_follows_the_esp(settings):
    from anymail.backends.mailgun import EmailBackend as Mailgun
    from anymail.backends.postmark import EmailBackend as Postmark

    settings.ANYMAIL = {"MAILGUN_API_KEY": "k", "POSTMARK_SERVER_TOKEN": "t"}
    settings.NEWSLETTER_ESP_MERGE_FIELD = None
    assert esp.esp_merge_field(Mailgun()) == "%recipient.{}%"
    assert esp.esp_merge_field(Postmark()) == ""  # merges only into stored templates
    settings.NEWSLETTER_ESP_MERGE_FIELD = "-{}-"
    assert esp.esp_merge_field(Mailgun()) == "-{}-"
    settings.NEWSLETTER_ESP_MERGE_FIELD = "off"
    assert esp.esp_merge_field(Mailgun()) == ""
