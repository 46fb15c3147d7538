"""Who may run the newsletter in the admin: each role against each newsletter page and action.

Editors (not superusers: the group's permissions are all they have) do everything here;
Authors and staff without a role get 403 and change nothing.
"""

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.roles import EDITOR_PERMISSIONS, grant_editor_permissions
from newsletter.sending import campaigns
from tests.support.factories import CampaignFactory, DeliveryFactory, SubscriberFactory, UserFactory

ROLES = ["editor", "author", "staff_without_role"]


def newsletter_permissions(*codenames):
    return Permission.objects.filter(content_type__app_label="newsletter", codename__in=codenames)


def campaign_action(name, campaign):
    return "post", reverse("admin:newsletter_campaign_changelist"), {"action": name, "_selected_action": [campaign.pk]}


def request_for(action, campaign, reader):
    """The request (method, URL, POST data) that asks for ``action``."""
    progress = reverse("admin:newsletter_campaign_progress", args=[campaign.pk])
    subscribers = reverse("admin:newsletter_subscriber_changelist")
    return {
        "campaign_list": ("get", reverse("admin:newsletter_campaign_changelist"), None),
        "campaign_page": ("get", reverse("admin:newsletter_campaign_change", args=[campaign.pk]), None),
        "progress_page": ("get", progress, None),
        "progress_json": ("get", reverse("admin:newsletter_campaign_progress_json", args=[campaign.pk]), None),
        "preview": ("get", reverse("admin:newsletter_campaign_preview", args=[campaign.article_id]), None),
        "send_test": (
            "post",
            reverse("admin:newsletter_campaign_send_test", args=[campaign.article_id]),
            {"next": progress},
        ),
        "cancel": campaign_action("cancel_campaigns", campaign),
        "retry": campaign_action("retry_failed", campaign),
        "delivery_list": ("get", reverse("admin:newsletter_delivery_changelist"), None),
        "subscriber_list": ("get", subscribers, None),
        "subscriber_import": ("get", reverse("admin:newsletter_subscriber_import"), None),
        "subscriber_export": ("post", subscribers, {"action": "export_csv", "_selected_action": [reader.pk]}),
        "suppression_list": ("get", reverse("admin:newsletter_suppression_changelist"), None),
    }[action]


# action: the status an editor gets (the others get 403)
EDITOR_GETS = {
    "campaign_list": 200, "campaign_page": 200, "progress_page": 200, "progress_json": 200, "preview": 200,
    "send_test": 302, "cancel": 302, "retry": 302, "delivery_list": 200,
    "subscriber_list": 200, "subscriber_import": 200, "subscriber_export": 200, "suppression_list": 200,
}  # fmt: skip


@pytest.fixture
def campaign(db, monkeypatch):
    monkeypatch.setattr(campaigns, "launch_batches", lambda *, campaign_id: None)
    campaign = CampaignFactory.create(article__title="Grid money, explained", recipients=2)
    DeliveryFactory.create(campaign=campaign, status=Delivery.Status.PENDING)
    DeliveryFactory.create(campaign=campaign, status=Delivery.Status.FAILED, attempts=6, last_error="451 later")
    return campaign


def ledger(campaign):
    return sorted(campaign.deliveries.values_list("status", "attempts"))


def assert_editor_got(action, response, campaign, smtp_server):
    """What an editor sees or causes for each page and action, beyond its status code."""
    page = (b"".join(response.streaming_content) if response.streaming else response.content).decode()
    if action in {"campaign_list", "campaign_page", "progress_page", "preview"}:
        assert "Grid money, explained" in page
    elif action == "progress_json":
        body = response.json()
        assert (body["status"], body["pending"], body["failed"]) == (Campaign.Status.SENDING, 1, 1)
    elif action == "send_test":
        assert smtp_server.handler.recipients() == ["eva@example.org"]
    elif action == "cancel":
        assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.CANCELLED
        assert ledger(campaign) == [(Delivery.Status.FAILED, 6), (Delivery.Status.SKIPPED, 0)]
    elif action == "retry":
        assert ledger(campaign) == [(Delivery.Status.PENDING, 0), (Delivery.Status.PENDING, 0)]
    elif action == "delivery_list":
        assert all(email in page for email in campaign.deliveries.values_list("email", flat=True))
    elif action in {"subscriber_list", "subscriber_export"}:
        assert "reader@example.org" in page
    elif action == "subscriber_import":
        assert 'type="file"' in page
    else:
        assert action == "suppression_list"
        assert "suppression" in page.lower()
    if action != "send_test":
        assert smtp_server.handler.recipients() == []


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("action", list(EDITOR_GETS))
def test_newsletter_admin_matrix(client, action, role, campaign, eva, cora, smtp_server):
    users = {"editor": eva, "author": cora, "staff_without_role": UserFactory.create(email="staff@example.org")}
    reader = SubscriberFactory.create(email="reader@example.org")
    method, url, data = request_for(action, campaign, reader)
    campaign_before = Campaign.objects.values().get(pk=campaign.pk)
    ledger_before = ledger(campaign)
    client.force_login(users[role])

    response = client.post(url, data) if method == "post" else client.get(url)

    if role == "editor":
        assert response.status_code == EDITOR_GETS[action]
        assert_editor_got(action, response, campaign, smtp_server)
        return
    assert response.status_code == 403
    assert Campaign.objects.values().get(pk=campaign.pk) == campaign_before
    assert ledger(campaign) == ledger_before
    assert smtp_server.handler.recipients() == []
    assert b"reader@example.org" not in response.content


@pytest.fixture
def watcher(db):
    """Staff who may look at campaigns and their ledger, nothing more."""
    user = UserFactory.create(username="wanda", email="wanda@example.org")
    user.user_permissions.add(*newsletter_permissions("view_campaign", "view_delivery"))
    return user


def test_a_user_who_may_only_view_campaigns_watches_but_cannot_act(client, watcher, campaign, smtp_server):
    client.force_login(watcher)
    progress = client.get(reverse("admin:newsletter_campaign_progress", args=[campaign.pk]))
    assert progress.status_code == 200
    assert b"Send a test to me" not in progress.content
    assert b"All deliveries" in progress.content
    assert client.get(reverse("admin:newsletter_campaign_preview", args=[campaign.article_id])).status_code == 200
    campaign_list = client.get(reverse("admin:newsletter_campaign_changelist")).content.decode()
    assert "cancel_campaigns" not in campaign_list
    assert "retry_failed" not in campaign_list

    send_test = client.post(reverse("admin:newsletter_campaign_send_test", args=[campaign.article_id]))
    client.post(*campaign_action("cancel_campaigns", campaign)[1:])
    client.post(*campaign_action("retry_failed", campaign)[1:])

    assert send_test.status_code == 403
    assert smtp_server.handler.recipients() == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    assert ledger(campaign) == [(Delivery.Status.FAILED, 6), (Delivery.Status.PENDING, 0)]


def test_a_user_who_may_only_view_subscribers_exports_but_cannot_import_change_or_erase(client, db):
    viewer = UserFactory.create()
    viewer.user_permissions.add(*newsletter_permissions("view_subscriber"))
    reader = SubscriberFactory.create(email="reader@example.org", status=Subscriber.Status.BOUNCED)
    client.force_login(viewer)
    url = reverse("admin:newsletter_subscriber_changelist")

    page = client.get(url).content.decode()
    assert 'value="export_csv"' in page
    assert 'value="undo_suppression"' not in page
    assert 'value="erase"' not in page
    assert "Import CSV" not in page
    assert client.get(reverse("admin:newsletter_subscriber_import")).status_code == 403
    client.post(url, {"action": "undo_suppression", "_selected_action": [reader.pk]})
    client.post(url, {"action": "erase", "_selected_action": [reader.pk], "confirm_erase": "yes"})

    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.BOUNCED


def test_editors_have_the_newsletter_permissions_and_authors_none(db):
    def group_permissions(group_name):
        return set(
            Group.objects.get(name=group_name)
            .permissions.filter(content_type__app_label="newsletter")
            .values_list("codename", flat=True)
        )

    assert group_permissions("Editors") == set(EDITOR_PERMISSIONS)
    assert group_permissions("Authors") == set()
    grant_editor_permissions()
    assert group_permissions("Editors") == set(EDITOR_PERMISSIONS)


@pytest.mark.django_db(transaction=True)
def test_the_migration_grants_the_permissions_and_takes_them_back():
    def editors_may_view_campaigns():
        return Group.objects.filter(
            name="Editors", permissions__content_type__app_label="newsletter", permissions__codename="view_campaign"
        ).exists()

    grant_editor_permissions()  # what the migration left, before an earlier test flushed the tables
    executor = MigrationExecutor(connection)
    try:
        executor.migrate([("newsletter", "0003_merge_20261128_0607")])
        assert Group.objects.filter(name="Editors").exists()
        assert not editors_may_view_campaigns()

        executor = MigrationExecutor(connection)
        executor.migrate([("newsletter", "0004_editor_permissions")])
        assert editors_may_view_campaigns()
    finally:
        # Later tests need every later migration's tables and columns back.
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
