"""What outlives the raw events: roll-up into counts, outcomes attributed to a campaign,
and forgetting a reader.

``roll_up`` (a beat task, hourly) turns click events older than
``ANALYTICS_RETENTION_DAYS`` into ``EngagementCount`` rows (per hour during a campaign's
first 72 hours, per day after) and deletes them; every figure stays the same.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from newsletter.engagement.models import ClickEvent, EngagementCount, ReaderClick
from newsletter.engagement.tokens import pseudonym
from newsletter.models import Campaign, Delivery

logger = logging.getLogger("newsletter.engagement")
Metric = EngagementCount.Metric
CHART_HOURS = 72


def campaign_start(campaign: Campaign) -> datetime:
    return campaign.planned_at or campaign.created_at


def period_of(at: datetime, start: datetime) -> datetime:
    """The hour (in the campaign's first 72 hours) or the day (after) that ``at`` is counted in."""
    if start <= at < start + timedelta(hours=CHART_HOURS):
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def metrics_of(kind: str, first_for_link: bool, first_for_reader: bool, to_article: bool) -> list[str]:
    """The counts one click event adds to (the same whether it is raw or rolled up)."""
    if kind == ClickEvent.Kind.SCANNER:
        return [Metric.SCANNER]
    if kind == ClickEvent.Kind.OPEN:
        return [Metric.OPENS] if first_for_link else []
    counted: list[str] = [Metric.CLICKS if first_for_link else Metric.REPEATS]
    if first_for_reader:
        counted.append(Metric.CLICKERS)
    if to_article:
        counted.append(Metric.WEB_VISITS)
    return counted


def roll_up(*, now: datetime | None = None, batch_size: int = 10_000) -> int:
    """Roll up and delete the raw events past retention, in batches; returns how many went."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.ANALYTICS_RETENTION_DAYS)
    total = 0
    while True:
        with transaction.atomic():
            old = list(
                ClickEvent.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(at__lt=cutoff)
                .order_by("id")
                .values_list(
                    "id", "campaign_id", "link_id", "at", "kind", "first_for_link", "first_for_reader", "link__article"
                )[:batch_size]
            )
            if not old:
                return total
            starts = {pk: campaign_start(c) for pk, c in Campaign.objects.in_bulk({row[1] for row in old}).items()}
            counts: Counter[tuple[int, int | None, datetime, str]] = Counter()
            for _, campaign_id, link_id, at, kind, first_link, first_reader, article in old:
                period = period_of(at, starts[campaign_id])
                for metric in metrics_of(kind, first_link, first_reader, article is not None):
                    counts[(campaign_id, link_id, period, metric)] += 1
            EngagementCount.objects.bulk_create(
                EngagementCount(campaign_id=c, link_id=link, period=period, metric=metric, count=n)
                for (c, link, period, metric), n in counts.items()
            )
            ClickEvent.objects.filter(id__in=[row[0] for row in old]).delete()
        total += len(old)
        logger.info("event=engagement_rolled_up events=%s", len(old))


def record_outcome(*, subscriber_id: int, metric: str) -> Campaign | None:
    """Count an unsubscribe, bounce or complaint for the campaign whose message led to it.

    The unsubscribe link and the providers' reports name the reader, not the message; we
    take the reader's latest message (sent or failed): readers act on the email they
    have just received, and a bounce or complaint follows the latest send.
    """
    latest = (
        Delivery.objects.filter(subscriber_id=subscriber_id, status__in=[Delivery.Status.SENT, Delivery.Status.FAILED])
        .order_by("-updated_at")
        .select_related("campaign")
        .first()
    )
    if latest is None:
        return None
    now = timezone.now()
    EngagementCount.objects.create(
        campaign=latest.campaign, period=period_of(now, campaign_start(latest.campaign)), metric=metric, count=1
    )
    return latest.campaign


def forget_reader(*, subscriber_id: int) -> None:
    """Erasure: delete the reader's own clicks and unlink their raw events from them
    (the campaign's totals stay; no event can be tied to the reader any more)."""
    ReaderClick.objects.filter(subscriber_id=subscriber_id).delete()
    campaigns = set(ClickEvent.objects.values_list("campaign_id", flat=True).distinct())
    names = [pseudonym(campaign_id, subscriber_id) for campaign_id in campaigns]
    if names:
        ClickEvent.objects.filter(reader__in=names).update(reader="")
