"""The ledger stays small: after NEWSLETTER_LEDGER_RETENTION_DAYS a finished campaign keeps its
counts and loses its per-reader rows, and every figure editors see stays the same."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from newsletter import compaction, selectors, sending, services, tasks
from newsletter.models import Campaign, Delivery, Subscriber
from tests.newsletter.test_article_admin import figures, newsletter_box
from tests.support.factories import CampaignFactory, DeliveryFactory, SubscriberFactory
from tests.support.workers import run_django_setup

pytestmark = pytest.mark.django_db

Status = Delivery.Status


def ended_campaign(days_ago: int, status: str = Campaign.Status.FINISHED, **per_status: int) -> Campaign:
    ended = timezone.now() - timedelta(days=days_ago)
    campaign = CampaignFactory.create(status=status, finished_at=ended if status == Campaign.Status.FINISHED else None)
    if status == Campaign.Status.CANCELLED:
        Campaign.objects.filter(pk=campaign.pk).update(cancelled_at=ended)
    for state, count in per_status.items():
        DeliveryFactory.create_batch(count, campaign=campaign, status=state)
    Campaign.objects.filter(pk=campaign.pk).update(recipients=sum(per_status.values()))
    campaign.refresh_from_db()
    return campaign


def everything_editors_see(client, api: APIClient, campaign: Campaign) -> dict[str, Any]:
    progress = client.get(reverse("admin:newsletter_campaign_progress_json", args=[campaign.pk])).json()
    progress.pop("rate_per_second")
    progress.pop("eta_seconds")
    api_figures = api.get(f"/api/v1/campaigns/{campaign.pk}/").json()
    listed = {row["id"]: row for row in api.get("/api/v1/campaigns/").json()["results"]}[campaign.pk]
    box = figures(newsletter_box(client.get(reverse("admin:articles_article_change", args=[campaign.article_id]))))
    return {"progress": progress, "api": api_figures, "api_list": listed, "article_box": box}


@pytest.fixture
def editor_clients(client, eva):
    client.force_login(eva)
    api = APIClient()
    api.force_authenticate(eva)
    return client, api


def rows(campaign: Campaign) -> int:
    return Delivery.objects.filter(campaign=campaign).count()


def test_a_campaign_past_retention_keeps_every_figure_and_loses_its_rows(editor_clients):
    client, api = editor_clients
    old = ended_campaign(91, sent=5, failed=2, skipped=1)
    before = everything_editors_see(client, api, old)
    assert before["api"]["sent"] == before["api_list"]["sent"] == before["progress"]["sent"] == 5
    assert before["article_box"]["Failed"] == "2", before["article_box"]

    tasks.compact_ledger()

    assert rows(old) == 0
    old.refresh_from_db()
    assert old.compacted_at is not None
    assert everything_editors_see(client, api, old) == before


def test_recent_and_unfinished_campaigns_keep_their_rows():
    recent = ended_campaign(89, sent=3)
    still_sending = ended_campaign(200, status=Campaign.Status.SENDING, sent=2, pending=1)
    finished_with_a_retry_left = ended_campaign(200, sent=2, retrying=1)

    assert compaction.compact_finished_campaigns() == 1  # only the last one is past retention and ended

    assert (rows(recent), rows(still_sending), rows(finished_with_a_retry_left)) == (3, 3, 3)
    finished_with_a_retry_left.refresh_from_db()
    assert finished_with_a_retry_left.compacted_at is None


def test_a_cancelled_campaign_is_compacted_from_when_it_was_cancelled():
    cancelled = ended_campaign(120, status=Campaign.Status.CANCELLED, sent=1, skipped=4)
    compaction.compact_finished_campaigns()
    cancelled.refresh_from_db()
    assert rows(cancelled) == 0
    assert selectors.campaign_totals(cancelled) == {
        "total": 5, "sent": 1, "pending": 0, "retrying": 0, "failed": 0, "skipped": 4
    }  # fmt: skip


def test_it_deletes_in_batches_and_an_interrupted_run_resumes_with_the_counts_it_froze(settings):
    settings.NEWSLETTER_LEDGER_COMPACT_BATCH = 2
    campaign = ended_campaign(100, sent=5, failed=2)
    assert compaction.store_counts(campaign_id=campaign.pk)  # a run that stopped right after counting
    campaign.refresh_from_db()
    frozen = selectors.campaign_totals(campaign)

    statements: list[str] = []

    def record(execute, sql, *args):
        statements.append(sql)
        return execute(sql, *args)

    with connection.execute_wrapper(record):
        compaction.compact_finished_campaigns()

    assert rows(campaign) == 0
    assert sum(sql.lstrip().upper().startswith("DELETE") for sql in statements) == 4  # 2 + 2 + 2 + 1 rows
    campaign.refresh_from_db()
    assert selectors.campaign_totals(campaign) == frozen == {
        "total": 7, "sent": 5, "pending": 0, "retrying": 0, "failed": 2, "skipped": 0
    }  # fmt: skip
    assert compaction.compact_finished_campaigns() == 0  # nothing left to do


def test_retrying_failed_deliveries_leaves_a_compacted_campaign_alone():
    campaign = ended_campaign(100, sent=1, failed=2)
    compaction.store_counts(campaign_id=campaign.pk)  # counted; rows not deleted yet
    assert sending.retry_failed_deliveries(campaign=campaign) == 0
    assert set(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True)) == {"sent", "failed"}
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.FINISHED


def test_retention_zero_keeps_every_row(settings):
    settings.NEWSLETTER_LEDGER_RETENTION_DAYS = 0
    old = ended_campaign(1000, sent=2)
    assert compaction.compact_finished_campaigns() == 0
    assert rows(old) == 2


def test_a_readers_export_and_erasure_stay_correct_after_compaction(editor_clients):
    client, api = editor_clients
    reader = SubscriberFactory.create(email="kept.reader@example.org", name="Kept Reader")
    old = ended_campaign(100, sent=2)
    recent = ended_campaign(5, sent=1)
    Delivery.objects.create(campaign=old, subscriber=reader, email=reader.email, status=Status.SENT)
    Delivery.objects.create(campaign=recent, subscriber=reader, email=reader.email, status=Status.SENT)
    before = everything_editors_see(client, api, old)
    compaction.compact_finished_campaigns()

    exported = services.export_subscriber_data(subscriber=reader)
    assert (exported["email"], exported["name"], exported["status"]) == (
        "kept.reader@example.org",
        "Kept Reader",
        "confirmed",
    )

    services.erase_subscriber(subscriber=reader, reason="erasure requested by the reader")
    assert not Subscriber.objects.filter(email="kept.reader@example.org").exists()
    assert not Delivery.objects.filter(email="kept.reader@example.org").exists()
    assert everything_editors_see(client, api, old) == before  # the frozen counts do not move


def test_beat_runs_the_compaction_hourly():
    entry = settings.CELERY_BEAT_SCHEDULE["newsletter-compact-ledger"]
    assert entry["task"] == "newsletter.tasks.compact_ledger"
    assert entry["schedule"] == 3600.0
    assert settings.NEWSLETTER_LEDGER_RETENTION_DAYS == 90


def test_a_negative_retention_stops_start_up():
    result = run_django_setup({"NEWSLETTER_LEDGER_RETENTION_DAYS": "-1"})
    assert result.returncode != 0
    assert "NEWSLETTER_LEDGER_RETENTION_DAYS must be 0 or more" in result.stderr
