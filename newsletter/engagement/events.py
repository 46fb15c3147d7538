"""Click events: recorded in Redis by the redirect, moved into PostgreSQL in batches.

The redirect only appends an entry to a Redis stream (``record``): link id, subscriber
id, whether the request was a HEAD and whether its agent looks like a browser (the
user agent itself is not kept). ``flush_events`` (a beat task, every
``NEWSLETTER_ENGAGEMENT_FLUSH_INTERVAL`` seconds) takes the entries older than the
burst window, classifies each one and stores it as a ``ClickEvent`` under a per-campaign
pseudonym of the reader. An event is a scanner hit when it is a HEAD, comes from an
agent that is no browser, comes within ``NEWSLETTER_SCANNER_GRACE_SECONDS`` of the
delivery to that reader (from the ledger), or is part of a burst: that reader's copy
fetched at least half of the message's links (and at least two) within
``NEWSLETTER_SCANNER_BURST_SECONDS`` of it.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from euro_prospects.health import broker_redis
from newsletter.engagement.models import CampaignLink, ClickEvent, ReaderClick
from newsletter.engagement.tokens import pseudonym
from newsletter.models import Delivery, Subscriber

logger = logging.getLogger("newsletter.engagement")

# Agents that say they are a browser and are not one, and the usual scanners and libraries.
_NOT_A_BROWSER = re.compile(
    r"bot|crawl|spider|scan|preview|proofpoint|mimecast|barracuda|safelinks|urldefense|headless|"
    r"python|curl|wget|java/|go-http|okhttp|libwww|httpclient|facebookexternalhit|slurp",
    re.IGNORECASE,
)
_FLUSH_LOCK = 7_340_017
_STREAM_CAP = 2_000_000  # entries kept in Redis if no worker flushes them for a long time


def stream_key() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:engagement:events"


def browser_like(user_agent: str) -> bool:
    return user_agent.startswith("Mozilla/") and not _NOT_A_BROWSER.search(user_agent)


def record(*, link_id: int, subscriber_id: int, head: bool, user_agent: str) -> None:
    """Append one fetch of a tracked link to the Redis stream; never fails the request."""
    # The time of the fetch comes from this host's clock, the clock that wrote the delivery's
    # sent_at the scanner rules compare it with, not from the Redis server's.
    fields = {
        "l": link_id,
        "s": subscriber_id,
        "h": int(head),
        "b": int(browser_like(user_agent)),
        "t": f"{timezone.now().timestamp():.3f}",
    }
    try:
        broker_redis().xadd(stream_key(), fields, maxlen=_STREAM_CAP, approximate=True)  # type: ignore[arg-type]
    except redis.RedisError as exc:
        logger.warning("event=click_not_recorded link=%s error=%r", link_id, exc)


@dataclass
class _Event:
    event_id: str
    at: datetime
    link_id: int
    subscriber_id: int
    head: bool
    browser: bool
    campaign_id: int = 0
    kind: str = ""


def _parse(entry_id: bytes, fields: dict[bytes, bytes]) -> _Event | None:
    try:
        at = float(fields[b"t"]) if b"t" in fields else int(entry_id.split(b"-")[0]) / 1000
        return _Event(
            event_id=entry_id.decode(),
            at=datetime.fromtimestamp(at, tz=UTC),
            link_id=int(fields[b"l"]),
            subscriber_id=int(fields[b"s"]),
            head=fields.get(b"h") == b"1",
            browser=fields.get(b"b") == b"1",
        )
    except (KeyError, ValueError):
        return None


def flush_events(*, batch_size: int = 5000) -> int:
    """Move the settled events from Redis into ClickEvent rows; returns how many it took.

    An entry is settled once the burst window after it has passed, so that every fetch
    that could make it part of a burst is known. Safe to run twice at once (a lock) and
    to repeat after a crash (each entry is stored once, by its stream id).
    """
    client = broker_redis()
    window = timedelta(seconds=settings.NEWSLETTER_SCANNER_BURST_SECONDS)
    now = timezone.now()  # the clock the events' times come from (``record``)
    entries: list[tuple[bytes, dict[bytes, bytes]]] = client.xrange(  # type: ignore[assignment]
        stream_key(), "-", "+", count=batch_size
    )
    events = [event for event in (_parse(i, f) for i, f in entries) if event is not None]
    settled_before = now - window
    if len(entries) == batch_size and events:  # more wait in the stream: the last read bounds what is known
        settled_before = min(settled_before, events[-1].at - window)
    settled = [event for event in events if event.at < settled_before]
    unreadable = [i for i, f in entries if _parse(i, f) is None]
    if not settled:
        if unreadable:
            client.xdel(stream_key(), *unreadable)
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FLUSH_LOCK])
        stored = _store(settled, context=events)
    client.xdel(stream_key(), *[event.event_id for event in settled], *unreadable)
    logger.info("event=engagement_flushed entries=%s stored=%s", len(settled), stored)
    return len(settled)


def _store(settled: list[_Event], *, context: list[_Event]) -> int:
    links = {
        row[0]: row[1:]
        for row in CampaignLink.objects.filter(id__in={e.link_id for e in context}).values_list(
            "id", "campaign_id", "kind"
        )
    }
    # Fetches made with a preview's or a test email's links (reader 0) are not counted.
    context = [event for event in context if event.link_id in links and event.subscriber_id]
    for event in context:
        event.campaign_id = links[event.link_id][0]
    settled = [event for event in settled if event.link_id in links and event.subscriber_id]
    readers = {(e.campaign_id, e.subscriber_id) for e in context if e.subscriber_id}
    existing = set(Subscriber.objects.filter(pk__in={s for _, s in readers}).values_list("pk", flat=True))
    names = {(c, s): pseudonym(c, s) for c, s in readers if s in existing}
    history = _history(names, settled)
    sent_at = _delivered_at(readers)
    links_in_message = _links_in_message({e.campaign_id for e in settled})
    nearby = _nearby(context, names, settled)
    rows, reader_clicks = [], []
    for event in sorted(settled, key=lambda e: e.event_id):
        name = names.get((event.campaign_id, event.subscriber_id), "")
        kind = _classify(event, links[event.link_id][1], sent_at, nearby, links_in_message)
        first_for_link = first_for_reader = False
        if name and kind != ClickEvent.Kind.SCANNER:
            seen = history[(event.campaign_id, name)]
            first_for_link = (kind, event.link_id) not in seen
            first_for_reader = kind == ClickEvent.Kind.HUMAN and (kind, 0) not in seen
            seen.update({(kind, event.link_id), (kind, 0)})
        rows.append(
            ClickEvent(
                event_id=event.event_id,
                campaign_id=event.campaign_id,
                link_id=event.link_id,
                at=event.at,
                kind=kind,
                reader=name,
                first_for_link=first_for_link,
                first_for_reader=first_for_reader,
            )
        )
        if settings.NEWSLETTER_PER_READER_STATS and name and kind == ClickEvent.Kind.HUMAN:
            reader_clicks.append(
                ReaderClick(
                    subscriber_id=event.subscriber_id, campaign_id=event.campaign_id, link_id=event.link_id, at=event.at
                )
            )
    created = ClickEvent.objects.bulk_create(rows, ignore_conflicts=True)
    ReaderClick.objects.bulk_create(reader_clicks)
    return len(created)


def _history(names: dict[tuple[int, int], str], settled: list[_Event]) -> dict[tuple[int, str], set[tuple[str, int]]]:
    """What each reader already did in the campaign: (kind, link id) and (kind, 0) once any link."""
    history: dict[tuple[int, str], set[tuple[str, int]]] = defaultdict(set)
    campaigns = {c for c, _ in names}
    if not campaigns:
        return history
    done = ClickEvent.objects.filter(
        campaign_id__in=campaigns,
        reader__in=set(names.values()),
        kind__in=[ClickEvent.Kind.HUMAN, ClickEvent.Kind.OPEN],
    ).exclude(event_id__in=[e.event_id for e in settled])
    for campaign_id, reader, kind, link_id in done.values_list("campaign_id", "reader", "kind", "link_id"):
        history[(campaign_id, reader)].update({(kind, link_id), (kind, 0)})
    return history


def _delivered_at(readers: Iterable[tuple[int, int]]) -> dict[tuple[int, int], datetime]:
    pairs = set(readers)
    if not pairs:
        return {}
    rows = Delivery.objects.filter(
        campaign_id__in={c for c, _ in pairs}, subscriber_id__in={s for _, s in pairs}, sent_at__isnull=False
    ).values_list("campaign_id", "subscriber_id", "sent_at")
    return {(c, s): at for c, s, at in rows if (c, s) in pairs and at is not None}


def _links_in_message(campaign_ids: set[int]) -> dict[int, int]:
    from django.db.models import Count

    counted = (
        CampaignLink.objects.filter(campaign_id__in=campaign_ids, kind=CampaignLink.Kind.LINK)
        .values("campaign_id")
        .annotate(n=Count("id"))
    )
    return {row["campaign_id"]: row["n"] for row in counted}


def _classify(
    event: _Event,
    link_kind: str,
    sent_at: dict[tuple[int, int], datetime],
    nearby: dict[tuple[int, int], list[tuple[datetime, int]]],
    links_in_message: dict[int, int],
) -> str:
    if link_kind == CampaignLink.Kind.OPEN:
        return ClickEvent.Kind.OPEN
    if event.head or not event.browser:
        return ClickEvent.Kind.SCANNER
    delivered = sent_at.get((event.campaign_id, event.subscriber_id))
    grace = timedelta(seconds=settings.NEWSLETTER_SCANNER_GRACE_SECONDS)
    if delivered is not None and event.at - delivered < grace:
        return ClickEvent.Kind.SCANNER
    links = links_in_message.get(event.campaign_id, 0)
    threshold = max(2, math.ceil(links * settings.NEWSLETTER_SCANNER_BURST_SHARE))
    if links >= threshold:
        window = timedelta(seconds=settings.NEWSLETTER_SCANNER_BURST_SECONDS)
        fetched = {
            link_id for at, link_id in nearby[(event.campaign_id, event.subscriber_id)] if abs(at - event.at) <= window
        }
        if len(fetched) >= threshold:
            return ClickEvent.Kind.SCANNER
    return ClickEvent.Kind.HUMAN


def _nearby(
    context: list[_Event], names: dict[tuple[int, int], str], settled: list[_Event]
) -> dict[tuple[int, int], list[tuple[datetime, int]]]:
    """Each reader's fetches (time, link id) that a burst could include: those still in
    Redis and those stored by an earlier flush within the burst window."""
    nearby: dict[tuple[int, int], list[tuple[datetime, int]]] = defaultdict(list)
    for event in context:
        nearby[(event.campaign_id, event.subscriber_id)].append((event.at, event.link_id))
    if names and settled:
        window = timedelta(seconds=settings.NEWSLETTER_SCANNER_BURST_SECONDS)
        by_name = {(c, name): s for (c, s), name in names.items()}
        stored = ClickEvent.objects.filter(
            campaign_id__in={c for c, _ in names},
            reader__in=set(names.values()),
            at__gte=min(e.at for e in settled) - window,
        ).exclude(event_id__in=[e.event_id for e in settled])
        for campaign_id, reader, at, link_id in stored.values_list("campaign_id", "reader", "at", "link_id"):
            if (campaign_id, reader) in by_name:
                nearby[(campaign_id, by_name[(campaign_id, reader)])].append((at, link_id))
    return nearby
