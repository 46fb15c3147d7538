"""Reads: a campaign's engagement figures, the same for the admin, the article's box and the API.

Each figure is the raw events of the last ``ANALYTICS_RETENTION_DAYS`` plus the counts
rolled up from older ones (``rollup.metrics_of`` says what each event adds to).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Sum

from newsletter.engagement.models import CampaignLink, ClickEvent, EngagementCount
from newsletter.engagement.rollup import CHART_HOURS, campaign_start, metrics_of
from newsletter.models import Campaign
from newsletter.selectors import campaign_totals

Metric = EngagementCount.Metric
TOP_LINKS = 10


def _counts_by_link(campaign: Campaign) -> dict[int | None, Counter[str]]:
    """Every metric per link (None: the campaign's own, such as unsubscribes)."""
    counts: dict[int | None, Counter[str]] = defaultdict(Counter)
    raw = (
        ClickEvent.objects.filter(campaign=campaign)
        .values("link_id", "kind", "first_for_link", "first_for_reader")
        .annotate(n=Count("id"), to_article=Count("link__article"))
    )
    for row in raw:
        for metric in metrics_of(row["kind"], row["first_for_link"], row["first_for_reader"], False):
            counts[row["link_id"]][metric] += row["n"]
        if row["kind"] == ClickEvent.Kind.HUMAN and row["to_article"]:
            counts[row["link_id"]][Metric.WEB_VISITS] += row["to_article"]
    rolled = EngagementCount.objects.filter(campaign=campaign).values("link_id", "metric").annotate(n=Sum("count"))
    for row in rolled:
        counts[row["link_id"]][row["metric"]] += row["n"]
    return counts


def campaign_figures(campaign: Campaign) -> dict[str, Any]:
    """The campaign's figures, JSON-ready (the API's stats answer)."""
    by_link = _counts_by_link(campaign)
    total: Counter[str] = Counter()
    for counts in by_link.values():
        total.update(counts)
    delivered = campaign_totals(campaign)["sent"]
    urls = dict(CampaignLink.objects.filter(campaign=campaign, kind=CampaignLink.Kind.LINK).values_list("id", "url"))
    ranked = sorted(urls, key=lambda pk: (-by_link[pk][Metric.CLICKS], -by_link[pk][Metric.SCANNER], urls[pk]))
    top = [
        {"url": urls[pk], "human_clicks": by_link[pk][Metric.CLICKS], "scanner_hits": by_link[pk][Metric.SCANNER]}
        for pk in ranked[:TOP_LINKS]
    ]
    figures: dict[str, Any] = {
        "campaign": campaign.pk,
        "title": campaign.title,
        "delivered": delivered,
        "human_clicks": total[Metric.CLICKS],
        "clicking_readers": total[Metric.CLICKERS],
        "click_rate": round(total[Metric.CLICKERS] / delivered, 4) if delivered else None,
        "repeat_clicks": total[Metric.REPEATS],
        "scanner_hits": total[Metric.SCANNER],
        "unsubscribes": total[Metric.UNSUBSCRIBES],
        "bounces": total[Metric.BOUNCES],
        "complaints": total[Metric.COMPLAINTS],
        "web_visits": total[Metric.WEB_VISITS],
        "opens": total[Metric.OPENS] if settings.NEWSLETTER_TRACK_OPENS else None,
        "top_links": top,
        "clicks_by_hour": clicks_by_hour(campaign),
    }
    return figures


def clicks_by_hour(campaign: Campaign) -> list[int]:
    """Human clicks (once per reader and link) in each of the campaign's first 72 hours."""
    start = campaign_start(campaign)
    hours = [0] * CHART_HOURS
    raw = ClickEvent.objects.filter(
        campaign=campaign,
        kind=ClickEvent.Kind.HUMAN,
        first_for_link=True,
        at__gte=start,
        at__lt=start + timedelta(hours=CHART_HOURS),
    ).values_list("at", flat=True)
    for at in raw:
        hours[int((at - start).total_seconds() // 3600)] += 1
    rolled = EngagementCount.objects.filter(
        campaign=campaign,
        metric=Metric.CLICKS,
        period__gte=start - timedelta(hours=1),
        period__lt=start + timedelta(hours=CHART_HOURS),
    ).values_list("period", "count")
    for period, count in rolled:
        hours[max(0, int((period - start).total_seconds() // 3600))] += count
    return hours


def recent_campaigns(limit: int = 30) -> list[dict[str, Any]]:
    """The latest finished or sending campaigns with their headline figures, newest first."""
    campaigns = (
        Campaign.objects.exclude(status=Campaign.Status.PLANNING)
        .select_related("article")
        .prefetch_related("article__article_topics__topic")
        .order_by("-created_at")[:limit]
    )
    rows = []
    for campaign in campaigns:
        figures = campaign_figures(campaign)
        topics = (
            [link.topic.name for link in campaign.article.article_topics.all()] if campaign.article else ["Digests"]
        )
        rows.append({"campaign": campaign, "figures": figures, "topics": topics})
    return rows


def click_rate_by_topic(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Over the given campaigns: per topic, readers who clicked / messages delivered."""
    delivered: Counter[str] = Counter()
    clickers: Counter[str] = Counter()
    campaigns: Counter[str] = Counter()
    for row in rows:
        for topic in row["topics"]:
            delivered[topic] += row["figures"]["delivered"]
            clickers[topic] += row["figures"]["clicking_readers"]
            campaigns[topic] += 1
    return sorted(
        (
            {
                "topic": topic,
                "campaigns": campaigns[topic],
                "delivered": delivered[topic],
                "clicking_readers": clickers[topic],
                "click_rate": round(clickers[topic] / delivered[topic], 4) if delivered[topic] else None,
            }
            for topic in campaigns
        ),
        key=lambda row: (-(row["click_rate"] or 0), str(row["topic"])),
    )


def reader_clicks(subscriber_id: int) -> list[dict[str, Any]]:
    """A reader's own clicks (kept only with NEWSLETTER_PER_READER_STATS), for their export."""
    from newsletter.engagement.models import ReaderClick

    return [
        {"at": at.isoformat(), "campaign": str(campaign), "url": url}
        for at, campaign, url in ReaderClick.objects.filter(subscriber_id=subscriber_id)
        .select_related("campaign", "link")
        .values_list("at", "campaign_id", "link__url")
    ]
