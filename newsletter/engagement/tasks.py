"""Beat tasks of the engagement figures."""

from __future__ import annotations

from celery import shared_task

from newsletter.engagement import events, rollup


@shared_task(ignore_result=True)
def flush_engagement_events() -> None:
    """Beat, every NEWSLETTER_ENGAGEMENT_FLUSH_INTERVAL seconds: Redis events into PostgreSQL."""
    for _ in range(20):  # a full batch leaves more behind it
        if events.flush_events(batch_size=5000) < 2500:
            break


@shared_task(ignore_result=True)
def roll_up_engagement() -> None:
    """Beat, hourly: raw events past ANALYTICS_RETENTION_DAYS become counts and are deleted."""
    rollup.roll_up()
