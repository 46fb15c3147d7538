"""The ledger stays small: finished campaigns keep their counts, not their per-reader rows.

Every campaign adds one Delivery row per reader. Once a campaign has finished (or was
cancelled) and is older than ``NEWSLETTER_LEDGER_RETENTION_DAYS``, ``compact_campaign``
stores its counts by state on the Campaign (``compacted_*``) and deletes its rows in
batches of ``NEWSLETTER_LEDGER_COMPACT_BATCH``, each batch its own short transaction, so
no lock is held for long. Every figure editors see (admin, article box, API) reads
``newsletter.selectors`` (``campaign_totals``, ``with_totals``), which take the stored counts for a compacted
campaign and count the rows otherwise.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from newsletter.models import Campaign, Delivery
from newsletter.selectors import STORED

logger = logging.getLogger(__name__)

DONE = (Campaign.Status.FINISHED, Campaign.Status.CANCELLED)


def compactable(now: datetime | None = None) -> QuerySet[Campaign]:
    """Finished or cancelled campaigns past the retention period whose rows are not all gone yet."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.NEWSLETTER_LEDGER_RETENTION_DAYS)
    ended = Q(status=Campaign.Status.FINISHED, finished_at__lt=cutoff) | Q(
        status=Campaign.Status.CANCELLED, cancelled_at__lt=cutoff
    )
    # A compacted campaign stays listed until its last row is deleted (an interrupted run resumes).
    rows_left = Exists(Delivery.objects.filter(campaign=OuterRef("pk")))
    return Campaign.objects.filter(ended).filter(Q(compacted_at__isnull=True) | rows_left).order_by("pk")


def store_counts(*, campaign_id: int) -> bool:
    """Freeze the campaign's counts on it; False when it still has unfinished deliveries.

    Holds the campaign's row lock while counting: ``retry_failed_deliveries`` takes the
    same lock and leaves a compacted campaign alone, so no row changes state once counted.
    """
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.compacted_at is not None:
            return True
        if campaign.status not in DONE or campaign.deliveries.unfinished().exists():
            return False
        totals = campaign.deliveries.totals()
        campaign.compacted_total = totals["total"]
        campaign.compacted_sent = totals["sent"]
        campaign.compacted_failed = totals["failed"]
        campaign.compacted_skipped = totals["skipped"]
        campaign.compacted_at = timezone.now()
        campaign.save(update_fields=["compacted_at", *STORED.values()])
    return True


def compact_campaign(*, campaign_id: int, batch_size: int | None = None) -> int:
    """Store the campaign's counts, then delete its ledger rows in batches; returns rows deleted."""
    if not store_counts(campaign_id=campaign_id):
        return 0
    size = batch_size or settings.NEWSLETTER_LEDGER_COMPACT_BATCH
    finished = [Delivery.Status.SENT, Delivery.Status.FAILED, Delivery.Status.SKIPPED]
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                Delivery.objects.filter(campaign_id=campaign_id, status__in=finished)
                .order_by()
                .values_list("pk", flat=True)[:size]
            )
            if not ids:
                break
            count, _ = Delivery.objects.filter(pk__in=ids).delete()
        deleted += count
    logger.info("campaign=%s event=ledger_compacted deleted=%s", campaign_id, deleted)
    return deleted


def compact_finished_campaigns(*, now: datetime | None = None) -> int:
    """Compact every campaign past the retention period; returns how many were compacted."""
    if settings.NEWSLETTER_LEDGER_RETENTION_DAYS <= 0:
        return 0
    campaign_ids = list(compactable(now).values_list("pk", flat=True))
    for campaign_id in campaign_ids:
        compact_campaign(campaign_id=campaign_id)
    return len(campaign_ids)
