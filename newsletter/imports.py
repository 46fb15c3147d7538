"""Bulk import of subscribers from CSV (columns ``email``, optional ``name`` and
``topics``), used by ``manage.py import_subscribers`` and the admin.

The file is read as a stream and written in chunks, so memory stays constant
however long the list is. Duplicates (in the file or already on the list),
invalid addresses, unknown topics and suppressed (erased) addresses are
skipped; each skip is reported with its row number (the header is row 1).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TextIO

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Lower
from django.utils import timezone

from articles.models import Topic
from euro_prospects.celery import enqueue_on_commit
from newsletter.models import Subscriber, Suppression, email_hash
from newsletter.services import InvalidEmail, normalise_email

CHUNK_SIZE = 5000
CONFIRMATION_BATCH = 500
TOPIC_SEPARATORS = re.compile(r"[;|,]")


class ImportFileError(ValueError):
    """The file cannot be read as a subscriber CSV; rows before the error may be imported."""


@dataclass
class ImportReport:
    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


@dataclass
class Candidate:
    row: int
    email: str
    name: str
    topic_ids: list[int]


SkipCallback = Callable[[int, str, str], None]
ProgressCallback = Callable[[ImportReport], None]


def _rows(file: TextIO) -> Iterator[tuple[int, dict[str, str | None]]]:
    reader = csv.DictReader(file, strict=True)
    try:
        header = [name.strip().lower() for name in (reader.fieldnames or [])]
        if "email" not in header:
            raise ImportFileError("The first row must be a header with an 'email' column (optional: name, topics).")
        reader.fieldnames = header
        yield from enumerate(reader, start=2)
    except csv.Error as exc:
        raise ImportFileError(f"Row {reader.line_num}: the file is not valid CSV ({exc}).") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"Near row {reader.line_num + 1}: the file is not UTF-8 text.") from None


def import_subscribers(
    *,
    file: TextIO,
    confirmed: bool,
    consent_source: str,
    on_skip: SkipCallback | None = None,
    on_progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> ImportReport:
    """Import the CSV in ``file``. With ``confirmed`` the readers consented elsewhere;
    otherwise each new subscriber is pending and gets a confirmation email."""
    report = ImportReport()
    topics_by_key: dict[str, int] = {}
    for topic in Topic.objects.all():
        topics_by_key[topic.slug.lower()] = topic.pk
        topics_by_key[topic.name.lower()] = topic.pk

    def skip(row: int, email: str, reason: str) -> None:
        report.skipped[reason.split(":")[0]] += 1
        if on_skip is not None:
            on_skip(row, email, reason)

    def candidates(rows: Iterable[tuple[int, dict[str, str | None]]]) -> Iterator[Candidate]:
        for number, row in rows:
            report.rows += 1
            raw = (row.get("email") or "").strip()
            try:
                email = normalise_email(raw)
            except InvalidEmail as exc:
                skip(number, raw, f"invalid email: {exc}")
                continue
            name = (row.get("name") or "").strip()
            if len(name) > 120:
                skip(number, email, "name too long: more than 120 characters")
                continue
            topic_ids = []
            unknown = []
            for key in TOPIC_SEPARATORS.split(row.get("topics") or ""):
                key = key.strip().lower()
                if key:
                    if key in topics_by_key:
                        topic_ids.append(topics_by_key[key])
                    else:
                        unknown.append(key)
            if unknown:
                skip(number, email, f"unknown topic: {', '.join(unknown)}")
                continue
            yield Candidate(number, email, name, topic_ids)

    stream = candidates(_rows(file))
    while chunk := list(islice(stream, chunk_size)):
        _import_chunk(chunk, confirmed=confirmed, consent_source=consent_source, report=report, skip=skip)
        if on_progress is not None:
            on_progress(report)
    return report


def _import_chunk(
    chunk: list[Candidate], *, confirmed: bool, consent_source: str, report: ImportReport, skip: SkipCallback
) -> None:
    unique: dict[str, Candidate] = {}
    for candidate in chunk:
        key = candidate.email.lower()
        if key in unique:
            skip(candidate.row, candidate.email, f"duplicate: same address as row {unique[key].row}")
        else:
            unique[key] = candidate
    existing = set(
        Subscriber.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=list(unique))
        .values_list("email_lower", flat=True)
    )
    hashes = {email_hash(key): key for key in unique if key not in existing}
    suppressed_hashes = Suppression.objects.filter(email_hash__in=list(hashes)).values_list("email_hash", flat=True)
    suppressed = {hashes[value] for value in suppressed_hashes}
    now = timezone.now()
    status = Subscriber.Status.CONFIRMED if confirmed else Subscriber.Status.PENDING
    new: list[Candidate] = []
    for key, candidate in unique.items():
        if key in existing:
            skip(candidate.row, candidate.email, "duplicate: already on the list")
        elif key in suppressed:
            skip(candidate.row, candidate.email, "suppressed: the address asked to be erased or was removed")
        else:
            new.append(candidate)
    subscribers = [
        Subscriber(
            email=candidate.email,
            name=candidate.name,
            status=status,
            all_topics=not candidate.topic_ids,
            source=Subscriber.Source.IMPORT,
            consent_at=now,
            consent_source=consent_source[:200],
            consent_version=settings.NEWSLETTER_CONSENT_VERSION,
            confirmed_at=now if confirmed else None,
            confirmation_sent_at=None if confirmed else now,
        )
        for candidate in new
    ]
    with transaction.atomic():
        # ignore_conflicts: an address that subscribed through the form meanwhile is kept as it is.
        Subscriber.objects.bulk_create(subscribers, ignore_conflicts=True)
        report.imported += len(subscribers)
        with_topics = {c.email.lower(): c.topic_ids for c in new if c.topic_ids}
        if with_topics or not confirmed:
            ids = dict(
                Subscriber.objects.annotate(email_lower=Lower("email"))
                .filter(email_lower__in=[c.email.lower() for c in new], consent_at=now, source=Subscriber.Source.IMPORT)
                .values_list("email_lower", "pk")
            )
            Through = Subscriber.topics.through
            Through.objects.bulk_create(
                [
                    Through(subscriber_id=ids[key], topic_id=topic_id)
                    for key, topic_ids in with_topics.items()
                    if key in ids
                    for topic_id in set(topic_ids)
                ]
            )
            if not confirmed:
                from newsletter.tasks import send_confirmation_emails

                pks = sorted(ids.values())
                for start in range(0, len(pks), CONFIRMATION_BATCH):
                    enqueue_on_commit(send_confirmation_emails, pks[start : start + CONFIRMATION_BATCH])
