"""Time /healthz with no Celery worker running: `.venv/bin/python bench/health.py`.

Starts gunicorn (1 sync worker, DEBUG off) on BENCH_PORT (default 8124), makes sure
no worker heartbeat is in Redis, then sends REQUESTS (default 200) sequential requests
as the public (through a proxy: X-Forwarded-For) and as the operator (on this machine),
each on a new connection, and prints p50/p99/max per kind and, last, one JSON line.
The probe must answer 503 quickly: it reads heartbeats, it waits for nobody.

Environment: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres;
only SELECT 1 is run), BENCH_REDIS_URL (default redis://127.0.0.1:6379/14),
BENCH_PORT, BENCH_REQUESTS.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.getenv("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.getenv("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
PORT = int(os.getenv("BENCH_PORT", "8124"))
REQUESTS = int(os.getenv("BENCH_REQUESTS", "200"))
BASE = f"http://127.0.0.1:{PORT}/healthz"


def probe(headers: dict[str, str]) -> tuple[float, int]:
    request = urllib.request.Request(BASE, headers=headers)
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
            status = int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return time.perf_counter() - started, status


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    env = os.environ | {
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "DEBUG": "false",
        "SECRET_KEY": "bench-" + "k" * 60,
        "ALLOWED_HOSTS": "127.0.0.1",
        "EMAIL_URL": "console://",
        "LOG_LEVEL": "CRITICAL",
    }
    env.pop("METRICS_TOKEN", None)
    redis.Redis.from_url(REDIS_URL).delete("ep:health:workers")  # no worker is alive
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "euro_prospects.wsgi:application", "--bind", f"127.0.0.1:{PORT}",
         "--workers", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                probe({})
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("gunicorn did not start")
                time.sleep(0.2)
        results: dict[str, dict[str, float | int]] = {}
        for kind, headers in (("public", {"X-Forwarded-For": "203.0.113.9"}), ("operator", {})):
            timings, statuses = [], set()
            for _ in range(REQUESTS):
                seconds, status = probe(headers)
                timings.append(seconds)
                statuses.add(status)
            results[kind] = {
                "requests": REQUESTS,
                "status": min(statuses),
                "p50_ms": round(statistics.median(timings) * 1000, 2),
                "p99_ms": round(percentile(timings, 0.99) * 1000, 2),
                "max_ms": round(max(timings) * 1000, 2),
            }
    finally:
        web.terminate()
        web.wait(timeout=30)
    print(f"{'caller':<10} {'requests':>8} {'status':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, figures in results.items():
        print(
            f"{kind:<10} {figures['requests']:>8} {figures['status']:>6} {figures['p50_ms']:>8} "
            f"{figures['p99_ms']:>8} {figures['max_ms']:>8}"
        )
    print(json.dumps({"bench": "health", "workers": 0, **results}))


if __name__ == "__main__":
    main()
