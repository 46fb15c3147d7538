"""Daily and weekly digests: one campaign per cadence and period, planned per reader
from the ledger, sent by the same engine as article campaigns (``newsletter.sending``).

Which pieces a reader gets is decided from the delivery ledger, not from dates alone:
a piece is owed to a reader when it was published in the digest's period (and after
they confirmed), is on their topics, and no delivery of theirs that is sent or still
on its way holds it, neither an article campaign's nor a digest's. So however often a
reader switches cadence, each piece reaches them once. A reader who left this digest
during the period (``left_daily_at``, ``left_weekly_at``) still gets the pieces published
before they left that nothing else brought them, however many cadences they went
through since (weekly, then daily, then every piece, in one week).

Readers with the same set of pieces share a ``DigestContent``; a batch sends one
content (``sending.ledger.claim_batch``), rendered once per worker.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone

from articles.models import Article, SiteSettings
from newsletter.models import Campaign, Delivery, DigestContent, DigestPiece, Subscriber
from newsletter.sending.message import (
    PREFERENCES_MARK,
    UNSUBSCRIBE_MARK,
    CampaignEmail,
    campaign_email_from,
)

logger = logging.getLogger("newsletter.digests")

PERIODS = {Campaign.Digest.DAILY: timedelta(days=1), Campaign.Digest.WEEKLY: timedelta(days=7)}
# The reader's column that says when they last left each digest.
LEFT_AT = {"daily": "left_daily_at", "weekly": "left_weekly_at"}
# A digest also looks this far behind the previous one's end: a piece whose publishing
# committed just after that digest was planned is not lost. The ledger keeps it from
# arriving twice.
OVERLAP = timedelta(hours=1)


# --- When ------------------------------------------------------------------------


def period_bounds(*, digest: str, now: datetime, site: SiteSettings) -> tuple[datetime, datetime]:
    """The digest's last scheduled send time at or before ``now`` and the next one after it,
    at the site settings' hour (and weekday) in ``TIME_ZONE``."""
    local = now.astimezone(ZoneInfo(settings.TIME_ZONE))
    last = local.replace(hour=site.digest_hour, minute=0, second=0, microsecond=0)
    if digest == Campaign.Digest.WEEKLY:
        last -= timedelta(days=(local.weekday() - site.digest_weekday) % 7)
    period = PERIODS[Campaign.Digest(digest)]
    if last > local:
        last -= period
    # Wall-clock arithmetic: the hour stays the same across a change of daylight saving time.
    return last, last + period


# --- Starting -------------------------------------------------------------------


def start_due_digests(
    *, digest: str | None = None, now: datetime | None = None, at_once: bool = False
) -> list[Campaign]:
    """Create and plan the digests whose send time has come; returns the campaigns started.

    ``at_once``: the current period's digest now, with the pieces published so far (the
    next scheduled run then finds it done). A digest is created once per cadence and
    period (a unique constraint), so running this twice, or from two places at once,
    starts nothing new; a digest left planning by a crash is planned on the next run.
    """
    now = now or timezone.now()
    site = SiteSettings.load()
    started = []
    for cadence in [Campaign.Digest(digest)] if digest else list(Campaign.Digest):
        last, following = period_bounds(digest=cadence, now=now, site=site)
        key, end = (following, now) if at_once else (last, last)
        campaign = _digest_campaign(cadence, key, end)
        if campaign is not None and campaign.status == Campaign.Status.PLANNING:
            started.append(plan_digest(campaign=campaign))
    return started


def _digest_campaign(cadence: str, key: datetime, end: datetime) -> Campaign | None:
    """The digest of the period ``key``, created if no digest of this cadence covers it yet."""
    latest = Campaign.objects.filter(digest=cadence).order_by("-period_key").first()
    if latest is not None and latest.period_key is not None and latest.period_key >= key:
        # A digest left planning (a crash, or ``at_once`` ahead of schedule) is planned again.
        return latest if latest.period_key == key or latest.status == Campaign.Status.PLANNING else None
    if latest is not None and latest.period_end is not None:
        start = latest.period_end - OVERLAP
    else:
        start = key - PERIODS[Campaign.Digest(cadence)]
    intro_field = f"{cadence}_digest_intro"
    try:
        with transaction.atomic():
            site = SiteSettings.objects.select_for_update().filter(pk=1).first()
            intro = str(getattr(site, intro_field, "")) if site else ""
            campaign = Campaign.objects.create(
                digest=cadence, period_key=key, period_start=start, period_end=min(end, key), intro=intro
            )
            if intro:  # the intro is for the next digest only
                SiteSettings.objects.filter(pk=1).update(**{intro_field: ""})
    except IntegrityError:  # another run created it first
        return Campaign.objects.filter(digest=cadence, period_key=key).first()
    logger.info("campaign=%s event=digest_created digest=%s period_end=%s", campaign.pk, cadence, campaign.period_end)
    return campaign


# --- Planning -------------------------------------------------------------------

# (reader, piece) pairs the digest owes, by reader. Readers on the cadence get the
# period's pieces; readers who left it during the period ({left}: when they last left
# this digest) get those published before they left. Both only get pieces published
# after they confirmed, on their topics, and that
# none of their deliveries (sent or on the way) holds: as an article email, or in a digest.
_OWED_SQL = """
WITH pieces AS (
    SELECT a.id, a.published_at FROM articles_article a
    WHERE a.status = 'published' AND a.send_to_subscribers
      AND a.published_at > %(start)s AND a.published_at <= %(end)s
), received AS (
    -- Who has the period's pieces already, found from the pieces (not from each reader's
    -- whole history): their article campaigns' deliveries, and digests that hold them.
    SELECT d.subscriber_id, c.article_id
    FROM pieces JOIN newsletter_campaign c ON c.article_id = pieces.id
    JOIN newsletter_delivery d ON d.campaign_id = c.id
    WHERE d.status IN ('pending', 'sending', 'retrying', 'sent')
    UNION
    SELECT d.subscriber_id, p.article_id
    FROM pieces JOIN newsletter_digestpiece p ON p.article_id = pieces.id
    JOIN newsletter_delivery d ON d.content_id = p.content_id
    WHERE d.status IN ('pending', 'sending', 'retrying', 'sent')
)
SELECT s.id, s.email, a.id
FROM newsletter_subscriber s
JOIN pieces a
  ON (s.confirmed_at IS NULL OR a.published_at > s.confirmed_at)
 AND (s.cadence = %(cadence)s OR a.published_at <= s.{left})
WHERE s.status = 'confirmed' {readers}
  AND (s.cadence = %(cadence)s OR s.{left} > %(start)s)
  AND (s.all_topics OR EXISTS (
      SELECT 1 FROM newsletter_subscriber_topics st
      JOIN articles_articletopic at ON at.topic_id = st.topic_id
      WHERE st.subscriber_id = s.id AND at.article_id = a.id))
  AND NOT EXISTS (SELECT 1 FROM received r WHERE r.subscriber_id = s.id AND r.article_id = a.id)
"""

# On PostgreSQL the whole plan is made in the database (no row travels to Python): each
# owed reader with their pieces' key, then the distinct contents, their pieces, and the
# deliveries, a content's readers with consecutive ids.
_PLAN_IN_POSTGRESQL = [
    # The statement's cost estimate is high enough for PostgreSQL to compile it (JIT), which
    # took four times as long as running it on the benchmark machine.
    "SET LOCAL jit = off",
    "DROP TABLE IF EXISTS digest_plan",  # another digest planned in this transaction
    "CREATE TEMPORARY TABLE digest_plan ON COMMIT DROP AS "
    "SELECT owed.reader_id, owed.email, string_agg(owed.article_id::text, ',' ORDER BY owed.article_id) AS key "
    "FROM ("
    + _OWED_SQL.format(readers="", left="{left}").replace(
        "SELECT s.id, s.email, a.id", "SELECT s.id AS reader_id, s.email, a.id AS article_id", 1
    )
    + ") owed "
    "GROUP BY owed.reader_id, owed.email",
    "INSERT INTO newsletter_digestcontent (campaign_id, key) SELECT DISTINCT %(campaign)s, key FROM digest_plan",
    "INSERT INTO newsletter_digestpiece (content_id, article_id) "
    "SELECT c.id, unnest(string_to_array(c.key, ','))::bigint FROM newsletter_digestcontent c "
    "WHERE c.campaign_id = %(campaign)s",
    "INSERT INTO newsletter_delivery (campaign_id, subscriber_id, email, content_id, status, attempts, "
    "last_error, provider_message_id, claimed_by, created_at, updated_at) "
    "SELECT %(campaign)s, p.reader_id, p.email, c.id, 'pending', 0, '', '', '', %(now)s, %(now)s "
    "FROM digest_plan p JOIN newsletter_digestcontent c ON c.campaign_id = %(campaign)s AND c.key = p.key "
    "ORDER BY c.id, p.reader_id ON CONFLICT (campaign_id, subscriber_id) DO NOTHING",
]


def owed_pieces(
    *, digest: str, start: datetime, end: datetime, subscriber_id: int | None = None
) -> Any:  # an iterator of (subscriber id, email, [article ids])
    """Each reader the digest owes something, with the ids of the pieces, ascending."""
    params: dict[str, Any] = {"cadence": digest, "start": start, "end": end}
    readers = ""
    if subscriber_id is not None:
        readers, params["subscriber"] = "AND s.id = %(subscriber)s", subscriber_id
    with connection.cursor() as cursor:
        cursor.execute(_OWED_SQL.format(readers=readers, left=LEFT_AT[digest]) + " ORDER BY s.id, a.id", params)
        current: tuple[int, str] | None = None
        pieces: list[int] = []
        while rows := cursor.fetchmany(5000):
            for reader_id, email, article_id in rows:
                if current is not None and current[0] != reader_id:
                    yield current[0], current[1], pieces
                    pieces = []
                current = (reader_id, email)
                pieces.append(article_id)
        if current is not None:
            yield current[0], current[1], pieces


def plan_digest(*, campaign: Campaign) -> Campaign:
    """One pending Delivery per reader the digest owes a piece, with its content; a digest
    that owes nobody anything finishes at once and sends nothing."""
    from newsletter.sending.campaigns import launch_batches, planning

    with planning(campaign) as campaign:
        if campaign.status != Campaign.Status.PLANNING:
            return campaign
        started = time.monotonic()
        if campaign.period_start is None or campaign.period_end is None:
            raise ValueError(f"campaign {campaign.pk} is not a digest")
        if connection.vendor == "postgresql":
            params: dict[str, Any] = {
                "campaign": campaign.pk,
                "cadence": campaign.digest,
                "start": campaign.period_start,
                "end": campaign.period_end,
                "now": timezone.now(),
            }
            with connection.cursor() as cursor:
                for statement in _PLAN_IN_POSTGRESQL:
                    cursor.execute(statement.replace("{left}", LEFT_AT[campaign.digest]), params)
        else:
            _plan_in_python(campaign, campaign.period_start, campaign.period_end)
        planned = Delivery.objects.filter(campaign=campaign).count()
        contents = DigestContent.objects.filter(campaign=campaign).count()
        campaign.recipients = planned
        campaign.planned_at = campaign.last_activity_at = timezone.now()
        campaign.status = Campaign.Status.SENDING if planned else Campaign.Status.FINISHED
        campaign.finished_at = None if planned else campaign.planned_at
        campaign.save(update_fields=["recipients", "status", "planned_at", "last_activity_at", "finished_at"])
        logger.info(
            "campaign=%s event=planned digest=%s recipients=%s contents=%s seconds=%.3f",
            campaign.pk,
            campaign.digest,
            campaign.recipients,
            contents,
            time.monotonic() - started,
        )
        if planned:
            transaction.on_commit(lambda: launch_batches(campaign_id=campaign.pk))
    return campaign


def _plan_in_python(campaign: Campaign, start: datetime, end: datetime) -> None:
    contents: dict[str, int] = {}
    planned: list[tuple[int, int, str]] = []  # (content, reader, address): a few values per reader
    for reader_id, email, pieces in owed_pieces(digest=campaign.digest, start=start, end=end):
        key = ",".join(map(str, pieces))
        if key not in contents:
            contents[key] = _create_content(campaign, key, pieces)
        planned.append((contents[key], reader_id, email))
    planned.sort()  # a content's readers get consecutive ids: each batch sends one content
    now = timezone.now()
    for offset in range(0, len(planned), 5000):
        Delivery.objects.bulk_create(
            [
                Delivery(
                    campaign=campaign,
                    subscriber_id=reader,
                    email=email,
                    content_id=content,
                    created_at=now,
                    updated_at=now,
                )
                for content, reader, email in planned[offset : offset + 5000]
            ],
            ignore_conflicts=True,
        )


def _create_content(campaign: Campaign, key: str, pieces: list[int]) -> int:
    content = DigestContent.objects.create(campaign=campaign, key=key)
    DigestPiece.objects.bulk_create([DigestPiece(content=content, article_id=article_id) for article_id in pieces])
    return content.pk


# --- The email --------------------------------------------------------------------


@dataclass(frozen=True)
class Piece:
    article: Article
    url: str
    topics: list[str]
    byline: str
    role: str
    thumbnail_url: str


def _pieces(article_ids: list[int]) -> list[Piece]:
    # A piece unpublished since the digest was planned is left out of it.
    articles = (
        Article.objects.filter(pk__in=article_ids, status=Article.Status.PUBLISHED)
        .prefetch_related("article_topics__topic", "article_authors__author")
        .order_by("-published_at", "-pk")
    )
    pieces = []
    for article in articles:
        authors = [link.author for link in article.article_authors.all()]
        image = article.hero_image_email or article.hero_image
        pieces.append(
            Piece(
                article=article,
                url=f"{settings.SITE_URL}{article.get_absolute_url()}",
                topics=[link.topic.name for link in article.article_topics.all()],
                byline=" and ".join(author.name for author in authors),
                role=authors[0].role if authors else "",
                thumbnail_url=f"{settings.SITE_URL}{image.url}" if image else "",
            )
        )
    return pieces


def render_digest_email(*, campaign: Campaign, article_ids: list[int]) -> CampaignEmail:
    """The digest as its readers with these pieces get it, with markers for their links."""
    site = SiteSettings.load()
    pieces = _pieces(article_ids)
    label = "daily" if campaign.digest == Campaign.Digest.DAILY else "weekly"
    context = {
        "site_name": site.site_name,
        "site_url": settings.SITE_URL,
        "label": label,
        "intro": campaign.intro,
        "pieces": pieces,
        "unsubscribe_url": UNSUBSCRIBE_MARK,
        "preferences_url": PREFERENCES_MARK,
    }
    first = pieces[0].article.title if pieces else ""
    more = f" and {len(pieces) - 1} more" if len(pieces) > 1 else ""
    return campaign_email_from(
        campaign_id=campaign.pk,
        subject=campaign.subject or f"Your {label} digest: {first}{more}",
        html=render_to_string("newsletter/digest_email.html", context),
        text=render_to_string("newsletter/digest_email.txt", context),
        site=site,
    )


_rendered: dict[tuple[int, int], tuple[datetime, CampaignEmail]] = {}


def digest_email(campaign: Campaign, content_id: int) -> CampaignEmail:
    """A digest content's email, rendered once per worker process (a few kept)."""
    key = (campaign.pk, content_id)
    in_content = DigestPiece.objects.filter(content_id=content_id).values("article_id")
    changed = Article.objects.filter(pk__in=in_content).aggregate(changed=Max("updated_at"))["changed"]
    cached = _rendered.get(key)
    if cached is not None and changed is not None and cached[0] == changed:
        return cached[1]
    article_ids = list(DigestPiece.objects.filter(content_id=content_id).values_list("article_id", flat=True))
    email = render_digest_email(campaign=campaign, article_ids=article_ids)
    if len(_rendered) >= 64:
        _rendered.clear()
    if changed is not None:
        _rendered[key] = (changed, email)
    return email


# --- Preview ------------------------------------------------------------------------


def preview_digest(*, subscriber: Subscriber, digest: str, now: datetime | None = None) -> CampaignEmail | None:
    """The next ``digest`` as ``subscriber`` would get it if it were sent now; None when it would be empty."""
    now = now or timezone.now()
    site = SiteSettings.load()
    last, _ = period_bounds(digest=digest, now=now, site=site)
    latest = Campaign.objects.filter(digest=digest, period_end__lte=now).order_by("-period_key").first()
    start = latest.period_end - OVERLAP if latest is not None and latest.period_end else last
    owed = list(owed_pieces(digest=digest, start=start, end=now, subscriber_id=subscriber.pk))
    if not owed:
        return None
    intro = str(getattr(site, f"{digest}_digest_intro", ""))
    campaign = Campaign(pk=0, digest=digest, period_key=now, period_start=start, period_end=now, intro=intro)
    return render_digest_email(campaign=campaign, article_ids=owed[0][2])
