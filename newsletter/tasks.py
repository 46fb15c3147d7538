"""Celery tasks of the newsletter app. Each takes ids, re-reads its rows and
exits early when there is nothing (left) to do."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from euro_prospects.celery import longest_countdown
from euro_prospects.emails import retried_when_transient
from newsletter import compaction, emails, imports, sending
from newsletter.engagement.tasks import flush_engagement_events, roll_up_engagement  # noqa: F401 (for the worker)
from newsletter.models import Subscriber
from newsletter.services import export_subscriber_data, queue_unsent_confirmations

# The emails a reader asked for are tried again while the mail server says "later"
# (euro_prospects.emails.retried_when_transient): a relay down for a minute must not
# leave a sign-up without its confirmation.


@shared_task(bind=True)
def send_confirmation_email(self: Task[Any, Any], subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.PENDING).first()
    if subscriber is not None:
        with retried_when_transient(self):
            emails.send_confirmation(subscriber)


@shared_task(bind=True)
def send_confirmation_emails(self: Task[Any, Any], subscriber_ids: list[int]) -> None:
    """Confirmation emails for a batch of imported subscribers; when the server says
    "later", the ones not sent yet are tried again, not the whole batch."""
    pending = list(Subscriber.objects.filter(pk__in=subscriber_ids, status=Subscriber.Status.PENDING).order_by("pk"))
    for index, subscriber in enumerate(pending):
        with retried_when_transient(self, args=([left.pk for left in pending[index:]],)):
            emails.send_confirmation(subscriber)


@shared_task(bind=True)
def send_welcome_email(self: Task[Any, Any], subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id, status=Subscriber.Status.CONFIRMED).first()
    if subscriber is not None:
        with retried_when_transient(self):
            emails.send_welcome(subscriber)


@shared_task(bind=True)
def send_manage_link_email(self: Task[Any, Any], subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None:
        with retried_when_transient(self):
            emails.send_manage_link(subscriber)


@shared_task(bind=True)
def send_data_export(self: Task[Any, Any], subscriber_id: int) -> None:
    subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
    if subscriber is not None:
        with retried_when_transient(self):
            emails.send_subscriber_data(subscriber, export_subscriber_data(subscriber=subscriber))


@shared_task(autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=30, max_retries=20)
def start_campaign(article_id: int) -> None:
    """Create and plan the campaign of a just-published article (once), then start sending."""
    campaign = sending.start_campaign_for_article(article_id=article_id)
    if campaign is not None and campaign.status == campaign.Status.SENDING:
        # Also restarts the batches when publish was signalled twice after a crash.
        sending.recover_stalled_campaigns()


@shared_task(autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=30, max_retries=20)
def send_campaign_batch(campaign_id: int) -> None:
    """Send one batch, then continue the chain while the campaign has work."""
    result = sending.send_batch(campaign_id=campaign_id)
    if result.stopped:
        return
    if result.resume_in:
        park_campaign_batch(campaign_id, result.resume_in)
    elif result.claimed:
        send_campaign_batch.delay(campaign_id)
    else:
        wait = sending.next_retry_in(campaign_id=campaign_id)
        if wait is not None:
            park_campaign_batch(campaign_id, wait + 0.5)


def park_campaign_batch(campaign_id: int, seconds: float) -> None:
    send_campaign_batch.apply_async((campaign_id,), countdown=min(seconds, longest_countdown()))


@shared_task
def compact_ledger() -> None:
    """Beat, hourly: finished campaigns past NEWSLETTER_LEDGER_RETENTION_DAYS keep counts, not rows."""
    compaction.compact_finished_campaigns()


@shared_task
def recover_campaigns() -> None:
    """Beat: return expired leases and restart stalled campaigns (see sending.recover_stalled_campaigns),
    restart subscriber imports a dead worker left (imports.recover_stalled_imports), and queue
    the confirmations the broker could not take when their readers signed up."""
    sending.recover_stalled_campaigns()
    imports.recover_stalled_imports()
    queue_unsent_confirmations()


@shared_task(
    soft_time_limit=settings.NEWSLETTER_IMPORT_TIME_LIMIT, time_limit=settings.NEWSLETTER_IMPORT_TIME_LIMIT + 60
)
def import_subscribers_file(job_id: int) -> None:
    """Run an import started in the admin (an ImportJob), recording its progress as it goes."""
    imports.run_import_job(job_id=job_id)


@shared_task(autoretry_for=(OperationalError, InterfaceError), retry_backoff=1, retry_backoff_max=30, max_retries=5)
def send_due_digests() -> None:
    """Beat: start the daily and weekly digests whose send time has come (once per period)."""
    from newsletter.digests import start_due_digests

    start_due_digests()
