"""Benchmark the public site under gunicorn with wrk: `make bench-web`.

Loads 1,000 demo articles (BENCH_ARTICLES) into a PostgreSQL database of its own, collects static
files, starts two production servers (gunicorn, 2 sync workers, DEBUG off): one
with the page cache, one without. Then measures requests/s and p50/p99 latency
for the home, article, topic, author and search-result pages, cached and uncached, and a trivial Django
view returning the same number of bytes from memory (the ceiling on this
machine), all in the same run; and the tracked-link redirect `/r/<token>/` of a campaign
email against the ceiling of an empty answer (target: 60 %). Prints a table and, last,
one JSON line. `--only=redirect` (or any comma-separated page names) measures only those rows.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/ep_bench_web,
dropped and re-created), BENCH_REDIS_URL (default redis://127.0.0.1:6379/14),
BENCH_PORTS (default 8104,8114), BENCH_DURATION (seconds per wrk run, default 4),
BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 8), BENCH_BODY_WORDS (default 0: every article
has the same short body of nine repeated paragraphs; 1500 gives each one that many invented words
after the first paragraph, as long as a real article), BENCH_ARTICLES (default 1000: the published
articles, one an hour back from now; 40 authors and 12 topics share them, so a topic or author
page lists about a sixth or a twentieth of them).

The machine is shared and noisy, so ceiling, cached and uncached runs are
interleaved in ROUNDS rounds and each figure is the median over the rounds.

`python bench/web.py --publish` (`make bench-web-publish`): publish under load. wrk on the
cached home and article pages, each run once quietly and once while a separate process
publishes a new article every BENCH_PUBLISH_INTERVAL seconds (default 2; each publish moves
the page cache on for every page), interleaved over ROUNDS rounds of BENCH_PUBLISH_DURATION
seconds (default 12). Targets: throughput while publishing at least 70 % of the quiet run's,
p99 at most 3 times its p99.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATABASE_URL = os.getenv("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ep_bench_web")
REDIS_URL = os.getenv("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PORTS = [int(port) for port in os.getenv("BENCH_PORTS", "8104,8114").split(",")]
DURATION = int(os.getenv("BENCH_DURATION", "4"))
ROUNDS = int(os.getenv("BENCH_ROUNDS", "3"))
CONNECTIONS = int(os.getenv("BENCH_CONNECTIONS", "8"))
# 0: the short body of nine repeated paragraphs; n: n words of invented text, as long as a real
# article, whose search vector PostgreSQL stores out of line (TOAST), as it does a real one's
BODY_WORDS = int(os.getenv("BENCH_BODY_WORDS", "0"))
ARTICLES = int(os.getenv("BENCH_ARTICLES", "1000"))
DRAFTS = 200  # what the publish-under-load mode publishes, one at a time
PUBLISH_INTERVAL = float(os.getenv("BENCH_PUBLISH_INTERVAL", "2"))
PUBLISH_DURATION = int(os.getenv("BENCH_PUBLISH_DURATION", "12"))
TARGET_PUBLISH_RPS, TARGET_PUBLISH_P99 = 0.70, 3.0
TARGET_CACHED = 0.85
TARGET_UNCACHED = {"article": 0.30, "home": 0.25, "topic": 0.25, "author": 0.25, "search": 0.25}
TARGET_REDIRECT = 0.60
# The page of each kind that is measured (bench/pages.py times the same ones).
PAGES = {
    "home": "/",
    "article": "/articles/article-500/",
    "topic": "/topics/topic-3/",
    "author": "/authors/writer-3/",
    # Every article has the word: the results page is full, 50 pages of 20.
    "search": "/search/?q=negotiators",
}


def env(**extra: str) -> dict[str, str]:
    static_root = str(Path(tempfile.gettempdir()) / "ep-bench-static")
    return (
        os.environ
        | {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "DEBUG": "false",
            "SECRET_KEY": "bench-" + "k" * 60,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "EMAIL_URL": "console://",
            "STATIC_ROOT": static_root,
            "LOG_LEVEL": "WARNING",
            # TLS ends at the proxy in front (docs/deploy.md); the bench talks plain HTTP to gunicorn.
            "SECURE_SSL_REDIRECT": "false",
            "PYTHONPATH": str(ROOT),
        }
        | extra
    )


def need_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: installing the Debian package", file=sys.stderr)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    )
    return shutil.which("wrk") or sys.exit("wrk is not installed: apt-get install -y wrk")


def recreate_database() -> None:
    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)


def manage(*args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env(), check=True, stdout=subprocess.DEVNULL)


def load_articles() -> dict[str, str]:
    """ARTICLES published articles with 1-3 authors and 1-3 topics each; returns sample URLs."""
    script = f"""
import django, random
django.setup()
from datetime import timedelta
from django.utils import timezone
from articles.html import opening_text
from articles.models import Article, ArticleAuthor, ArticleTopic, Author, SiteSettings, Topic
random.seed(7)
BODY_WORDS = {BODY_WORDS}
SiteSettings.load()
topics = [Topic.objects.create(name=f"Topic {{n}}", slug=f"topic-{{n}}", description="An invented beat.")
          for n in range(12)]
authors = [Author.objects.create(name=f"Writer {{n}}", slug=f"writer-{{n}}", role="Correspondent", bio="Invented.")
           for n in range(40)]
paragraph = ("<p>Negotiators met again in a small room that has seen more drafts than decisions. The questions were "
             "familiar ones: who pays, who decides, and how quickly a promise can become a rule that applies.</p>")
body = "<h2>Where things stand</h2>" + paragraph * 5 + "<h2>What comes next</h2>" + paragraph * 4


def long_body(words):
    # An article of the usual length: the paragraph, then `words` invented words of 5,000, the
    # common ones often and the rare ones seldom (Zipf-like), in paragraphs of 60.
    syllables = ["ka", "lo", "mi", "ren", "sto", "va", "dun", "pel", "tri", "sa", "mor", "qui", "ban", "el"]
    vocabulary = ["".join(syllables[(n // 14 ** k) % 14] for k in range(2 + n % 3)) + "s" * (n % 2)
                  for n in range(5000)]
    picked = [vocabulary[min(int(random.paretovariate(0.3)) - 1, 4999)] for _ in range(words)]
    return paragraph + "".join("<p>" + " ".join(picked[n:n + 60]) + ".</p>" for n in range(0, words, 60))


bodies = [long_body(BODY_WORDS) if BODY_WORDS else body for _ in range({ARTICLES})]
now = timezone.now()
articles = Article.objects.bulk_create(
    Article(title=f"Invented article number {{n}} about policy", slug=f"article-{{n}}",
            standfirst="A one-paragraph summary of an invented piece about European policy and its politics.",
            body=bodies[n], opening_text=opening_text(bodies[n]), status="published",
            published_at=now - timedelta(hours=n),
            reading_minutes=6, editor=authors[n % 5], is_featured=n == 3, hero_image_credit="Demo",
            send_to_subscribers=False)
    for n in range({ARTICLES}))
drafts = Article.objects.bulk_create(
    Article(title=f"Invented draft number {{n}} about policy", slug=f"draft-{{n}}",
            standfirst="A one-paragraph summary of an invented piece about European policy and its politics.",
            body=body, opening_text=opening_text(body), status="approved", reading_minutes=6, editor=authors[n % 5],
            hero_image_credit="Demo", send_to_subscribers=False)
    for n in range({DRAFTS}))
articles = articles + drafts
ArticleAuthor.objects.bulk_create(
    ArticleAuthor(article=a, author=author, position=p)
    for a in articles for p, author in enumerate(random.sample(authors, random.randint(1, 3))))
ArticleTopic.objects.bulk_create(
    ArticleTopic(article=a, topic=topic, position=p)
    for a in articles for p, topic in enumerate(random.sample(topics, random.randint(1, 3))))
# Table statistics and visibility maps, as autovacuum keeps them on any live database (since
# PostgreSQL 13 it also vacuums tables that only grew). It is switched off on some machines
# this runs on, which leaves the planner guessing and makes the listings' counts, which read
# an index alone where the visibility map allows, read every listed row from the table too.
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("VACUUM ANALYZE")
# A campaign's tracked link to one article, as a reader's email carries it.
from newsletter.models import Campaign
from newsletter.engagement.links import link_ids
from newsletter.engagement.tokens import link_part, reader_part
campaign = Campaign.objects.create(article=Article.objects.get(slug="article-500"))
url = "http://127.0.0.1/articles/article-500/"
print(f"/r/{{link_part(link_ids(campaign.pk, [url])[url])}}.{{reader_part(campaign.pk, 1)}}/")
"""
    loaded = subprocess.run([PYTHON, "-c", script], cwd=ROOT, env=env(), check=True, capture_output=True, text=True)
    return {**PAGES, "redirect": loaded.stdout.strip().splitlines()[-1]}


def start_server(port: int, page_cache: bool) -> subprocess.Popen[bytes]:
    command = [
        PYTHON, "-m", "gunicorn", "euro_prospects.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env(PAGE_CACHE="true" if page_cache else "false"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/robots.txt", timeout=2)
            return server
        except OSError:
            time.sleep(0.3)
    server.terminate()
    sys.exit(f"gunicorn on port {port} did not start")


PUBLISHER = """
import sys, time, django
django.setup()
from django.utils import timezone
from articles.models import Article
interval, duration = float(sys.argv[1]), float(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # Django's start-up stays out of the measured run
deadline, published = time.monotonic() + duration, 0
while time.monotonic() < deadline:
    article = Article.objects.filter(status="approved").order_by("pk").first()
    if article is None:
        break
    article.status, article.published_at = "published", timezone.now()
    article.save()  # moves the page cache's generation on once committed, as the admin's Publish does
    published += 1
    time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
print(published)
"""


def run_wrk_while_publishing(wrk: str, url: str) -> tuple[dict[str, float], int]:
    publisher = subprocess.Popen(
        [PYTHON, "-c", PUBLISHER, str(PUBLISH_INTERVAL), str(PUBLISH_DURATION)],
        cwd=ROOT, env=env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert publisher.stdin is not None
    assert publisher.stdout is not None
    if publisher.stdout.readline().strip() != "ready":
        sys.exit("the publisher did not start")
    time.sleep(1)  # let the machine settle after its start-up
    publisher.stdin.write("go\n")
    publisher.stdin.flush()
    try:
        figures = run_wrk(wrk, url, PUBLISH_DURATION)
    finally:
        published = int((publisher.communicate(timeout=60)[0] or "0").strip() or 0)
    return figures, published


def publish_under_load(wrk: str, paths: dict[str, str]) -> None:
    port = PORTS[0]
    server = start_server(port, page_cache=True)
    rows: list[dict[str, object]] = []
    try:
        for name in ("home", "article"):
            url = f"http://127.0.0.1:{port}{paths[name]}"
            fetch(url)
            print(f"Measuring {name} with and without publishing ...", file=sys.stderr)
            quiet_runs, busy_runs, publishes = [], [], 0
            for _ in range(ROUNDS):
                quiet_runs.append(run_wrk(wrk, url, PUBLISH_DURATION))
                time.sleep(1)
                figures, published = run_wrk_while_publishing(wrk, url)
                busy_runs.append(figures)
                publishes += published
                time.sleep(1)
            quiet, busy = median_of(quiet_runs), median_of(busy_runs)
            rows.append({"page": name, "quiet": quiet, "publishing": busy, "publishes": publishes,
                         "rps_ratio": busy["rps"] / quiet["rps"],
                         "p99_ratio": busy["p99_ms"] / quiet["p99_ms"]})  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=15)
    print(
        f"\nwrk -t2 -c{CONNECTIONS} -d{PUBLISH_DURATION}s on the cached server, median of {ROUNDS} rounds, "
        f"quiet and publishing interleaved; an article published every {PUBLISH_INTERVAL:g} s; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print(f"{'page':<8} {'publishes':>9} {'req/s quiet':>12} {'publishing':>11} {'ratio':>6} "
          f"{'p99 quiet':>10} {'publishing':>11} {'ratio':>6}")  # fmt: skip
    for row in rows:
        quiet, busy = row["quiet"], row["publishing"]
        print(
            f"{row['page']:<8} {row['publishes']:>9} {quiet['rps']:>12.0f} {busy['rps']:>11.0f} "  # type: ignore[index]
            f"{row['rps_ratio']:>6.0%} {quiet['p99_ms']:>8.2f}ms {busy['p99_ms']:>9.2f}ms {row['p99_ratio']:>5.1f}x"  # type: ignore[index]
        )
    met = all(
        row["rps_ratio"] >= TARGET_PUBLISH_RPS and row["p99_ratio"] <= TARGET_PUBLISH_P99  # type: ignore[operator]
        for row in rows
    )
    print(f"\nthroughput >= {TARGET_PUBLISH_RPS:.0%} and p99 <= {TARGET_PUBLISH_P99:g}x of the quiet run: "
          f"{'yes' if met else 'NO'}")  # fmt: skip
    print(json.dumps({"bench": "web-publish", "rows": rows, "target_met": met}))


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (http on loopback)
        assert response.status == 200, url
        return response.read()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def run_wrk(wrk: str, url: str, duration: int = DURATION) -> dict[str, float]:
    output = subprocess.run(
        [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    latency = {}
    for percentile in ("50", "99"):
        value, unit = re.search(rf"\s{percentile}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        latency[percentile] = float(value) * _UNITS[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        sys.exit(f"{url}: {errors.group(1)} error responses\n{output}")
    return {"rps": rps, "p50_ms": latency["50"], "p99_ms": latency["99"]}


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main() -> None:
    wrk = need_wrk()
    print(f"Loading {ARTICLES} articles into {DATABASE_URL} ...", file=sys.stderr)
    recreate_database()
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--clear")
    paths = load_articles()
    subprocess.run(["redis-cli", "-u", REDIS_URL, "flushdb"], check=True, capture_output=True)
    if "--publish" in sys.argv[1:]:
        publish_under_load(wrk, paths)
        return
    only = next((arg.split("=", 1)[1].split(",") for arg in sys.argv[1:] if arg.startswith("--only=")), None)
    if only:
        paths = {name: path for name, path in paths.items() if name in only}
    cached_port, uncached_port = PORTS
    servers = [start_server(cached_port, page_cache=True), start_server(uncached_port, page_cache=False)]
    rows: list[dict[str, object]] = []
    try:
        for name, path in paths.items():
            if name == "redirect":
                rows.extend(measure_redirect(wrk, f"http://127.0.0.1:{cached_port}", path))
                continue
            size = len(fetch(f"http://127.0.0.1:{cached_port}{path}"))
            fetch(f"http://127.0.0.1:{uncached_port}{path}")
            ceiling_url = f"http://127.0.0.1:{cached_port}/bench/bytes/{size}/"
            assert len(fetch(ceiling_url)) == size
            print(f"Measuring {name} ({size} bytes) ...", file=sys.stderr)
            urls = {
                "ceiling": ceiling_url,
                "cached": f"http://127.0.0.1:{cached_port}{path}",
                "uncached": f"http://127.0.0.1:{uncached_port}{path}",
            }
            runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in urls}
            for _ in range(ROUNDS):
                for mode, url in urls.items():
                    runs[mode].append(run_wrk(wrk, url))
                    time.sleep(1.5)  # let the slow uncached server drain before the next run
            ceiling, cached, uncached = (median_of(runs[mode]) for mode in urls)
            for mode, figures in (("ceiling", ceiling), ("cached", cached), ("uncached", uncached)):
                rows.append({"page": name, "mode": mode, "bytes": size, **figures,
                             "of_ceiling": figures["rps"] / ceiling["rps"]})  # fmt: skip
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)

    print(
        f"\nwrk -t2 -c{CONNECTIONS} -d{DURATION}s, median of {ROUNDS} interleaved rounds; "
        f"gunicorn, 2 sync workers, DEBUG off; {ARTICLES} articles on PostgreSQL; "
        f"load average {os.getloadavg()[0]:.1f}\n"
    )
    print(f"{'page':<8} {'mode':<9} {'bytes':>7} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'of ceiling':>11}")
    for row in rows:
        print(
            f"{row['page']:<8} {row['mode']:<9} {row['bytes']:>7} {row['rps']:>9.0f} "
            f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['of_ceiling']:>10.0%}"
        )
    # Search pages are never cached (each query is its own page): only their uncached target counts.
    cached_ok = all(
        row["of_ceiling"] >= TARGET_CACHED  # type: ignore[operator]
        for row in rows
        if row["mode"] == "cached" and row["page"] != "search"
    )
    uncached_ok = all(
        row["of_ceiling"] >= TARGET_UNCACHED[str(row["page"])]  # type: ignore[operator]
        for row in rows
        if row["mode"] == "uncached"
    )
    redirect_ok = all(row["of_ceiling"] >= TARGET_REDIRECT for row in rows if row["mode"] == "redirect")  # type: ignore[operator]
    targets = ", ".join(f"{page} {share:.0%}" for page, share in TARGET_UNCACHED.items())
    print(f"\ncached pages >= {TARGET_CACHED:.0%} of ceiling: {'yes' if cached_ok else 'NO'}; "
          f"uncached ({targets}): {'yes' if uncached_ok else 'NO'}; "
          f"redirect >= {TARGET_REDIRECT:.0%}: {'yes' if redirect_ok else 'NO'}")  # fmt: skip
    print(
        json.dumps(
            {
                "bench": "web",
                "rows": rows,
                "cached_target_met": cached_ok,
                "uncached_target_met": uncached_ok,
                "redirect_target_met": redirect_ok,
            }
        )
    )


def measure_redirect(wrk: str, server: str, path: str) -> list[dict[str, object]]:
    """The tracked-link redirect against the trivial view answering an empty body."""
    connection = http.client.HTTPConnection(urlsplit(server).netloc, timeout=10)
    connection.request("GET", path, headers={"User-Agent": "Mozilla/5.0 (bench)"})
    answer = connection.getresponse()
    assert answer.status == 302, f"{path}: {answer.status}"
    connection.close()
    assert fetch(f"{server}/bench/bytes/0/") == b""
    print("Measuring redirect ...", file=sys.stderr)
    urls = {"ceiling": f"{server}/bench/bytes/0/", "redirect": f"{server}{path}"}
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in urls}
    for _ in range(ROUNDS):
        for mode, url in urls.items():
            runs[mode].append(run_wrk(wrk, url))
            time.sleep(1.5)
    ceiling, redirect = (median_of(runs[mode]) for mode in urls)
    return [
        {"page": "redirect", "mode": mode, "bytes": 0, **figures, "of_ceiling": figures["rps"] / ceiling["rps"]}
        for mode, figures in (("ceiling", ceiling), ("redirect", redirect))
    ]


if __name__ == "__main__":
    main()
