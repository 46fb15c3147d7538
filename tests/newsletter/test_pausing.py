"""Refusals that are about us, not the reader, pause a campaign; an editor resumes it.

Only a refusal of the reader's own mailbox fails a delivery and suppresses the reader.
A relay that refuses us, a rejected sender, a refused message or login, an ESP that
refuses our key: every reader would fail alike, so the campaign pauses and nobody is
touched. Sent in this process to the recording SMTP server (tests/support/smtp.py) or the ESP
server (tests/support/esp.py).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
from django.urls import reverse

from newsletter import sending
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, SubscriberFactory
from tests.support.smtp import SMTPServer

pytestmark = pytest.mark.django_db(transaction=True)  # the engine runs outside transactions, as in production


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch):
    """Batches are run by hand here."""
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)


def start(readers: int) -> tuple[Campaign, list[Subscriber]]:
    article = ArticleFactory.create(title="Fishing quotas, renegotiated")
    subscribers = [SubscriberFactory.create() for _ in range(readers)]
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    return campaign, subscribers


def send_everything(campaign: Campaign) -> None:
    while sending.send_batch(campaign_id=campaign.pk).claimed:
        pass


def assert_paused_and_untouched(campaign: Campaign, readers: list[Subscriber], reason: str) -> None:
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    assert reason in campaign.paused_reason
    assert campaign.paused_at is not None
    assert set(Subscriber.objects.values_list("status", flat=True)) == {Subscriber.Status.CONFIRMED}
    deliveries = campaign.deliveries.all()
    assert {d.status for d in deliveries} == {Delivery.Status.PENDING}
    assert {d.attempts for d in deliveries} == {0}  # no attempt burned
    assert len(deliveries) == len(readers)


def test_a_relay_refusing_everyone_pauses_the_campaign_and_bounces_nobody(smtp_server: SMTPServer):
    campaign, readers = start(4)
    smtp_server.handler.rcpt_fault_for_all = "554 5.7.1 <reader@example.org>: Relay access denied"

    send_everything(campaign)

    assert smtp_server.handler.recipients() == []
    assert_paused_and_untouched(campaign, readers, "554 5.7.1")
    assert sending.send_batch(campaign_id=campaign.pk).claimed == 0  # a paused campaign sends nothing
    assert campaigns.finish_if_done(campaign_id=campaign.pk) is False

    smtp_server.handler.rcpt_fault_for_all = None
    sending.resume_campaign(campaign=campaign)
    send_everything(campaign)

    assert Counter(smtp_server.handler.recipients()) == Counter(r.email for r in readers)  # each exactly once
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    assert campaign.paused_reason == ""


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("mail", "553 5.7.1 Sender address rejected: not owned by user"),
        ("mail", "550 Sender refused"),  # any 5xx to MAIL FROM: about us, whatever the code
        ("end", "554 5.7.1 Message rejected as spam"),
        ("end", "552 5.3.4 Message too big for system"),
    ],
)
def test_a_refused_sender_or_message_pauses_the_campaign(smtp_server: SMTPServer, where: str, reply: str):
    campaign, readers = start(3)
    if where == "mail":
        smtp_server.handler.mail_fault = reply
    else:
        for reader in readers:
            smtp_server.handler.data_faults[reader.email] = reply

    send_everything(campaign)

    assert smtp_server.handler.recipients() == []
    assert_paused_and_untouched(campaign, readers, reply.split()[0])


def test_a_refusal_of_the_mailbox_still_fails_and_suppresses_that_reader_alone(smtp_server: SMTPServer):
    campaign, (good, gone, moved) = start(3)
    smtp_server.handler.rcpt_faults[gone.email] = "550 5.1.1 No such user"
    smtp_server.handler.rcpt_faults[moved.email] = "550 5.2.1 Mailbox disabled"

    send_everything(campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    assert smtp_server.handler.recipients() == [good.email]
    for refused in (gone, moved):
        refused.refresh_from_db()
        assert refused.status == Subscriber.Status.BOUNCED
        assert campaign.deliveries.get(subscriber=refused).status == Delivery.Status.FAILED


def test_a_run_of_the_same_vague_refusal_pauses_the_campaign_without_failing_anyone(smtp_server, settings):
    """A 5xx without an enhanced code says nothing about the mailbox: the same one for
    NEWSLETTER_PAUSE_AFTER readers in a row pauses; those readers go back to pending."""
    settings.NEWSLETTER_PAUSE_AFTER = 3
    campaign, readers = start(6)
    smtp_server.handler.rcpt_fault_for_all = "550 Rejected"

    send_everything(campaign)

    assert smtp_server.handler.recipients() == []
    assert_paused_and_untouched(campaign, readers, "3 readers in a row")

    smtp_server.handler.rcpt_fault_for_all = None
    sending.resume_campaign(campaign=campaign)
    send_everything(campaign)
    assert Counter(smtp_server.handler.recipients()) == Counter(r.email for r in readers)


def test_a_vague_refusal_of_a_few_readers_fails_them_without_suppressing_them(smtp_server, settings):
    settings.NEWSLETTER_PAUSE_AFTER = 3
    campaign, readers = start(6)
    refused = [readers[1], readers[2], readers[4]]  # never three in a row
    for reader in refused:
        smtp_server.handler.rcpt_faults[reader.email] = "550 Rejected"

    send_everything(campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    assert sorted(smtp_server.handler.recipients()) == sorted(r.email for r in readers if r not in refused)
    for reader in refused:
        assert campaign.deliveries.get(subscriber=reader).status == Delivery.Status.FAILED
        reader.refresh_from_db()
        assert reader.status == Subscriber.Status.CONFIRMED


def test_a_refused_login_pauses_the_campaign(settings):
    from aiosmtpd.smtp import AuthResult

    server = SMTPServer()
    server.controller.SMTP_kwargs.update(
        authenticator=lambda *args: AuthResult(success=False, handled=False), auth_require_tls=False
    )
    server.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "newsletter", "a-wrong-password"
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        campaign, readers = start(2)

        send_everything(campaign)

        assert server.handler.recipients() == []
        assert_paused_and_untouched(campaign, readers, "535")
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (401, "Invalid private key"),
        (403, "Domain not allowed"),
        (422, "The sender signature is not confirmed"),
        (400, "from parameter is missing"),
    ],
)
def test_an_esp_refusing_our_account_pauses_the_campaign(mailgun_server, settings, status, message):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 5
    campaign, readers = start(4)
    mailgun_server.state.call_faults[1] = (status, message)

    send_everything(campaign)

    assert mailgun_server.state.recipients() == []
    assert_paused_and_untouched(campaign, readers, str(status))

    sending.resume_campaign(campaign=campaign)
    send_everything(campaign)
    assert Counter(mailgun_server.state.recipients()) == Counter(r.email for r in readers)


def test_an_esp_refusing_one_address_suppresses_that_reader_alone(mailgun_server, settings):
    settings.NEWSLETTER_ESP_BATCH_SIZE = 5
    campaign, readers = start(4)
    bad = readers[2]
    mailgun_server.state.invalid_addresses.add(bad.email)  # Mailgun: 400 "'to' parameter is not a valid address"

    send_everything(campaign)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED
    assert sorted(mailgun_server.state.recipients()) == sorted(r.email for r in readers if r != bad)
    bad.refresh_from_db()
    assert bad.status == Subscriber.Status.BOUNCED


def test_resuming_a_campaign_that_is_not_paused_is_refused(smtp_server):
    campaign, _ = start(1)
    with pytest.raises(sending.NotPaused, match="this one is sending"):
        sending.resume_campaign(campaign=campaign)


def test_a_pause_is_counted_in_the_metrics(client, smtp_server):
    campaign, _ = start(2)
    smtp_server.handler.rcpt_fault_for_all = "554 5.7.1 Relay access denied"

    def pauses() -> float:
        # Counters live for the whole test process, and SQLite reuses a rolled-back campaign's id.
        scraped = client.get("/metrics").content.decode()
        found = re.search(rf'^campaign_pauses_total{{campaign="{campaign.pk}"}} (\S+)$', scraped, re.MULTILINE)
        return float(found[1]) if found else 0.0

    before = pauses()
    send_everything(campaign)

    assert pauses() == before + 1


# --- What an editor sees and does --------------------------------------------------------


@pytest.fixture
def paused(smtp_server) -> Campaign:
    campaign, _ = start(3)
    smtp_server.handler.rcpt_fault_for_all = "554 5.7.1 Relay access denied"
    send_everything(campaign)
    smtp_server.handler.rcpt_fault_for_all = None
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED
    return campaign


def test_an_editor_sees_why_a_campaign_paused_and_resumes_it_from_its_page(client, eva, paused):
    client.force_login(eva)
    page = client.get(reverse("admin:newsletter_campaign_progress", args=[paused.pk])).content.decode()
    assert "Paused" in page
    assert "554 5.7.1 Relay access denied" in page
    resume = reverse("admin:newsletter_campaign_resume", args=[paused.pk])
    assert resume in page

    assert client.get(resume).status_code == 405
    answer = client.post(resume)

    assert answer.status_code == 302
    paused.refresh_from_db()
    assert paused.status == Campaign.Status.SENDING


def test_the_articles_newsletter_box_says_the_campaign_paused_and_why(client, eva, paused):
    client.force_login(eva)
    page = client.get(reverse("admin:articles_article_change", args=[paused.article_id])).content.decode()
    assert "Paused because" in page
    assert "554 5.7.1 Relay access denied" in page


def test_an_editor_resumes_paused_campaigns_with_the_list_action(client, eva, paused):
    client.force_login(eva)
    client.post(
        reverse("admin:newsletter_campaign_changelist"),
        {"action": "resume_campaigns", "_selected_action": [paused.pk]},
    )
    paused.refresh_from_db()
    assert paused.status == Campaign.Status.SENDING


def test_a_correspondent_cannot_resume_a_campaign(client, cora, paused):
    client.force_login(cora)
    assert client.post(reverse("admin:newsletter_campaign_resume", args=[paused.pk])).status_code == 403
    paused.refresh_from_db()
    assert paused.status == Campaign.Status.PAUSED


def test_the_api_shows_the_pause_and_resumes_it(eva, cora, paused):
    from rest_framework.test import APIClient

    editor, correspondent = APIClient(), APIClient()
    editor.force_authenticate(eva)
    correspondent.force_authenticate(cora)
    shown = editor.get(f"/api/v1/campaigns/{paused.pk}/").json()
    assert shown["status"] == "paused"
    assert "554 5.7.1" in shown["paused_reason"]

    assert correspondent.post(f"/api/v1/campaigns/{paused.pk}/resume/").status_code == 403
    answer = editor.post(f"/api/v1/campaigns/{paused.pk}/resume/")
    assert answer.status_code == 200
    assert answer.json()["status"] == "sending"

    again = editor.post(f"/api/v1/campaigns/{paused.pk}/resume/")
    assert again.status_code == 409
    assert again.json()["code"] == "not_paused"
    assert again.json()["detail"] == "Only a paused campaign can be resumed; this one is sending."
    assert editor.post("/api/v1/campaigns/999999/resume/").status_code == 404
