"""Bulk import of subscribers from CSV (columns ``email``, optional ``name`` and
``topics``), used by ``manage.py import_subscribers`` and the admin.

The file is read as a stream and written in chunks, so memory stays constant
however long the list is. Duplicates (in the file or already on the list),
invalid addresses, unknown topics, suppressed (erased) addresses and rows with
a control character (a NUL byte, a line break) in a cell are skipped; each skip
is reported with its row number (the header is row 1). Each chunk is committed
on its own: an import that stops (a broken file, a database error) says which
rows it imported before it stopped.

The admin runs imports as an ``ImportJob`` in a Celery worker (``start_import_job``,
``run_import_job``), the command in its own process.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TextIO

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from articles.models import Topic
from euro_prospects.celery import enqueue_on_commit
from euro_prospects.text import CONTROL_CHARACTERS, first_control_character
from newsletter.models import ImportFileChunk, ImportJob, Subscriber, Suppression, email_hash
from newsletter.services import InvalidEmail, normalise_email

CHUNK_SIZE = 10_000
CONFIRMATION_BATCH = 500
TOPIC_SEPARATORS = re.compile(r"[;|,]")


class ImportFileError(ValueError):
    """The import stopped: the file cannot be read as a subscriber CSV, or a chunk could not
    be stored. The message says exactly which rows were imported before it stopped."""

    def __init__(self, message: str, report: ImportReport | None = None) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ImportReport:
    imported: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    rows: int = 0
    # Every row up to this one is done: imported (committed) or skipped.
    done_through_row: int = 1

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def kept(self) -> str:
        """What an import that stopped here kept, in a sentence."""
        if self.done_through_row < 2:
            return "Nothing was imported."
        return (
            f"Rows 2 to {self.done_through_row} were imported as reported "
            f"({self.imported} new subscribers, {self.skipped_total} rows skipped); "
            f"nothing after row {self.done_through_row} was imported."
        )


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
    resume: ImportReport | None = None,
) -> ImportReport:
    """Import the CSV in ``file``. With ``confirmed`` the readers consented elsewhere;
    otherwise each new subscriber is pending and gets a confirmation email.

    ``resume``: the report of an earlier run of the same file that stopped; its rows
    up to ``done_through_row`` are passed over and its counts go on."""
    report = resume or ImportReport()
    resume_after = report.done_through_row
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
            if number <= resume_after:
                continue
            report.rows += 1
            refused = _control_character(row)
            if refused:
                skip(number, CONTROL_CHARACTERS.sub("?", (row.get("email") or "").strip()), refused)
                continue
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

    chunk: list[Candidate] = []

    def import_chunk() -> None:
        if chunk:
            try:
                _import_chunk(chunk, confirmed=confirmed, consent_source=consent_source, report=report, skip=skip)
            except DatabaseError as exc:
                first, last = chunk[0].row, chunk[-1].row
                raise ImportFileError(
                    f"Rows {first} to {last} could not be stored ({exc}). {report.kept()}", report
                ) from exc
            chunk.clear()
        report.done_through_row = report.rows + 1
        if on_progress is not None:
            on_progress(report)

    stream = candidates(_rows(file))
    while True:
        try:
            candidate = next(stream, None)
        except ImportFileError as exc:
            import_chunk()  # the rows read before the one that broke off
            raise ImportFileError(f"{exc} {report.kept()}", report) from None
        if candidate is None:
            break
        chunk.append(candidate)
        if len(chunk) >= chunk_size:
            import_chunk()
    import_chunk()
    return report


def _control_character(row: dict[str, str | None]) -> str:
    """Why a row is refused for a control character (a NUL byte, a line break) in a cell, or ""."""
    for column in ("email", "name", "topics"):
        found = first_control_character(row.get(column) or "")
        if found:
            return f"control character in {column}: {found}"
    return ""


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
    report.imported += len(ids)  # counted once the chunk is committed


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


# --- Imports started in the admin, run by a worker ----------------------------------

UPLOAD_CHUNK_BYTES = 1 << 20
SKIPPED_ROWS_KEPT = 1000


def start_import_job(*, upload: UploadedFile, confirmed: bool, by: Any) -> ImportJob:
    """Store the uploaded file with a new job and queue the job for a worker."""
    from newsletter.tasks import import_subscribers_file

    with transaction.atomic():
        job = ImportJob.objects.create(
            file_name=(upload.name or "upload.csv")[:255],
            file_size=upload.size or 0,
            confirmed=confirmed,
            created_by=by if getattr(by, "is_authenticated", False) else None,
        )
        for position, piece in enumerate(upload.chunks(UPLOAD_CHUNK_BYTES)):
            ImportFileChunk.objects.create(job=job, position=position, data=piece)
        enqueue_on_commit(import_subscribers_file, job.pk)
    return job


class _StoredFile(io.RawIOBase):
    """An import job's file read back from its chunks, one chunk in memory at a time."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.position = 0
        self.piece = b""
        self.offset = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.offset >= len(self.piece):
            data = (
                ImportFileChunk.objects.filter(job_id=self.job_id, position=self.position)
                .values_list("data", flat=True)
                .first()
            )
            if data is None:
                return 0
            self.piece, self.offset, self.position = bytes(data), 0, self.position + 1
        count = min(len(buffer), len(self.piece) - self.offset)
        buffer[:count] = self.piece[self.offset : self.offset + count]
        self.offset += count
        self.bytes_read += count
        return count


def run_import_job(*, job_id: int) -> ImportJob | None:
    """Run a queued import job, recording its progress after every chunk.

    Runs a job once: a second delivery of the task finds it no longer queued.
    The stored file is deleted when the job ends, whatever the outcome.
    """
    now = timezone.now()
    Status = ImportJob.Status
    if not _claimable().filter(pk=job_id).update(status=Status.RUNNING, updated_at=now):
        return None
    ImportJob.objects.filter(pk=job_id, started_at=None).update(started_at=now)
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    stored = _StoredFile(job.pk)
    text = io.TextIOWrapper(io.BufferedReader(stored, 1 << 16), encoding="utf-8-sig", newline="")
    # A job a dead worker left goes on after the last chunk it recorded. (A chunk committed
    # just before the worker died, but not yet recorded, is read again: its rows then count
    # as already on the list.)
    skipped_rows: list[list[Any]] = list(job.skipped_rows)
    progress = ImportReport(
        imported=job.imported, skipped=Counter(job.skipped_by_reason), rows=job.rows, done_through_row=job.rows + 1
    )

    def on_skip(row: int, email: str, reason: str) -> None:
        if len(skipped_rows) < SKIPPED_ROWS_KEPT:
            skipped_rows.append([row, email, reason])

    def record(report: ImportReport, **fields: Any) -> None:
        nonlocal progress
        progress = report
        values = {
            "bytes_read": stored.bytes_read,
            "rows": report.rows,
            "imported": report.imported,
            "skipped": report.skipped_total,
            "skipped_by_reason": dict(report.skipped),
            "skipped_rows": skipped_rows,
            "updated_at": timezone.now(),
        }
        ImportJob.objects.filter(pk=job.pk).update(**(values | fields))

    try:
        report = import_subscribers(
            file=text,
            confirmed=job.confirmed,
            consent_source=f"admin import of {job.file_name} by {job.created_by or 'a removed user'}",
            on_skip=on_skip,
            on_progress=record,
            resume=progress,
        )
    except ImportFileError as exc:
        record(exc.report or progress, status=Status.FAILED, error=str(exc), finished_at=timezone.now())
    except Exception as exc:
        error = f"The import stopped on an unexpected error ({type(exc).__name__}). {progress.kept()}"
        record(progress, status=Status.FAILED, error=error, finished_at=timezone.now())
        raise
    else:
        record(report, status=Status.FINISHED, bytes_read=job.file_size, finished_at=timezone.now())
    finally:
        text.close()
        ImportFileChunk.objects.filter(job_id=job.pk).delete()
    job.refresh_from_db()
    return job


def _claimable() -> QuerySet[ImportJob]:
    """Jobs a worker may take: queued ones, and running ones whose worker stopped
    recording progress for longer than a lease (it died)."""
    stalled_before = timezone.now() - timedelta(seconds=settings.NEWSLETTER_LEASE_SECONDS)
    Status = ImportJob.Status
    return ImportJob.objects.filter(Q(status=Status.QUEUED) | Q(status=Status.RUNNING, updated_at__lt=stalled_before))


def recover_stalled_imports() -> list[int]:
    """Queue again the jobs no worker has moved on for a lease; returns their ids."""
    from newsletter.tasks import import_subscribers_file

    stalled = list(_claimable().filter(status=ImportJob.Status.RUNNING).values_list("pk", flat=True))
    for job_id in stalled:
        import_subscribers_file.delay(job_id)
    return stalled
