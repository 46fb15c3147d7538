"""bench/ledger.py: the delivery ledger's size on disk before and after compaction.

Usage: python bench/ledger.py [--subscribers 100000] [--old 3] [--recent 3] [--db ep_bench_ledger]

Fills a PostgreSQL database of its own with N subscribers and OLD + RECENT finished
campaigns (one ledger row per reader each; the old ones ended 100 days ago), then measures
`pg_total_relation_size('newsletter_delivery')` (table, indexes, TOAST): before, right after
`compact_finished_campaigns()`, after a plain `VACUUM`, and after OLD new campaigns are planned into the
freed space. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--old", type=int, default=3, help="campaigns past the retention period")
    parser.add_argument("--recent", type=int, default=3, help="campaigns within it")
    parser.add_argument("--db", default="ep_bench_ledger")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", args.db], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.db], check=True)
    os.environ.update(
        {
            "DATABASE_URL": f"{args.pg}/{args.db}",
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "k" * 60,
            "ALLOWED_HOSTS": "127.0.0.1",
            "EMAIL_URL": "console://",
            "LOG_FORMAT": "plain",
            "DJANGO_SETTINGS_MODULE": "euro_prospects.settings",
        }
    )
    import django

    django.setup()
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from articles.models import Article
    from newsletter.compaction import compact_finished_campaigns
    from newsletter.models import Campaign

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO newsletter_subscriber (email, name, status, all_topics, cadence, source, consent_source, "
            "consent_user_agent, consent_version, created_at, unsubscribe_reason, soft_bounce_count, "
            "suppression_reason) "
            "SELECT 'reader' || g || '@bench.example', '', 'confirmed', true, 'immediate', 'import', "
            "'', '', '', now(), '', 0, '' FROM generate_series(1, %s) g",
            [args.subscribers],
        )

    def add_campaigns(count: int, days_ago: int, label: str) -> None:
        ended = timezone.now() - timedelta(days=days_ago)
        for number in range(count):
            article = Article.objects.create(
                title=f"Ledger piece {label} {number}", slug=f"ledger-{label}-{number}", status="published"
            )
            campaign = Campaign.objects.create(
                article=article, status=Campaign.Status.FINISHED, finished_at=ended, recipients=args.subscribers
            )
            with connection.cursor() as cursor:
                # As the engine leaves them: sent, with a provider id and a sent time.
                cursor.execute(
                    "INSERT INTO newsletter_delivery (campaign_id, subscriber_id, email, status, attempts, "
                    "last_error, provider_message_id, claimed_by, sent_at, created_at, updated_at) "
                    "SELECT %s, id, email, 'sent', 1, '', '<' || md5(id::text) || '@relay.example>', '', "
                    "now(), now(), now() FROM newsletter_subscriber",
                    [campaign.pk],
                )

    def size() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_total_relation_size('newsletter_delivery')")
            return int(cursor.fetchone()[0])

    def rows() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM newsletter_delivery")
            return int(cursor.fetchone()[0])

    def vacuum() -> None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM newsletter_delivery")

    add_campaigns(args.old, 100, "old")
    add_campaigns(args.recent, 10, "recent")
    vacuum()
    figures = [("before compaction", rows(), size(), None)]
    started = time.perf_counter()
    compacted = compact_finished_campaigns()
    took = time.perf_counter() - started
    figures.append(("after compact_finished_campaigns()", rows(), size(), took))
    vacuum()
    figures.append(("after VACUUM", rows(), size(), None))
    add_campaigns(args.old, 1, "new")
    figures.append((f"after {args.old} new campaigns", rows(), size(), None))

    print(f"{args.subscribers:,} readers, {args.old} campaigns past retention, {args.recent} within it")
    print(f"{'':34} {'rows':>12} {'total size':>12}")
    for name, count, total, seconds in figures:
        extra = f"  ({seconds:.1f} s, {compacted} campaigns)" if seconds is not None else ""
        print(f"{name:34} {count:>12,} {total / 2**20:>9.1f} MB{extra}")
    print(
        json.dumps(
            {
                "subscribers": args.subscribers,
                "old": args.old,
                "recent": args.recent,
                "compaction_seconds": round(took, 2),
                "sizes": {name: {"rows": count, "bytes": total} for name, count, total, _ in figures},
            }
        )
    )


if __name__ == "__main__":
    main()
