"""Engagement figures in admin pages: ``{% campaign_figures campaign %}`` on the campaign's
page, ``{% headline_figures campaign %}`` in the article's Newsletter box."""

from __future__ import annotations

from typing import Any

from django import template
from django.conf import settings

from newsletter.engagement.figures import campaign_figures as figures_of
from newsletter.models import Campaign

register = template.Library()

CHART_WIDTH, CHART_HEIGHT, BAR = 576, 120, 8


def chart_bars(hours: list[int]) -> list[dict[str, Any]]:
    """One bar per hour, scaled to the busiest hour, for a server-rendered SVG."""
    peak = max(hours) or 1
    bars = []
    for hour, count in enumerate(hours):
        height = round(CHART_HEIGHT * count / peak)
        bars.append({"hour": hour, "count": count, "x": hour * BAR, "y": CHART_HEIGHT - height, "height": height})
    return bars


@register.inclusion_tag("admin/newsletter/engagement/campaign_figures.html")
def campaign_figures(campaign: Campaign) -> dict[str, Any]:
    figures = figures_of(campaign)
    return {
        "figures": figures,
        "bars": chart_bars(figures["clicks_by_hour"]),
        "chart_width": CHART_WIDTH,
        "chart_height": CHART_HEIGHT,
        "bar_width": BAR - 1,
        "track_opens": settings.NEWSLETTER_TRACK_OPENS,
        "retention_days": settings.ANALYTICS_RETENTION_DAYS,
    }


@register.inclusion_tag("admin/newsletter/engagement/headline_figures.html")
def headline_figures(campaign: Campaign) -> dict[str, Any]:
    return {"figures": figures_of(campaign), "campaign": campaign}


@register.filter
def percent(value: float | None) -> str:
    return "\u2013" if value is None else f"{value:.1%}"
