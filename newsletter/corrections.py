"""Emailing a correction to the readers who received its piece, through the sending engine.

A correction campaign is a third kind of campaign, beside an article's and a digest's:
``Campaign.correction`` names the note (one campaign per note, by a unique key, so
pressing "send" twice sends nothing new). Its recipients are exactly the readers
with a *sent* delivery of the piece, by its article campaign or in a digest, who
are still confirmed, at their current address; planned in one statement, the same
ledger, then the engine's usual claim, lease and record path
(``newsletter.sending``): exactly once, crash recovery and stopping behave as for
any campaign. A reader who unsubscribes meanwhile is skipped when the batch claims them.

Readers whose deliveries were compacted away (``NEWSLETTER_LEDGER_RETENTION_DAYS``)
can no longer be found: a correction reaches those the ledger still knows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from articles.models import Article, Correction, SiteSettings
from newsletter.models import Campaign, Delivery
from newsletter.sending.message import PREFERENCES_MARK, UNSUBSCRIBE_MARK, CampaignEmail, campaign_email_from

if TYPE_CHECKING:
    from articles.services import User

logger = logging.getLogger("newsletter.corrections")


class NothingToSend(ValueError):
    """No reader who received the piece is still subscribed (or the piece was never sent)."""


# Confirmed readers with a sent delivery of the article: by its own campaign, or by a
# digest content holding it. ON CONFLICT keeps a re-run harmless.
_PLAN_SQL = """
INSERT INTO newsletter_delivery
    (campaign_id, subscriber_id, email, status, attempts, last_error, provider_message_id,
     claimed_by, created_at, updated_at)
SELECT %(campaign)s, s.id, s.email, 'pending', 0, '', '', '', %(now)s, %(now)s
FROM newsletter_subscriber s
WHERE s.status = 'confirmed' AND EXISTS (
    SELECT 1 FROM newsletter_delivery d
    WHERE d.subscriber_id = s.id AND d.status = 'sent'
      AND (d.campaign_id IN (SELECT c.id FROM newsletter_campaign c WHERE c.article_id = %(article)s)
           OR d.content_id IN (SELECT p.content_id FROM newsletter_digestpiece p WHERE p.article_id = %(article)s)))
ORDER BY s.id
ON CONFLICT (campaign_id, subscriber_id) DO NOTHING
"""


def readers_who_received(article: Article) -> Any:
    """The confirmed readers a correction of ``article`` goes to (for the admin's count)."""
    from newsletter.models import Subscriber

    sent = Delivery.objects.filter(status=Delivery.Status.SENT)
    by_campaign = sent.filter(campaign__article=article).values("subscriber_id")
    by_digest = sent.filter(content__pieces__article=article).values("subscriber_id")
    return Subscriber.objects.confirmed().filter(pk__in=by_campaign.union(by_digest))


def may_send(user: User | None) -> bool:
    return user is None or bool(user.is_active and user.has_perm("newsletter.change_campaign"))


def send_correction(*, correction: Correction, by: User | None) -> Campaign:
    """Email ``correction`` to the readers who received its piece; once per note.

    Returns the note's campaign (the existing one when it was sent before).
    """
    from newsletter.sending.campaigns import launch_batches, planning

    if not may_send(by):
        raise PermissionDenied("You may not email readers.")
    existing = Campaign.objects.filter(correction=correction).first()
    if existing is not None:
        return existing
    article = correction.article
    if article.status != Article.Status.PUBLISHED:
        raise NothingToSend(f"“{article.title}” is not published: its readers are not sent corrections.")
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                correction=correction, subject=f"{correction.get_kind_display()}: {article.title}"[:200]
            )
            with planning(campaign) as campaign:  # one planning at a time, as for articles and digests
                now = timezone.now()
                with connection.cursor() as cursor:
                    cursor.execute(_PLAN_SQL, {"campaign": campaign.pk, "now": now, "article": article.pk})
                campaign.recipients = Delivery.objects.filter(campaign=campaign).count()
                if not campaign.recipients:
                    raise NothingToSend(f"No subscribed reader received “{article.title}”: nobody to send the note to.")
                campaign.status = Campaign.Status.SENDING
                campaign.planned_at = campaign.last_activity_at = now
                campaign.save(update_fields=["recipients", "status", "planned_at", "last_activity_at"])
                transaction.on_commit(lambda: launch_batches(campaign_id=campaign.pk))
    except IntegrityError:  # the same note sent from two places at once: the other one won
        return Campaign.objects.get(correction=correction)
    logger.info("campaign=%s event=correction_planned recipients=%s", campaign.pk, campaign.recipients)
    return campaign


_rendered: dict[tuple[int, str], CampaignEmail] = {}


def correction_email(campaign: Campaign) -> CampaignEmail:
    """The correction's email, rendered once per worker process (again if the note is edited)."""
    correction = Correction.objects.select_related("article").get(campaign=campaign)
    key = (campaign.pk, correction.text)
    if key not in _rendered:
        _rendered.clear()
        _rendered[key] = render_correction_email(campaign, correction)
    return _rendered[key]


def render_correction_email(campaign: Campaign, correction: Correction) -> CampaignEmail:
    site = SiteSettings.load()
    article = correction.article
    context = {
        "site_name": site.site_name,
        "site_url": settings.SITE_URL,
        "correction": correction,
        "article": article,
        "article_url": settings.SITE_URL + article.get_absolute_url(),
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
    }
    return campaign_email_from(
        campaign_id=campaign.pk,
        subject=campaign.subject,
        html=render_to_string("newsletter/correction_email.html", context),
        text=render_to_string("newsletter/correction_email.txt", context),
        site=site,
    )
