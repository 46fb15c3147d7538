"""What an editor sees and does in the admin while a campaign sends."""

import pytest
from django.urls import reverse

from newsletter import sending
from newsletter.models import Campaign, Delivery
from newsletter.sending import campaigns
from tests.support.factories import ArticleFactory, SubscriberFactory
from tests.support.smtp import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture
def editor(client, eva):
    """Eva, a member of Editors and not a superuser: the group's permissions are all she has."""
    assert not eva.is_superuser
    client.force_login(eva)
    return eva


@pytest.fixture
def campaign(monkeypatch):
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)
    article = ArticleFactory.create(title="Grid money, explained")
    for _ in range(4):
        SubscriberFactory.create()
    campaign = sending.start_campaign_for_article(article_id=article.pk)
    assert campaign is not None
    return campaign


def test_the_progress_page_shows_counts_and_errors(client, editor, campaign):
    first, second, *_ = campaign.deliveries.order_by("id")
    Delivery.objects.filter(pk=first.pk).update(status=Delivery.Status.SENT)
    Delivery.objects.filter(pk=second.pk).update(status=Delivery.Status.FAILED, last_error="550 5.1.1 No such user")

    page = client.get(reverse("admin:newsletter_campaign_progress", args=[campaign.pk]))
    assert page.status_code == 200
    assert "550 5.1.1 No such user" in page.content.decode()
    assert b"<progress" in page.content

    data = client.get(reverse("admin:newsletter_campaign_progress_json", args=[campaign.pk])).json()
    assert data["total"] == 4
    assert data["sent"] == 1
    assert data["failed"] == 1
    assert data["pending"] == 2
    assert data["percent"] == 50.0


def test_the_campaign_list_links_to_live_progress(client, editor, campaign):
    page = client.get(reverse("admin:newsletter_campaign_changelist"))
    assert reverse("admin:newsletter_campaign_progress", args=[campaign.pk]) in page.content.decode()


def test_an_editor_previews_the_email(client, editor, campaign):
    page = client.get(reverse("admin:newsletter_campaign_preview", args=[campaign.article_id]))
    assert page.status_code == 200
    assert "Grid money, explained" in page.content.decode()
    assert "/newsletter/unsubscribe/" in page.content.decode()


def test_an_editor_sends_a_test_to_themselves(client, editor, campaign, smtp_server):
    response = client.post(reverse("admin:newsletter_campaign_send_test", args=[campaign.article_id]))
    assert response.status_code == 302
    [message] = smtp_server.handler.to("eva@example.org")
    assert message["Subject"] == "Grid money, explained"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_an_editor_cancels_a_campaign(client, editor, campaign):
    client.post(
        reverse("admin:newsletter_campaign_changelist"),
        {"action": "cancel_campaigns", "_selected_action": [campaign.pk]},
    )
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert set(campaign.deliveries.values_list("status", flat=True)) == {Delivery.Status.SKIPPED}


def test_an_editor_retries_failed_deliveries(client, editor, campaign):
    campaign.deliveries.update(status=Delivery.Status.FAILED, attempts=6)
    client.post(
        reverse("admin:newsletter_campaign_changelist"),
        {"action": "retry_failed", "_selected_action": [campaign.pk]},
    )
    assert set(campaign.deliveries.values_list("status", "attempts")) == {(Delivery.Status.PENDING, 0)}


def test_a_test_email_the_relay_refuses_is_reported_not_a_server_error(client, editor, campaign, smtp_server):
    smtp_server.handler.rcpt_fault_for_all = "554 5.7.1 Relay access denied"
    response = client.post(reverse("admin:newsletter_campaign_send_test", args=[campaign.article_id]), follow=True)
    assert response.status_code == 200
    [notice] = [str(message) for message in response.context["messages"]]
    assert notice == (
        "The test email to eva@example.org was not sent: 554 5.7.1 Relay access denied. "
        "Check EMAIL_URL and the mail server's settings."
    )
    assert smtp_server.handler.messages == []


def test_a_test_email_with_the_relay_down_says_to_try_again(client, editor, campaign, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    response = client.post(reverse("admin:newsletter_campaign_send_test", args=[campaign.article_id]), follow=True)
    assert response.status_code == 200
    [notice] = [str(message) for message in response.context["messages"]]
    assert notice.startswith("The test email to eva@example.org was not sent: ")
    assert "Connection refused" in notice
    assert notice.endswith("Try again in a moment.")
