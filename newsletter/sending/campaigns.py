"""A campaign's life: publish → start → plan → launch batches → finish; pause, resume,
cancel, retry; recovery when a worker died.

Read top-down: ``campaign_on_publish`` records the campaign when an article is
published and enqueues ``newsletter.tasks.start_campaign``, which runs
``start_campaign_for_article``: ``plan_campaign`` writes one pending delivery per reader
in one statement and ``launch_batches`` enqueues ``NEWSLETTER_SEND_CONCURRENCY`` chains
of ``newsletter.tasks.send_campaign_batch``, each running ``batch.send_batch`` until no
delivery is left; then ``finish_if_done`` marks the campaign finished.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from articles.models import Article, ArticleTransition
from euro_prospects import metrics
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.sending.ledger import due, with_database_retry

logger = logging.getLogger("newsletter.sending")

# A campaign in one of these states can still be stopped (cancelled, or by unpublishing).
STOPPABLE = (Campaign.Status.PLANNING, Campaign.Status.SENDING, Campaign.Status.PAUSED)
CANCELLED = "Campaign cancelled"
UNPUBLISHED = "Campaign cancelled: the article was unpublished"
# Recovery starts the campaign of an article published this recently that has none: the
# process that published it died before recording one (a broker that is down does not stop that).
UNANNOUNCED_WITHIN = timedelta(hours=1)


# --- Publish, start, plan, launch ------------------------------------------------


def campaign_on_publish(*, article_id: int) -> None:
    """Record the campaign of a just-published article at once, then have a worker plan it.

    The row is one INSERT, so publishing stays as quick whatever the list size; with it
    in the database a broker that is down only delays the send: recovery starts
    campaigns left planning (``recover_stalled_campaigns``), and publishing never fails.
    """
    if create_campaign(article_id=article_id) is not None:
        transaction.on_commit(lambda: _enqueue_start(article_id))


def _enqueue_start(article_id: int) -> None:
    from newsletter.tasks import start_campaign

    try:
        start_campaign.delay(article_id)
    except KombuOperationalError as exc:
        logger.warning(
            "article=%s event=broker_unavailable error=%r; recovery starts its campaign later", article_id, exc
        )


def create_campaign(*, article_id: int) -> Campaign | None:
    """The campaign of a published article that is to be sent, created once; None when it is not."""
    article = Article.objects.filter(pk=article_id).first()
    if article is None or not article.send_to_subscribers or article.status != Article.Status.PUBLISHED:
        return None
    try:
        with transaction.atomic():
            campaign, _ = Campaign.objects.get_or_create(article=article)
    except IntegrityError:  # another worker created it between our read and insert
        campaign = Campaign.objects.get(article=article)
    return campaign


def start_campaign_for_article(*, article_id: int) -> Campaign | None:
    """Create (once) and plan the campaign of a published article; None when it is not to be sent."""
    campaign = create_campaign(article_id=article_id)
    if campaign is not None and campaign.status == Campaign.Status.PLANNING:
        campaign = plan_campaign(campaign=campaign)
    return campaign


def plan_campaign(*, campaign: Campaign) -> Campaign:
    """Insert one pending Delivery per confirmed subscriber who wants the article, in one statement."""
    with planning(campaign) as campaign:
        if campaign.status != Campaign.Status.PLANNING:
            return campaign
        now = timezone.now()
        started = time.monotonic()
        with connection.cursor() as cursor:
            cursor.execute(_PLAN_SQL, [campaign.pk, now, now, campaign.article_id, campaign.article_id])
        campaign.recipients = Delivery.objects.filter(campaign=campaign).count()
        campaign.status = Campaign.Status.SENDING
        campaign.planned_at = campaign.last_activity_at = timezone.now()
        campaign.save(update_fields=["recipients", "status", "planned_at", "last_activity_at"])
        logger.info(
            "campaign=%s event=planned recipients=%s seconds=%.3f",
            campaign.pk,
            campaign.recipients,
            time.monotonic() - started,
        )
        transaction.on_commit(lambda: launch_batches(campaign_id=campaign.pk))
    return campaign


@contextmanager
def planning(campaign: Campaign) -> Iterator[Campaign]:
    """A transaction holding the campaign's row, re-read; while it is still planning, also
    the lock that plans one campaign or digest at a time, so that two plannings never
    both give a reader the same piece (see ``newsletter.digests``)."""
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == Campaign.Status.PLANNING and connection.vendor == "postgresql":
            # SQLite runs one writing transaction at a time anyway.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_PLANNING_LOCK])
        yield locked


_PLANNING_LOCK = 7_340_001

# Confirmed readers on the immediate cadence who take every topic or one of the article's,
# and to whom no digest brought (or is bringing) the article already. (Digest readers get
# it in their digest.) ON CONFLICT makes re-planning harmless.
_PLAN_SQL = """
INSERT INTO newsletter_delivery
    (campaign_id, subscriber_id, email, status, attempts, last_error, provider_message_id,
     claimed_by, created_at, updated_at)
SELECT %s, s.id, s.email, 'pending', 0, '', '', '', %s, %s
FROM newsletter_subscriber s
WHERE s.status = 'confirmed' AND s.cadence = 'immediate'
  AND (s.all_topics OR EXISTS (
      SELECT 1 FROM newsletter_subscriber_topics st
      JOIN articles_articletopic at ON at.topic_id = st.topic_id
      WHERE st.subscriber_id = s.id AND at.article_id = %s))
  AND s.id NOT IN (
      SELECT d.subscriber_id FROM newsletter_digestpiece p
      JOIN newsletter_delivery d ON d.content_id = p.content_id
      WHERE p.article_id = %s AND d.status IN ('pending', 'sending', 'retrying', 'sent'))
ORDER BY s.id
ON CONFLICT (campaign_id, subscriber_id) DO NOTHING
"""


def launch_batches(*, campaign_id: int) -> None:
    """Start the campaign's parallel batch chains: each task runs ``batch.send_batch`` and
    enqueues itself again while work remains."""
    from newsletter.tasks import send_campaign_batch

    for _ in range(settings.NEWSLETTER_SEND_CONCURRENCY):
        send_campaign_batch.delay(campaign_id)


# --- While it sends ----------------------------------------------------------------


def campaign_may_send(*, campaign_id: int) -> bool:
    """Whether the campaign is sending; one whose piece (its article, or the article its
    correction is about) was unpublished is cancelled here."""
    row = (
        Campaign.objects.filter(pk=campaign_id)
        .values_list("status", "article__status", "correction__article__status")
        .first()
    )
    if row is None:
        return False
    status, article_status, corrected_status = row
    # A digest has neither (a piece unpublished since is left out of it).
    piece_status = article_status or corrected_status
    if piece_status is not None and piece_status != Article.Status.PUBLISHED and status in STOPPABLE:
        cancel_campaign(campaign=Campaign(pk=campaign_id), reason=UNPUBLISHED)
        return False
    return bool(status == Campaign.Status.SENDING)


def next_retry_in(*, campaign_id: int) -> float | None:
    """Seconds until the campaign's earliest retry is due, or None when none waits."""
    first = (
        Delivery.objects.filter(campaign_id=campaign_id, status=Delivery.Status.RETRYING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if first is None:
        return None
    return max((first - timezone.now()).total_seconds(), 0.0)


def finish_if_done(*, campaign_id: int) -> bool:
    """Mark the campaign finished once no delivery is pending, sending or retrying."""
    if Delivery.objects.filter(campaign_id=campaign_id).unfinished().exists():
        return False
    finished = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
        status=Campaign.Status.FINISHED, finished_at=timezone.now()
    )
    if finished:
        campaign = Campaign.objects.get(pk=campaign_id)
        seconds = (campaign.finished_at - campaign.created_at).total_seconds() if campaign.finished_at else 0.0
        metrics.observe_campaign_duration(seconds=seconds)
        logger.info("campaign=%s event=finished seconds=%.1f", campaign_id, seconds)
    return True


# --- Pause, resume, cancel, retry --------------------------------------------------


def pause_campaign(*, campaign_id: int, reason: str) -> bool:
    """Pause a sending campaign (its deliveries stay as they are) until an editor resumes it."""
    paused = with_database_retry(
        lambda: Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.PAUSED, paused_reason=reason[:500], paused_at=timezone.now()
        )
    )
    if paused:
        logger.warning("campaign=%s event=paused reason=%r", campaign_id, reason)
        metrics.record_campaign_paused(campaign_id=campaign_id)
    return bool(paused)


class NotPaused(ValueError):
    """Only a paused campaign can be resumed."""


def resume_campaign(*, campaign: Campaign) -> Campaign:
    """Send a paused campaign on: each reader not yet sent to gets the email once."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status != Campaign.Status.PAUSED:
            raise NotPaused(
                f"Only a paused campaign can be resumed; this one is {campaign.get_status_display().lower()}."
            )
        reason = campaign.paused_reason
        campaign.status = Campaign.Status.SENDING
        campaign.paused_reason = ""
        campaign.paused_at = None
        campaign.last_activity_at = timezone.now()
        campaign.save(update_fields=["status", "paused_reason", "paused_at", "last_activity_at"])
        logger.info("campaign=%s event=resumed paused_for=%r", campaign.pk, reason)
        campaign_id = campaign.pk
        transaction.on_commit(lambda: launch_batches(campaign_id=campaign_id))
    return campaign


def cancel_campaign(*, campaign: Campaign, reason: str = CANCELLED) -> Campaign:
    """Stop a campaign: pending and retrying deliveries are skipped; batches in flight stop within a second."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in STOPPABLE:
            return campaign
        now = timezone.now()
        campaign.status = Campaign.Status.CANCELLED
        campaign.cancelled_at = now
        campaign.save(update_fields=["status", "cancelled_at"])
        campaign.deliveries.filter(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]).update(
            status=Delivery.Status.SKIPPED, last_error=reason, updated_at=now
        )
    logger.info("campaign=%s event=cancelled reason=%r", campaign.pk, reason)
    return campaign


def skip_unsent_if_cancelled(*, campaign_id: int) -> None:
    """Skip what a batch of a campaign cancelled meanwhile gave back to pending."""
    with_database_retry(
        lambda: Delivery.objects.filter(
            campaign_id=campaign_id, campaign__status=Campaign.Status.CANCELLED, status=Delivery.Status.PENDING
        ).update(status=Delivery.Status.SKIPPED, last_error=CANCELLED, updated_at=timezone.now())
    )


def retry_failed_deliveries(*, campaign: Campaign) -> int:
    """Give failed deliveries of confirmed readers another round of attempts; returns how many."""
    with transaction.atomic():
        # The campaign's lock orders this against ledger compaction, which keeps only counts.
        if not Campaign.objects.select_for_update().filter(pk=campaign.pk, compacted_at__isnull=True).exists():
            return 0
        now = timezone.now()
        count = campaign.deliveries.filter(
            status=Delivery.Status.FAILED, subscriber__status=Subscriber.Status.CONFIRMED
        ).update(status=Delivery.Status.PENDING, attempts=0, next_attempt_at=None, updated_at=now)
        if count:
            Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.FINISHED).update(
                status=Campaign.Status.SENDING, finished_at=None
            )
            transaction.on_commit(lambda: launch_batches(campaign_id=campaign.pk))
    return count


# --- Recovery ------------------------------------------------------------------------


def recover_stalled_campaigns() -> list[int]:
    """Return expired leases to pending and restart campaigns nobody is working on.

    Runs from beat every ``NEWSLETTER_RECOVERY_INTERVAL`` seconds and when a worker
    starts; returns the ids of campaigns it restarted. A campaign waiting for the next
    hour's allowance is left to the tasks parked for it until a lease after that hour.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    expired = Delivery.objects.filter(status=Delivery.Status.SENDING, claimed_at__lt=cutoff)
    expired.filter(campaign__status=Campaign.Status.CANCELLED).update(
        status=Delivery.Status.SKIPPED, claimed_by="", last_error=CANCELLED, updated_at=now
    )
    returned = expired.update(status=Delivery.Status.PENDING, claimed_by="", claimed_at=None, updated_at=now)
    if returned:
        logger.warning("event=leases_expired deliveries=%s returned to pending", returned)
    stop_unpublished_campaigns()
    start_unannounced_campaigns(cutoff=cutoff)
    restarted = []
    for article_id in Campaign.objects.filter(
        status=Campaign.Status.PLANNING, created_at__lt=cutoff, article__isnull=False
    ).values_list("article_id", flat=True):
        from newsletter.tasks import start_campaign

        start_campaign.delay(article_id)
    for campaign_id, last_activity, resume_at in Campaign.objects.filter(status=Campaign.Status.SENDING).values_list(
        "pk", "last_activity_at", "resume_at"
    ):
        if finish_if_done(campaign_id=campaign_id):
            continue
        stalled = last_activity is None or last_activity < cutoff
        parked = resume_at is not None and resume_at > cutoff
        if stalled and not parked and Delivery.objects.filter(due(now), campaign_id=campaign_id).exists():
            Campaign.objects.filter(pk=campaign_id).update(last_activity_at=now)
            logger.warning("campaign=%s event=restarted (no batch worked on it for a lease)", campaign_id)
            launch_batches(campaign_id=campaign_id)
            restarted.append(campaign_id)
    return restarted


def stop_unpublished_campaigns() -> None:
    """Cancel the campaigns whose piece is no longer published (no batch may be running to notice):
    an article's, and a correction's. Digests have no piece of their own."""
    published = Article.Status.PUBLISHED
    unpublished = (Q(article__isnull=False) & ~Q(article__status=published)) | (
        Q(correction__isnull=False) & ~Q(correction__article__status=published)
    )
    for campaign in Campaign.objects.filter(unpublished, status__in=STOPPABLE):
        cancel_campaign(campaign=campaign, reason=UNPUBLISHED)


def start_unannounced_campaigns(*, cutoff: datetime) -> None:
    """Create the campaigns of articles just published to be sent that have none yet."""
    published = ArticleTransition.objects.filter(
        to_status=Article.Status.PUBLISHED, at__gte=timezone.now() - UNANNOUNCED_WITHIN, at__lt=cutoff
    ).values("article_id")
    for article_id in Article.objects.filter(
        pk__in=published, status=Article.Status.PUBLISHED, send_to_subscribers=True, campaign__isnull=True
    ).values_list("pk", flat=True):
        logger.warning("article=%s event=campaign_missing (published without one); starting it", article_id)
        campaign_on_publish(article_id=article_id)
