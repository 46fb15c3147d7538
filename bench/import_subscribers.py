"""Benchmark `manage.py import_subscribers` on PostgreSQL.

Generates a CSV of ROWS subscribers (default 100,000; 1% invalid, 1% duplicate),
imports it into a fresh database with --confirmed, and prints a table and a
final JSON line with rows per second. Run by hand, never in CI:

    .venv/bin/python bench/import_subscribers.py [--rows 100000] [--database ep_bench_import]

Needs PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth) or --database-url.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(path: Path, rows: int) -> None:
    rng = random.Random(42)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["email", "name", "topics"])
        for n in range(rows):
            if n % 100 == 50:
                writer.writerow([f"broken-{n}-at-example.org", "Broken Row", ""])
            elif n % 100 == 75:
                writer.writerow([f"reader{n - 1}@example.org", "Duplicate Row", ""])
            else:
                writer.writerow([f"reader{n}@example.org", f"Reader {rng.randint(1, 10**6)}", ""])


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database", default="ep_bench_import")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    url = args.database_url or f"postgres://postgres@127.0.0.1:5432/{args.database}"
    if not args.database_url:
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", args.database], check=True)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.database], check=True)
    env = os.environ | {"DATABASE_URL": url, "DEBUG": "true"}
    manage(env, "migrate", "--noinput")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subscribers.csv"
        started = time.perf_counter()
        generate(path, args.rows)
        generated = time.perf_counter() - started
        size = path.stat().st_size
        report = Path(tmp) / "skipped.csv"
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        result = manage(env, "import_subscribers", str(path), "--confirmed", "--no-progress", "--report", str(report))
        seconds = time.perf_counter() - started
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        skipped = sum(1 for _ in report.open()) - 1
    count = manage(env, "shell", "-c", "from newsletter.models import Subscriber; print(Subscriber.objects.count())")
    imported = int(count.stdout.strip().splitlines()[-1])
    summary = result.stdout.strip().splitlines()[-1]
    import_seconds = float(re.search(r"in ([0-9.]+)s", summary)[1])  # type: ignore[index]
    rate = args.rows / import_seconds
    rows = [
        ("rows in file", f"{args.rows:,}"),
        ("file size", f"{size / 1e6:.1f} MB"),
        ("generate CSV", f"{generated:.2f} s"),
        ("whole command, incl. Python and Django start-up", f"{seconds:.2f} s"),
        ("import itself (read, validate, insert)", f"{import_seconds:.2f} s"),
        ("imported / skipped", f"{imported:,} / {skipped:,}"),
        ("rows per second", f"{rate:,.0f}"),
        ("peak memory of the command", f"{max(peak_kib, before) / 1024:.0f} MiB"),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  -----")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(summary)
    print(
        json.dumps(
            {
                "bench": "import_subscribers",
                "database": "postgresql",
                "rows": args.rows,
                "imported": imported,
                "skipped": skipped,
                "seconds": round(import_seconds, 3),
                "command_seconds": round(seconds, 3),
                "rows_per_second": round(rate),
                "peak_rss_mib": round(peak_kib / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
