from __future__ import annotations

import contextlib
import hashlib
from typing import Any

import idna
from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from articles.models import Topic
from euro_prospects.text import validate_single_line


class SubscriberQuerySet(models.QuerySet["Subscriber"]):
    def confirmed(self) -> SubscriberQuerySet:
        return self.filter(status=Subscriber.Status.CONFIRMED)

    def wanting(self, topics: list[Topic] | models.QuerySet[Topic]) -> SubscriberQuerySet:
        """Subscribers who take every topic, or chose at least one of ``topics``."""
        return self.filter(models.Q(all_topics=True) | models.Q(topics__in=topics)).distinct()


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"

    class Source(models.TextChoices):
        FORM = "form", "Sign-up form"
        API = "api", "API"
        IMPORT = "import", "Import"
        ADMIN = "admin", "Admin"

    class Cadence(models.TextChoices):
        IMMEDIATE = "immediate", "Every article as it is published"
        DAILY = "daily", "A daily digest"
        WEEKLY = "weekly", "A weekly digest"

    email = models.EmailField(max_length=254, help_text="Stored normalised; unique whatever its case.")
    name = models.CharField(max_length=120, blank=True, validators=[validate_single_line])
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING, db_index=True)
    all_topics = models.BooleanField(default=True, help_text="Receive every topic; otherwise only the chosen ones.")
    topics = models.ManyToManyField(Topic, blank=True, related_name="subscribers")
    cadence = models.CharField(max_length=20, choices=Cadence.choices, default=Cadence.IMMEDIATE)
    cadence_since = models.DateTimeField(null=True, blank=True, help_text="When the reader chose the cadence.")
    previous_cadence = models.CharField(
        max_length=20,
        choices=Cadence.choices,
        blank=True,
        default="",
        db_default="",
        help_text="The cadence before the current one.",
    )
    # When the reader last left each digest: that digest still brings what it owed them up
    # to then (newsletter.digests), however many cadences they went through since.
    left_daily_at = models.DateTimeField(null=True, blank=True, help_text="When the reader last left the daily digest.")
    left_weekly_at = models.DateTimeField(
        null=True, blank=True, help_text="When the reader last left the weekly digest."
    )
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.FORM)
    consent_at = models.DateTimeField(null=True, blank=True)
    consent_source = models.CharField(max_length=200, blank=True, help_text="The form or list the consent came from.")
    consent_ip = models.GenericIPAddressField(null=True, blank=True)
    consent_user_agent = models.CharField(max_length=500, blank=True)
    consent_version = models.CharField(max_length=40, blank=True, help_text="Version of the consent wording shown.")
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    unsubscribe_reason = models.CharField(max_length=200, blank=True)
    confirmation_sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last confirmation email was queued; limits re-sends."
    )
    soft_bounce_count = models.PositiveIntegerField(
        default=0, help_text="Soft bounces since the last delivery problem was cleared."
    )
    suppressed_at = models.DateTimeField(null=True, blank=True, help_text="When bounces or a complaint stopped sends.")
    suppression_reason = models.CharField(max_length=300, blank=True, help_text="Why sends to this address stopped.")

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique")]
        indexes = [
            # The sign-ups whose confirmation the broker could not take (services.queue_unsent_confirmations,
            # every beat): almost always none, so the index stays tiny.
            models.Index(
                fields=["consent_at"],
                condition=models.Q(status="pending", confirmation_sent_at__isnull=True),
                name="subscriber_unsent_confirmation",
            )
        ]

    def __str__(self) -> str:
        return self.email


def canonical_email(email: str) -> str:
    """``email`` with its domain in the stored form (ASCII, lower case), for look-ups of
    addresses from outside (webhooks, forms); unchanged when the domain is not valid IDNA."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or (domain.isascii() and domain.islower()):
        return email
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except (idna.IDNAError, UnicodeError):
        return email


def email_hash(email: str) -> str:
    """A stable hash of an address, for remembering it without keeping it.

    Both spellings of an internationalised domain hash alike, to the Unicode form
    that addresses were stored in before the ASCII form was chosen, so erasures
    remembered then still match."""
    email = email.strip().lower()
    local, _, domain = email.rpartition("@")
    if "xn--" in domain:
        with contextlib.suppress(idna.IDNAError, UnicodeError):
            email = f"{local}@{idna.decode(domain)}"
    return hashlib.sha256(email.encode()).hexdigest()


class Suppression(models.Model):
    """An address, kept only as a hash, that must never be added again by an
    import: readers who asked for erasure, or suppressed addresses removed."""

    email_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the lower-cased address.")
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email_hash[:12]}… ({self.reason})"


class Campaign(models.Model):
    """The one send of an article to its subscribers (one per article, by constraint), or a
    digest: one per cadence and period (by constraint), with no article."""

    class Status(models.TextChoices):
        PLANNING = "planning", "Planning"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        FINISHED = "finished", "Finished"
        CANCELLED = "cancelled", "Cancelled"

    class Digest(models.TextChoices):
        DAILY = "daily", "Daily digest"
        WEEKLY = "weekly", "Weekly digest"

    article = models.OneToOneField(
        "articles.Article",
        on_delete=models.PROTECT,
        related_name="campaign",
        null=True,
        blank=True,
        help_text="One campaign per article; empty for a digest.",
    )
    digest = models.CharField(
        max_length=20, choices=Digest.choices, blank=True, help_text="The digest's cadence; empty for an article."
    )
    correction = models.OneToOneField(
        "articles.Correction",
        on_delete=models.PROTECT,
        related_name="campaign",
        null=True,
        blank=True,
        help_text="A correction emailed to the readers who received its piece (newsletter/corrections.py).",
    )
    period_key = models.DateTimeField(
        null=True, blank=True, help_text="A digest's scheduled send time: one digest per cadence and period."
    )
    period_start = models.DateTimeField(null=True, blank=True, help_text="A digest holds pieces published after this…")
    period_end = models.DateTimeField(null=True, blank=True, help_text="…and up to this.")
    intro = models.TextField(blank=True, help_text="A digest's introduction, above its pieces.")
    subject = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_single_line],
        help_text="Leave blank to use the article's title.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PLANNING, db_index=True)
    recipients = models.PositiveIntegerField(default=0, help_text="Deliveries planned.")
    created_at = models.DateTimeField(auto_now_add=True)
    planned_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.CharField(
        max_length=500,
        blank=True,
        help_text="Why sending stopped: the server or provider refused the sender, relay or account. "
        "Fix that, then resume.",
    )
    resume_at = models.DateTimeField(
        null=True, blank=True, help_text="The hourly sending allowance is spent: batches go on at this time."
    )
    last_activity_at = models.DateTimeField(
        null=True, blank=True, help_text="Last time a batch claimed work; recovery restarts stalled campaigns."
    )
    # Ledger compaction (newsletter/compaction.py): once a finished campaign is older than
    # NEWSLETTER_LEDGER_RETENTION_DAYS its per-reader rows go and these counts stay.
    compacted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the per-reader ledger rows were replaced by the counts below."
    )
    compacted_total = models.PositiveIntegerField(default=0, help_text="Deliveries in the ledger when compacted.")
    compacted_sent = models.PositiveIntegerField(default=0, help_text="Sent deliveries when compacted.")
    compacted_failed = models.PositiveIntegerField(default=0, help_text="Failed deliveries when compacted.")
    compacted_skipped = models.PositiveIntegerField(default=0, help_text="Skipped deliveries when compacted.")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["digest", "period_key"],
                condition=models.Q(article__isnull=True),
                name="campaign_digest_once_per_period",
            ),
            models.CheckConstraint(
                condition=(models.Q(article__isnull=False) & models.Q(digest="") & models.Q(correction__isnull=True))
                | (
                    models.Q(article__isnull=True)
                    & ~models.Q(digest="")
                    & models.Q(period_key__isnull=False)
                    & models.Q(correction__isnull=True)
                )
                | (models.Q(article__isnull=True) & models.Q(digest="") & models.Q(correction__isnull=False)),
                name="campaign_article_digest_or_correction",
            ),
        ]

    def __str__(self) -> str:
        if self.digest:
            return f"{self.get_digest_display()} of {timezone.localtime(self.period_key):%Y-%m-%d %H:%M}"
        if self.correction_id:
            return f"Correction to {self.correction.article}" if self.correction else "Correction"
        return f"Campaign for {self.article}"

    @property
    def title(self) -> str:
        """What the campaign sends: the article's title, the digest's name and period, or the correction."""
        if self.digest or self.correction_id:
            return str(self)
        return str(self.article.title if self.article else "")


class DigestContent(models.Model):
    """One distinct set of pieces in a digest campaign: its readers share one rendering."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="contents")
    key = models.TextField(help_text="The pieces' article ids, ascending, comma-separated.")
    articles: models.ManyToManyField[Any, Any] = models.ManyToManyField(
        "articles.Article", through="DigestPiece", related_name="+"
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "key"], name="digest_content_once")]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.key}"


class DigestPiece(models.Model):
    """A piece in a digest content. With Delivery.content it is the ledger of which
    reader got which piece through a digest."""

    content = models.ForeignKey(DigestContent, on_delete=models.CASCADE, related_name="pieces")
    article = models.ForeignKey("articles.Article", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["content", "article"], name="digest_piece_once")]
        indexes = [models.Index(fields=["article"], name="digest_piece_article")]

    def __str__(self) -> str:
        return f"{self.content_id}: {self.article_id}"


class DeliveryQuerySet(models.QuerySet["Delivery"]):
    def unfinished(self) -> DeliveryQuerySet:
        return self.filter(status__in=Delivery.UNFINISHED)

    def totals(self) -> dict[str, int]:
        """How many deliveries are in each of ``Delivery.TOTALS``, in one query."""
        totals = Delivery.TOTALS.items()
        counts = {name: models.Count("id", filter=models.Q(status__in=values)) for name, values in totals}
        return self.order_by().aggregate(total=models.Count("id"), **counts)


class Delivery(models.Model):
    """The ledger: one row per (campaign, subscriber), moved through its states by the engine."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        RETRYING = "retrying", "Retrying"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    UNFINISHED = (Status.PENDING, Status.SENDING, Status.RETRYING)
    # The figures editors see for a campaign, by state (``pending`` includes the rows a
    # batch holds right now: to an editor both are still to go).
    TOTALS = {
        "sent": (Status.SENT,),
        "pending": (Status.PENDING, Status.SENDING),
        "retrying": (Status.RETRYING,),
        "failed": (Status.FAILED,),
        "skipped": (Status.SKIPPED,),
    }

    # No index of its own: the unique constraint below starts with the campaign.
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="deliveries", db_index=False)
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    email = models.EmailField(max_length=254, help_text="The address at planning time.")
    # Indexed with the subscriber below, for digests only.
    content = models.ForeignKey(
        DigestContent,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        db_index=False,
        related_name="deliveries",
        help_text="A digest delivery's pieces.",
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, help_text="The batch holding this row while sending.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="Lease start; renewed during a batch.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = DeliveryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["campaign", "subscriber"], name="delivery_once_per_subscriber"),
        ]
        # Partial indexes: a row leaves them when it is sent, so recording a sent message
        # (once per email) writes to three indexes instead of six.
        indexes = [
            models.Index(
                fields=["campaign", "id"],
                name="delivery_unfinished",
                condition=models.Q(status__in=["pending", "sending", "retrying"]),
            ),
            models.Index(fields=["claimed_at"], name="delivery_claimed", condition=models.Q(status="sending")),
            # The digest ledger: which reader got which content.
            models.Index(
                fields=["content", "subscriber"],
                name="delivery_digest_content",
                condition=models.Q(content__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.status})"


class ProcessedTrackingEvent(models.Model):
    """A provider's tracking event (bounce, complaint…) already acted on.

    Providers deliver an event again whenever they are unsure we received it; remembering
    each one for a while makes a repeated soft bounce count once. Holds no address.
    """

    key = models.CharField(
        max_length=64, unique=True, help_text="SHA-256 of the provider, event id, recipient, type and time."
    )
    esp = models.CharField(max_length=40, help_text="The provider that reported the event.")
    event_type = models.CharField(max_length=20)
    processed_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.key[:12]}…"


class ImportJob(models.Model):
    """A CSV import started in the admin and run by a Celery worker, with its progress.

    The uploaded file waits in ``ImportFileChunk`` rows (the database is what web and
    worker machines share; media files are public) and is deleted when the job ends.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Waiting for a worker"
        RUNNING = "running", "Importing"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Stopped"

    file_name = models.CharField(max_length=255)
    file_size = models.PositiveBigIntegerField(default=0, help_text="Bytes uploaded.")
    confirmed = models.BooleanField(default=False, help_text="Readers imported as confirmed (consented elsewhere).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    bytes_read = models.PositiveBigIntegerField(default=0)
    rows = models.PositiveIntegerField(default=0, help_text="Rows read so far (the header not counted).")
    imported = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    skipped_by_reason = models.JSONField(default=dict, blank=True)
    skipped_rows = models.JSONField(
        default=list, blank=True, help_text="The first skipped rows as [row number, address, reason]."
    )
    error = models.TextField(blank=True, help_text="Why the import stopped, and what it kept.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"Import of {self.file_name} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if self.status == self.Status.FINISHED:
            return 100
        return min(99, 100 * self.bytes_read // self.file_size) if self.file_size else 0

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)


class ImportFileChunk(models.Model):
    """A piece of an uploaded import file, in order; read by the worker, deleted after."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="import_chunk_once")]

    def __str__(self) -> str:
        return f"Part {self.position} of import {self.job_id}"


# The engagement figures' models live in their own module (newsletter/engagement/).
from newsletter.engagement.models import (  # noqa: E402, F401
    CampaignFigures,
    CampaignLink,
    ClickEvent,
    EngagementCount,
    ReaderClick,
)
