"""Reads of the newsletter app that more than one screen shows: figures for editors."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.db import models
from django.db.models import Case, Count, F, Q, QuerySet, When
from django.db.models.functions import TruncWeek
from django.utils import timezone

from newsletter.models import Campaign, Delivery, Subscriber

CHART_WEEKS = 12
# What a compacted campaign keeps of its figures (newsletter.compaction), in its own fields.
STORED = {
    "total": "compacted_total",
    "sent": "compacted_sent",
    "failed": "compacted_failed",
    "skipped": "compacted_skipped",
}


def campaign_totals(campaign: Campaign) -> dict[str, int]:
    """Deliveries by state (``total``, ``sent``, ``pending``, ``retrying``, ``failed``, ``skipped``)."""
    if campaign.compacted_at is not None:
        return {
            "total": campaign.compacted_total,
            "sent": campaign.compacted_sent,
            "pending": 0,
            "retrying": 0,
            "failed": campaign.compacted_failed,
            "skipped": campaign.compacted_skipped,
        }
    return campaign.deliveries.totals()


def with_totals(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """The campaigns annotated with ``campaign_totals``' figures, in one query."""

    def figure(name: str) -> Case:
        counted = (
            Count("deliveries", filter=Q(deliveries__status__in=Delivery.TOTALS[name]))
            if name in Delivery.TOTALS
            else None
        )
        stored = F(STORED[name]) if name in STORED else models.Value(0)
        return Case(
            When(compacted_at__isnull=False, then=stored),
            default=counted or Count("deliveries"),
            output_field=models.IntegerField(),
        )

    return campaigns.annotate(**{name: figure(name) for name in ["total", *Delivery.TOTALS]})


def campaign_progress(campaign: Campaign) -> dict[str, Any]:
    """Counts by state, rate over the last minute and an ETA; JSON-ready."""
    totals = campaign_totals(campaign)
    total = totals["total"]
    waiting = totals["pending"] + totals["retrying"]
    now = timezone.now()
    recent = campaign.deliveries.filter(status=Delivery.Status.SENT, sent_at__gte=now - timedelta(seconds=60)).count()
    rate = recent / 60
    return {
        "status": campaign.status,
        "status_display": campaign.get_status_display(),
        "paused_reason": campaign.paused_reason if campaign.status == Campaign.Status.PAUSED else "",
        **totals,
        "percent": round(100 * (total - waiting) / total, 1) if total else 100.0,
        "rate_per_second": round(rate, 1),
        "eta_seconds": round(waiting / rate) if rate and waiting else None,
    }


def confirmed_by_week(weeks: int = CHART_WEEKS) -> list[dict[str, Any]]:
    """Today's confirmed subscribers counted by the week they confirmed in, as a running total."""
    today = timezone.localdate()
    first_week = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    first = datetime.combine(first_week, time.min, tzinfo=timezone.get_current_timezone())
    confirmed = Subscriber.objects.confirmed()
    running = confirmed.filter(confirmed_at__lt=first).count()
    per_week = {
        row["week"].date(): row["count"]
        for row in confirmed.filter(confirmed_at__gte=first)
        .annotate(week=TruncWeek("confirmed_at"))
        .values("week")
        .annotate(count=Count("id"))
        .order_by()
    }
    bars: list[dict[str, Any]] = []
    for index in range(weeks):
        week = first_week + timedelta(weeks=index)
        running += per_week.get(week, 0)
        bars.append({"week": week, "total": running, "x": index * 30})
    tallest = max((bar["total"] for bar in bars), default=0) or 1
    for bar in bars:
        bar["height"] = round(100 * bar["total"] / tallest)
        bar["y"] = 100 - bar["height"]
    return bars
