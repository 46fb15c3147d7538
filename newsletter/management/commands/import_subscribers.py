"""manage.py import_subscribers FILE.csv [--confirmed] [--report SKIPPED.csv]"""

from __future__ import annotations

import csv
import io
import os
import sys
import time
from typing import Any, BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from euro_prospects.text import spreadsheet_cell
from newsletter.imports import ImportFileError, ImportReport, import_subscribers


class CountingReader(io.RawIOBase):
    """Counts the bytes read from a binary file, for the progress bar."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self.raw.readinto(buffer)  # type: ignore[attr-defined]
        self.bytes_read += count or 0
        return count or 0


class Command(BaseCommand):
    help = (
        "Import subscribers from a CSV file with an 'email' column and optional 'name' and 'topics' "
        "(topic slugs or names separated by ';'). Without --confirmed each new subscriber gets a "
        "confirmation email. Skipped rows are listed with their row number and reason."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="CSV file, UTF-8, with a header row")
        parser.add_argument(
            "--confirmed",
            action="store_true",
            help="the readers already consented elsewhere: import them as confirmed, send no confirmation",
        )
        parser.add_argument("--source", default="", help="where the consent was given (default: the file name)")
        parser.add_argument("--report", help="write skipped rows to this CSV file instead of listing them")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["file"]
        try:
            raw = open(path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise CommandError(f"Cannot open {path}: {exc.strerror}") from None
        total_bytes = os.fstat(raw.fileno()).st_size
        counting = CountingReader(raw)
        text = io.TextIOWrapper(io.BufferedReader(counting, 1 << 16), encoding="utf-8-sig", newline="")
        report_file = open(options["report"], "w", newline="") if options["report"] else None  # noqa: SIM115
        report_writer = csv.writer(report_file) if report_file else None
        if report_writer:
            report_writer.writerow(["row", "email", "reason"])
        show_progress = sys.stderr.isatty() and not options["no_progress"]
        started = time.monotonic()

        def on_skip(row: int, email: str, reason: str) -> None:
            if report_writer:
                report_writer.writerow([row, spreadsheet_cell(email), reason])
            else:
                self.stdout.write(f"row {row}: skipped {email or '(empty)'}: {reason}")

        def on_progress(report: ImportReport) -> None:
            if show_progress:
                done = counting.bytes_read / total_bytes if total_bytes else 1.0
                bar = "#" * int(done * 30)
                rate = report.rows / max(time.monotonic() - started, 1e-6)
                sys.stderr.write(f"\r[{bar:<30}] {done:4.0%} {report.rows} rows, {rate:,.0f} rows/s")
                sys.stderr.flush()

        try:
            report = import_subscribers(
                file=text,
                confirmed=options["confirmed"],
                consent_source=options["source"] or f"import of {os.path.basename(path)}",
                on_skip=on_skip,
                on_progress=on_progress,
            )
        except ImportFileError as exc:
            raise CommandError(str(exc)) from None
        finally:
            text.close()
            if report_file:
                report_file.close()
            if show_progress:
                sys.stderr.write("\n")
        seconds = time.monotonic() - started
        reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skipped.items()))
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported {report.imported} of {report.rows} rows in {seconds:.1f}s; "
                f"skipped {report.skipped_total}" + (f" ({reasons})" if reasons else "") + "."
            )
        )
