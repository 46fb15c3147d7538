"""Campaign progress for editors: how many deliveries are sent, pending, failed and skipped."""

import pytest
from rest_framework.test import APIClient

from newsletter.models import Campaign, Delivery
from tests.support.factories import ArticleFactory, SubscriberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign():
    article = ArticleFactory.create(title="Grid talks", slug="grid-talks")
    campaign = Campaign.objects.create(article=article, status=Campaign.Status.SENDING, recipients=6)
    states = [
        Delivery.Status.SENT,
        Delivery.Status.SENT,
        Delivery.Status.PENDING,
        Delivery.Status.RETRYING,
        Delivery.Status.FAILED,
        Delivery.Status.SKIPPED,
    ]
    for state in states:
        reader = SubscriberFactory.create()
        Delivery.objects.create(campaign=campaign, subscriber=reader, email=reader.email, status=state)
    return campaign


def test_an_editor_sees_a_campaigns_progress(as_eva, campaign):
    body = as_eva.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    assert body["article"]["slug"] == "grid-talks"
    assert body["status"] == "sending"
    assert body["recipients"] == 6
    assert body["total"] == 6
    assert (body["sent"], body["pending"], body["retrying"], body["failed"], body["skipped"]) == (2, 1, 1, 1, 1)
    listed = as_eva.get("/api/v1/campaigns/").json()
    assert [c["id"] for c in listed["results"]] == [campaign.pk]


@pytest.mark.parametrize(("who", "expected"), [("anonymous", 401), ("as_cora", 403), ("as_eva", 200)])
def test_only_editors_watch_campaigns(request, campaign, who, expected):
    client: APIClient = request.getfixturevalue(who)
    assert client.get("/api/v1/campaigns/").status_code == expected
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/").status_code == expected


def test_campaigns_are_read_only(as_eva, campaign):
    assert as_eva.post("/api/v1/campaigns/", {}, format="json").status_code == 405
    assert as_eva.delete(f"/api/v1/campaigns/{campaign.pk}/").status_code == 405


@pytest.mark.parametrize(
    ("permission", "expected"), [("articles.publish_article", 403), ("newsletter.view_campaign", 200)]
)
def test_the_newsletters_view_permission_is_what_lets_staff_watch_campaigns(campaign, permission, expected):
    from django.contrib.auth.models import Permission, User

    app_label, codename = permission.split(".")
    staff = User.objects.create_user("pat", "pat@example.org", "pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    client = APIClient()
    client.force_authenticate(staff)
    assert client.get(f"/api/v1/campaigns/{campaign.pk}/").status_code == expected


def test_a_digest_shows_its_cadence_and_period_and_no_article(as_eva):
    from django.utils import timezone

    now = timezone.now()
    digest = Campaign.objects.create(digest="weekly", period_key=now, period_start=now, period_end=now)
    body = as_eva.get(f"/api/v1/campaigns/{digest.pk}/").json()
    assert body["article"] is None
    assert body["digest"] == "weekly"
    assert body["period_end"] is not None
