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
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from articles.models import Topic
from euro_prospects.celery import enqueue_on_commit
from newsletter.models import Subscriber, Suppression, email_hash
from newsletter.services import InvalidEmail, normalise_email

CHUNK_SIZE = 10_000
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


@dataclass(slots=True)
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
            topic_ids: list[int] = []
            topics = row.get("topics")
            if topics:
                keys = [key.strip().lower() for key in TOPIC_SEPARATORS.split(topics) if key.strip()]
                unknown = [key for key in keys if key not in topics_by_key]
                if unknown:
                    skip(number, email, f"unknown topic: {', '.join(unknown)}")
                    continue
                topic_ids = [topics_by_key[key] for key in keys]
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
    now = timezone.now()
    template = Subscriber(
        status=Subscriber.Status.CONFIRMED if confirmed else Subscriber.Status.PENDING,
        source=Subscriber.Source.IMPORT,
        consent_at=now,
        consent_source=consent_source[:200],
        consent_version=settings.NEWSLETTER_CONSENT_VERSION,
        created_at=now,
        confirmed_at=now if confirmed else None,
        confirmation_sent_at=None if confirmed else now,
    )
    candidates = list(unique.values())
    with transaction.atomic():
        if connection.vendor == "postgresql":
            ids = _insert_by_copy(candidates, template)
        else:
            ids = _insert_by_bulk_create(candidates, template)
        report.imported += len(ids)
        missing = [c for c in candidates if c.email not in ids]
        if missing:
            hashes = Suppression.objects.filter(email_hash__in=[email_hash(c.email) for c in missing])
            suppressed = set(hashes.values_list("email_hash", flat=True))
            for c in missing:
                if email_hash(c.email) in suppressed:
                    skip(c.row, c.email, "suppressed: the address asked to be erased or was removed")
                else:
                    skip(c.row, c.email, "duplicate: already on the list")
        Through = Subscriber.topics.through
        Through.objects.bulk_create(
            [
                Through(subscriber_id=ids[c.email], topic_id=topic_id)
                for c in candidates
                if c.topic_ids and c.email in ids
                for topic_id in set(c.topic_ids)
            ]
        )
        if not confirmed:
            from newsletter.tasks import send_confirmation_emails

            pks = sorted(ids.values())
            for start in range(0, len(pks), CONFIRMATION_BATCH):
                enqueue_on_commit(send_confirmation_emails, pks[start : start + CONFIRMATION_BATCH])


# Columns the import fills per row; every other column takes the template's value.
_PER_ROW = {"id", "email", "name", "all_topics"}


def _insert_by_copy(candidates: list[Candidate], template: Subscriber) -> dict[str, int]:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT … SELECT that
    leaves out suppressed addresses and, through ON CONFLICT DO NOTHING, addresses
    already on the list. Returns the new rows' ids by address."""
    table = Subscriber._meta.db_table
    constant = [f for f in Subscriber._meta.concrete_fields if f.attname not in _PER_ROW]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in constant)
    values = [f.get_db_prep_save(getattr(template, f.attname), connection) for f in constant]
    with connection.cursor() as cursor:
        # A temporary table lives as long as the connection; emptied for every chunk.
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS subscriber_import "
            "(email text, name text, all_topics boolean, email_hash text)"
        )
        cursor.execute("TRUNCATE subscriber_import")
        with cursor.cursor.copy("COPY subscriber_import (email, name, all_topics, email_hash) FROM STDIN") as copy:
            for c in candidates:
                copy.write_row((c.email, c.name, not c.topic_ids, email_hash(c.email)))
        cursor.execute(
            f"INSERT INTO {table} (email, name, all_topics, {columns}) "  # noqa: S608 - names from the model
            f"SELECT email, name, all_topics, {', '.join(['%s'] * len(values))} FROM subscriber_import AS row "
            f"WHERE NOT EXISTS (SELECT 1 FROM {Suppression._meta.db_table} AS s WHERE s.email_hash = row.email_hash) "
            "ON CONFLICT DO NOTHING RETURNING email, id",
            values,
        )
        return dict(cursor.fetchall())


def _insert_by_bulk_create(candidates: list[Candidate], template: Subscriber) -> dict[str, int]:
    """Other databases: leave out existing and suppressed addresses, bulk-insert the
    rest (ignoring conflicts with concurrent sign-ups) and read back their ids."""
    lower = [c.email.lower() for c in candidates]
    existing = set(
        Subscriber.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower__in=lower)
        .values_list("email_lower", flat=True)
    )
    suppressed = set(
        Suppression.objects.filter(email_hash__in=[email_hash(key) for key in lower]).values_list(
            "email_hash", flat=True
        )
    )
    fields = [f.attname for f in Subscriber._meta.concrete_fields if f.attname not in _PER_ROW]
    subscribers = []
    for c in candidates:
        if c.email.lower() in existing or email_hash(c.email) in suppressed:
            continue
        subscriber = Subscriber(email=c.email, name=c.name, all_topics=not c.topic_ids)
        for name in fields:
            setattr(subscriber, name, getattr(template, name))
        subscribers.append(subscriber)
    Subscriber.objects.bulk_create(subscribers, ignore_conflicts=True)
    return dict(
        Subscriber.objects.filter(
            email__in=[s.email for s in subscribers], consent_at=template.consent_at, source=template.source
        ).values_list("email", "pk")
    )
