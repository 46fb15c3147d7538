"""What engagement figures are made of (see docs/engagement.md for what is kept and how long).

- ``CampaignLink``: each distinct link of a campaign's email, rewritten once per render
  to ``/r/<token>/``; the open pixel is a link of its own kind.
- ``ClickEvent``: one fetch of such a link, classified (human, scanner, open) when the
  events are moved from Redis into the database; kept ``ANALYTICS_RETENTION_DAYS``.
  It names the reader only by a pseudonym that differs from campaign to campaign.
- ``EngagementCount``: counts that outlive the raw events: their daily roll-up, and the
  unsubscribes, bounces and complaints attributed to a campaign.
- ``ReaderClick``: a reader's own clicks, kept only with ``NEWSLETTER_PER_READER_STATS``;
  removed with the reader.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class CampaignLink(models.Model):
    class Kind(models.TextChoices):
        LINK = "link", "Link"
        OPEN = "open", "Open pixel"

    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE, related_name="links")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.LINK)
    url = models.TextField(blank=True, help_text="Where the link leads; empty for the open pixel.")
    url_hash = models.CharField(max_length=64, help_text="SHA-256 of kind and URL: one row per distinct link.")
    article = models.ForeignKey(
        "articles.Article",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The article the link leads to on this site: its clicks are email-to-web visits.",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "url_hash"], name="campaign_link_once")]

    def __str__(self) -> str:
        return self.url or self.get_kind_display()


class ClickEvent(models.Model):
    class Kind(models.TextChoices):
        HUMAN = "human", "Human click"
        SCANNER = "scanner", "Scanner hit"
        OPEN = "open", "Open"

    event_id = models.CharField(max_length=40, unique=True, help_text="The Redis stream entry it came from.")
    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE, related_name="+")
    link = models.ForeignKey(CampaignLink, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    reader = models.CharField(
        max_length=24, blank=True, help_text="A per-campaign pseudonym of the reader (empty once they are erased)."
    )
    first_for_link = models.BooleanField(default=False, help_text="The reader's first click (or open) of this link.")
    first_for_reader = models.BooleanField(default=False, help_text="The reader's first human click in the campaign.")

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "reader"], name="click_event_reader"),
            models.Index(fields=["at"], name="click_event_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.link_id} {self.at:%Y-%m-%d %H:%M:%S}"


class EngagementCount(models.Model):
    """A count for a campaign (and a link, for click figures) over a period (an hour in the
    campaign's first 72 hours, a day after). Rows are only added; figures sum them."""

    class Metric(models.TextChoices):
        CLICKS = "clicks", "Human clicks (once per reader and link)"
        CLICKERS = "clickers", "Readers who clicked"
        REPEATS = "repeats", "Further human clicks"
        SCANNER = "scanner", "Scanner hits"
        OPENS = "opens", "Opens (once per reader)"
        WEB_VISITS = "web_visits", "Visits to an article from the email"
        UNSUBSCRIBES = "unsubscribes", "Unsubscribes"
        BOUNCES = "bounces", "Bounces"
        COMPLAINTS = "complaints", "Complaints"

    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE, related_name="+")
    link = models.ForeignKey(CampaignLink, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    period = models.DateTimeField(help_text="Start of the hour or day counted.")
    metric = models.CharField(max_length=20, choices=Metric.choices)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["campaign", "metric"], name="engagement_count_campaign")]

    def __str__(self) -> str:
        return f"{self.metric} {self.count}"


class ReaderClick(models.Model):
    """A reader's human click, kept per reader only with NEWSLETTER_PER_READER_STATS."""

    subscriber = models.ForeignKey("newsletter.Subscriber", on_delete=models.CASCADE, related_name="clicks")
    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE, related_name="+")
    link = models.ForeignKey(CampaignLink, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.link_id} {self.at:%Y-%m-%d %H:%M}"


class CampaignFigures(models.Model):
    """Only a place in the admin for the figures page over the latest campaigns."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = verbose_name_plural = "engagement figures"

    def __str__(self) -> str:
        return "Engagement figures"
