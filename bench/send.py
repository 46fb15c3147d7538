"""make bench-send: publish-to-last-message time of the sending engine against Postfix's smtp-sink.

Usage: python bench/send.py [--subscribers 100000] [--db ep_send_bench] [--digest] [--synchronous-commit true|false]

It fills a PostgreSQL database of its own with N confirmed subscribers and a
1,500-word article, starts `smtp-sink` and two Celery worker processes, sends the
article's publish signal and waits for the ledger to show every delivery sent. In
the same run it measures `smtp-source` (same message size, 2 sessions, persistent
connections) and a naive loop of one Django EmailMultiAlternatives per recipient
over one connection. With ``--digest`` it then switches every reader to the weekly
digest on one or two of 8 topics, publishes 10 pieces and sends the digest with the
same workers: planning time, digest emails/s against the article's in this run, and
worker memory. Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--db", default="ep_send_bench")
    parser.add_argument("--pg", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--smtp-port", type=int, default=2526)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--naive-count", type=int, default=3000)
    parser.add_argument("--source-count", type=int, default=20000)
    parser.add_argument(
        "--synchronous-commit",
        choices=["true", "false"],
        default="true",
        help="NEWSLETTER_LEDGER_SYNCHRONOUS_COMMIT for the workers; true (the default) is what production runs. "
        "false is faster but measures a ledger that a crash of the PostgreSQL server could lose the last ~0.5 s "
        "of (those messages would be sent again)",
    )
    parser.add_argument(
        "--digest",
        action="store_true",
        help="then also send a weekly digest: every reader switched to weekly on 1 or 2 of 8 topics, 10 pieces",
    )
    return parser.parse_args()


WORDS = [
    "council",
    "commission",
    "parliament",
    "member",
    "states",
    "budget",
    "reform",
    "enlargement",
    "accession",
    "energy",
    "grid",
    "interconnector",
    "farmers",
    "subsidy",
    "border",
    "regional",
    "cohesion",
    "fund",
    "treaty",
    "vote",
    "majority",
    "coalition",
    "minister",
    "summit",
    "negotiation",
    "proposal",
    "directive",
    "regulation",
    "market",
    "competition",
    "tariff",
    "trade",
    "partner",
    "agreement",
    "court",
    "ruling",
    "citizens",
    "election",
    "campaign",
    "candidate",
    "debate",
    "policy",
    "rural",
    "urban",
    "transport",
    "rail",
    "port",
    "harbour",
    "fisheries",
    "quota",
]


def invented_body(words: int) -> str:
    rng = random.Random(7)
    paragraphs = []
    written = 0
    while written < words:
        sentence_count = rng.randint(3, 6)
        sentences = []
        for _ in range(sentence_count):
            length = rng.randint(8, 20)
            sentence = " ".join(rng.choice(WORDS) for _ in range(length))
            sentences.append(sentence.capitalize() + ".")
            written += length
        paragraphs.append("<p>" + " ".join(sentences) + "</p>")
        if len(paragraphs) % 4 == 0:
            paragraphs.append(f"<h2>Section {len(paragraphs) // 4}</h2>")
    return "\n".join(paragraphs)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes (and their threads)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def peak_rss_kib(pids: list[int]) -> int:
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except FileNotFoundError:
            pass
    return peak


def main() -> None:
    args = parse_args()
    database_url = f"{args.pg}/{args.db}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.db], capture_output=True)
    os.environ.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": args.redis,
            "CELERY_BROKER_URL": args.redis,
            "EMAIL_URL": f"smtp://127.0.0.1:{args.smtp_port}",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "plain",
            # As in production: with DEBUG on, Django keeps the last 9,000 queries of
            # each worker in memory, which a worker's RSS then shows as growth.
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "k" * 60,
            "ALLOWED_HOSTS": "127.0.0.1",
            "NEWSLETTER_LEDGER_SYNCHRONOUS_COMMIT": args.synchronous_commit,
            "DJANGO_SETTINGS_MODULE": "euro_prospects.settings",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from articles.models import Article, ArticleAuthor, Author, Topic
    from articles.signals import article_published
    from euro_prospects.celery import app as celery_app
    from newsletter.models import Campaign, Delivery, Subscriber
    from newsletter.sending.message import Recipient, render_campaign_email

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE newsletter_delivery, newsletter_campaign, newsletter_subscriber_topics, newsletter_subscriber "
            "RESTART IDENTITY CASCADE"
        )
        cursor.execute(
            "INSERT INTO newsletter_subscriber (email, name, status, all_topics, cadence, source, consent_source, "
            "consent_user_agent, consent_version, created_at, unsubscribe_reason, soft_bounce_count, "
            "suppression_reason) "
            "SELECT 'reader' || g || '@bench.example', 'Reader ' || g, 'confirmed', true, 'immediate', 'import', "
            "'', '', '', now(), '', 0, '' FROM generate_series(1, %s) g",
            [args.subscribers],
        )
        cursor.execute("VACUUM ANALYZE newsletter_subscriber")
    Article.objects.filter(slug="bench-article").delete()
    topic, _ = Topic.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    author, _ = Author.objects.get_or_create(slug="bench-writer", defaults={"name": "Bench Writer", "role": "Writer"})
    body = invented_body(1500)
    article = Article.objects.create(
        title="A long look at the interconnector budget",
        slug="bench-article",
        standfirst="What the member states agreed, and what they left for later.",
        body=body,
        status=Article.Status.PUBLISHED,
        published_at=django.utils.timezone.now(),
        reading_minutes=8,
    )
    ArticleAuthor.objects.create(article=article, author=author)
    article.topics.add(topic, through_defaults={"position": 0})

    sink = subprocess.Popen(
        ["smtp-sink", "-u", "root", f"127.0.0.1:{args.smtp_port}", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        results = run(args, article, celery_app, article_published, workers, Campaign, Delivery, sink.pid)
        if args.digest:
            results.update(run_digest(args, [w.pid for w in workers], body[:3000]))
        # Reference 1: smtp-source, same size, 2 sessions, persistent connections.
        campaign = Campaign.objects.get(article=article)
        sample = render_campaign_email(campaign).as_bytes(Recipient(1, 1, "reader1@bench.example", "Reader 1"))
        results["message_bytes"] = len(sample)
        started = time.monotonic()
        subprocess.run(
            [
                "smtp-source",
                "-s",
                "2",
                "-d",
                "-m",
                str(args.source_count),
                "-l",
                str(len(sample)),
                "-f",
                "bench@bench.example",
                "-t",
                "reader@bench.example",
                f"127.0.0.1:{args.smtp_port}",
            ],
            check=True,
        )
        results["smtp_source_per_s"] = args.source_count / (time.monotonic() - started)
        # Reference 2: one EmailMultiAlternatives per recipient over one connection.
        results["naive_per_s"] = naive_loop(campaign, args.naive_count, Subscriber)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=20)
        sink.terminate()
        sink.wait()

    results["vs_smtp_source"] = results["engine_per_s"] / results["smtp_source_per_s"]
    results["vs_naive"] = results["engine_per_s"] / results["naive_per_s"]
    if args.digest:
        results["digest_vs_article"] = results["digest_per_s"] / results["engine_per_s"]
    rows = [
        ("subscribers", f"{args.subscribers:,}"),
        ("ledger synchronous_commit", args.synchronous_commit),
        ("message size (bytes)", f"{results['message_bytes']:,}"),
        ("publish signal + enqueue, median of 5 (ms)", f"{results['publish_ms']:.2f}"),
        ("publish signal + enqueue, first (ms)", f"{results['publish_first_ms']:.2f}"),
        ("planning (s)", f"{results['planning_s']:.2f}"),
        ("publish -> last message accepted (s)", f"{results['publish_to_last_s']:.1f}"),
        ("engine emails/s", f"{results['engine_per_s']:.0f}"),
        ("smtp-source emails/s (2 sessions)", f"{results['smtp_source_per_s']:.0f}"),
        ("naive EmailMultiAlternatives loop emails/s", f"{results['naive_per_s']:.0f}"),
        ("engine / smtp-source", f"{results['vs_smtp_source']:.0%}"),
        ("engine / naive", f"{results['vs_naive']:.1f}x"),
        ("worker peak RSS when 10% was sent (MB)", f"{results['worker_peak_rss_at_tenth_mb']:.1f}"),
        ("worker peak RSS at the end (MB)", f"{results['worker_peak_rss_mb']:.1f}"),
        ("CPU per email: workers (us)", f"{results['cpu_us_per_email_workers']:.0f}"),
        ("CPU per email: smtp-sink (us)", f"{results['cpu_us_per_email_sink']:.0f}"),
        ("machine CPU busy while sending (all cores)", f"{results['machine_cpu_busy']:.0%}"),
        ("sent / planned", f"{results['sent']:,} / {results['planned']:,}"),
    ]
    if args.digest:
        rows += [
            ("digest: planning (s)", f"{results['digest_planning_s']:.2f}"),
            ("digest: distinct contents (renders)", f"{results['digest_contents']}"),
            ("digest: emails/s", f"{results['digest_per_s']:.0f}"),
            ("digest / article emails/s", f"{results['digest_vs_article']:.0%}"),
            ("digest: CPU per email, workers (us)", f"{results['digest_cpu_us_per_email_workers']:.0f}"),
            ("digest: worker peak RSS when 10% was sent (MB)", f"{results['digest_rss_at_tenth_mb']:.1f}"),
            ("digest: worker peak RSS at the end (MB)", f"{results['digest_rss_mb']:.1f}"),
            ("digest: sent / planned", f"{results['digest_sent']:,} / {results['digest_planned']:,}"),
        ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value:>12}")
    results["synchronous_commit"] = args.synchronous_commit
    print(json.dumps({"bench": "send", **{k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}}))


def run(args, article, celery_app, article_published, workers, Campaign, Delivery, sink_pid) -> dict:  # type: ignore[no-untyped-def]
    celery_app.control.purge()
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    for index in range(2):
        workers.append(
            subprocess.Popen(
                [
                    celery,
                    "-A",
                    "euro_prospects",
                    "worker",
                    "--pool",
                    "solo",
                    "--hostname",
                    f"bench{index}@localhost",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=open(ROOT / "var" / f"bench-worker{index}.log", "wb"),  # noqa: SIM115
            )
        )
    deadline = time.monotonic() + 60
    while len(celery_app.control.ping(timeout=0.5)) < 2:
        if time.monotonic() > deadline:
            raise SystemExit("workers did not start")
    worker_pids = [w.pid for w in workers]
    cpu_before = {
        "workers": cpu_seconds(worker_pids),
        "sink": cpu_seconds([sink_pid]),
    }
    machine_before = machine_cpu()
    started_wall = django_now()
    # The publish request's share: the signal and the enqueue. Sent 5 times, as an
    # editor pressing Publish again would: the repeats find the campaign made and
    # send nothing more. The first also opens the broker connection, so the
    # median is the figure to compare between list sizes.
    publish_ms = []
    for _ in range(5):
        started = time.perf_counter()
        article_published.send(sender=type(article), article_id=article.pk)
        publish_ms.append((time.perf_counter() - started) * 1000)
    # Worker memory once a tenth of the list is sent, against the peak at the end:
    # flat means memory does not grow with the list.
    rss_at_tenth = 0
    while not Campaign.objects.filter(article=article, status=Campaign.Status.FINISHED).exists():
        if not rss_at_tenth and Delivery.objects.filter(status=Delivery.Status.SENT).count() >= args.subscribers // 10:
            rss_at_tenth = peak_rss_kib(worker_pids)
        time.sleep(0.2)
    campaign = Campaign.objects.get(article=article)
    last = Delivery.objects.filter(campaign=campaign).order_by("-sent_at").values_list("sent_at", flat=True).first()
    first_claim = campaign.planned_at
    sent = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count()
    rss = peak_rss_kib(worker_pids)
    cpu_used = {
        "workers": cpu_seconds(worker_pids) - cpu_before["workers"],
        "sink": cpu_seconds([sink_pid]) - cpu_before["sink"],
    }
    busy, total = (after - before for after, before in zip(machine_cpu(), machine_before, strict=True))
    publish_to_last = (last - started_wall).total_seconds()
    return {
        "publish_ms": statistics.median(publish_ms),
        "publish_first_ms": publish_ms[0],
        "planning_s": (campaign.planned_at - campaign.created_at).total_seconds(),
        "publish_to_last_s": publish_to_last,
        "engine_per_s": sent / (last - first_claim).total_seconds(),
        "worker_peak_rss_mb": rss / 1024,
        "worker_peak_rss_at_tenth_mb": rss_at_tenth / 1024,
        **{f"cpu_us_per_email_{name}": seconds / max(sent, 1) * 1e6 for name, seconds in cpu_used.items()},
        "machine_cpu_busy": busy / total if total else 0.0,
        "sent": sent,
        "planned": campaign.recipients,
    }


def run_digest(args, worker_pids: list[int], body: str) -> dict:  # type: ignore[no-untyped-def]
    """Every reader on the weekly digest, on 1 or 2 of 8 topics; 10 pieces; send the digest now."""
    from django.db import connection
    from django.utils import timezone

    from articles.models import Article, Topic
    from newsletter.digests import start_due_digests
    from newsletter.models import Campaign, Delivery, DigestContent

    topics = [
        Topic.objects.get_or_create(slug=f"bench-{n}", defaults={"name": f"Bench topic {n}"})[0].pk for n in range(8)
    ]
    Article.objects.filter(slug__startswith="bench-piece-").delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE newsletter_subscriber SET cadence = 'weekly', previous_cadence = '', cadence_since = now(), "
            "all_topics = false, confirmed_at = now() - interval '30 days'"
        )
        cursor.execute(
            "INSERT INTO newsletter_subscriber_topics (subscriber_id, topic_id) "
            "SELECT id, (%(topics)s::bigint[])[1 + id %% 8] FROM newsletter_subscriber "
            "UNION ALL SELECT id, (%(topics)s::bigint[])[1 + (id + 3) %% 8] "
            "FROM newsletter_subscriber WHERE id %% 3 = 0",
            {"topics": topics},
        )
    for index in range(10):
        piece = Article.objects.create(
            title=f"Piece {index + 1} of the week on the interconnector budget",
            slug=f"bench-piece-{index}",
            standfirst="What the member states agreed, and what they left for later.",
            body=body,
            status=Article.Status.PUBLISHED,
            published_at=timezone.now() - timedelta(hours=10 - index),
            reading_minutes=3,
        )
        piece_topics = [topics[index % 8]] + ([topics[(index + 5) % 8]] if index >= 8 else [])
        for position, topic_id in enumerate(piece_topics):
            piece.article_topics.create(topic_id=topic_id, position=position)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    cpu_before = cpu_seconds(worker_pids)
    started = time.perf_counter()
    [campaign] = start_due_digests(digest="weekly", at_once=True)
    planning = time.perf_counter() - started
    rss_at_tenth = 0
    while not Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.FINISHED).exists():
        sent_so_far = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.SENT).count()
        if not rss_at_tenth and sent_so_far >= campaign.recipients // 10:
            rss_at_tenth = peak_rss_kib(worker_pids)
        time.sleep(0.2)
    campaign.refresh_from_db()
    deliveries = Delivery.objects.filter(campaign=campaign)
    last = deliveries.order_by("-sent_at").values_list("sent_at", flat=True).first()
    sent = deliveries.filter(status=Delivery.Status.SENT).count()
    return {
        "digest_cpu_us_per_email_workers": (cpu_seconds(worker_pids) - cpu_before) / max(sent, 1) * 1e6,
        "digest_planning_s": planning,
        "digest_contents": DigestContent.objects.filter(campaign=campaign).count(),
        "digest_per_s": sent / (last - campaign.planned_at).total_seconds(),
        "digest_rss_at_tenth_mb": rss_at_tenth / 1024,
        "digest_rss_mb": peak_rss_kib(worker_pids) / 1024,
        "digest_sent": sent,
        "digest_planned": campaign.recipients,
    }


def django_now():  # type: ignore[no-untyped-def]
    from django.utils import timezone

    return timezone.now()


def naive_loop(campaign, count: int, Subscriber) -> float:  # type: ignore[no-untyped-def]
    from django.core.mail import EmailMultiAlternatives, get_connection
    from django.template.loader import render_to_string

    from newsletter.sending.message import article_email_context

    context = article_email_context(campaign.article)
    html = render_to_string("newsletter/campaign_email.html", context)
    text = render_to_string("newsletter/campaign_email.txt", context)
    backend = get_connection()
    backend.open()
    emails = list(Subscriber.objects.order_by("id").values_list("email", flat=True)[:count])
    started = time.monotonic()
    for address in emails:
        message = EmailMultiAlternatives(campaign.article.title, text, None, [address], connection=backend)
        message.attach_alternative(html, "text/html")
        message.send()
    elapsed = time.monotonic() - started
    backend.close()
    return len(emails) / elapsed


if __name__ == "__main__":
    main()
