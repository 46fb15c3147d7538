"""What the admin's home page shows about the newsletter: the last campaigns and the readers' growth.

Reads only. The campaigns' figures come from ``selectors.with_totals`` (the same
counts as everywhere else); the page refreshes those still sending from the
campaign's progress JSON (newsletter/static/newsletter/dashboard.js).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from newsletter.models import Campaign, Subscriber
from newsletter.selectors import with_totals

RECENT_CAMPAIGNS = 5
GROWTH_DAYS = 30
# The chart's drawing box (SVG user units); the page scales it to its column.
CHART_WIDTH, CHART_HEIGHT = 300, 100


@dataclass
class Day:
    day: date
    new: int  # readers who confirmed that day
    total: int  # confirmed readers at the end of that day (of those still confirmed today)
    x: float
    bar_y: float
    bar_height: float
    line_y: float


@dataclass
class Growth:
    days: list[Day]
    bar_width: float
    line_points: str  # for <polyline points="...">
    total: int
    new_in_period: int


@dataclass
class Overview:
    campaigns: list[Campaign]
    growth: Growth
    signups_today: int  # new sign-ups today, confirmed or not
    confirmed_today: int


def overview() -> Overview:
    today = timezone.localdate()
    start_of_today = datetime.combine(today, time.min, tzinfo=timezone.get_current_timezone())
    return Overview(
        campaigns=recent_campaigns(),
        growth=growth(),
        signups_today=Subscriber.objects.filter(created_at__gte=start_of_today).count(),
        confirmed_today=Subscriber.objects.confirmed().filter(confirmed_at__gte=start_of_today).count(),
    )


def recent_campaigns(limit: int = RECENT_CAMPAIGNS) -> list[Campaign]:
    """The last campaigns started (articles and digests), each with ``total``, ``sent``, ``failed``…"""
    campaigns = Campaign.objects.select_related("article").order_by("-created_at", "-pk")
    return list(with_totals(campaigns)[:limit])


def growth(days: int = GROWTH_DAYS) -> Growth:
    """Confirmed readers per day over the last ``days`` days, with the running total, laid out for an SVG."""
    today = timezone.localdate()
    first_day = today - timedelta(days=days - 1)
    first = datetime.combine(first_day, time.min, tzinfo=timezone.get_current_timezone())
    confirmed = Subscriber.objects.confirmed()
    running = confirmed.filter(confirmed_at__lt=first).count()
    per_day = dict(
        confirmed.filter(confirmed_at__gte=first)
        .annotate(day=TruncDate("confirmed_at", tzinfo=timezone.get_current_timezone()))
        .values_list("day")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts = []
    for index in range(days):
        day = first_day + timedelta(days=index)
        running += per_day.get(day, 0)
        counts.append((day, per_day.get(day, 0), running))
    most_new = max((new for _, new, _ in counts), default=0) or 1
    lowest, highest = counts[0][2] - counts[0][1], counts[-1][2]
    spread = (highest - lowest) or 1
    step = CHART_WIDTH / days
    laid_out = []
    for index, (day, new, total) in enumerate(counts):
        bar_height = round(0.4 * CHART_HEIGHT * new / most_new, 2)
        laid_out.append(
            Day(
                day=day,
                new=new,
                total=total,
                x=round(index * step, 2),
                bar_y=round(CHART_HEIGHT - bar_height, 2),
                bar_height=bar_height,
                line_y=round(CHART_HEIGHT - 5 - (CHART_HEIGHT - 10) * (total - lowest) / spread, 2),
            )
        )
    points = " ".join(f"{day.x + step / 2:.2f},{day.line_y}" for day in laid_out)
    return Growth(
        days=laid_out,
        bar_width=round(step * 0.7, 2),
        line_points=points,
        total=highest,
        new_in_period=sum(new for _, new, _ in counts),
    )
