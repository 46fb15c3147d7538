"""Time the public pages in one process, without a server: `make bench-pages`.

`bench/web.py` measures the pages through gunicorn and wrk, where a page's own cost is
mixed with the server's, the load generator's and the machine's noise. This calls the
WSGI application directly, as a request would reach it, so a change to a page can be
timed on its own: the pages take turns, ROUNDS times, and each figure is the best round.

Loads the 1,000 articles of `bench/web.py` into the same database (BENCH_DATABASE_URL;
`--reuse` keeps what is there), then prints, for each page, uncached and cached, the CPU
and wall milliseconds a request takes in this process (wall less CPU is mostly PostgreSQL
answering, whose own CPU is not counted), next to the trivial view of the same size; last,
one JSON line (search results are never cached: uncached only). `--only=home,search` (any
page names) measures only those.

Environment: as bench/web.py; BENCH_PAGE_REQUESTS (requests per page and round, default
50) and BENCH_PAGE_ROUNDS (default 10).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.web import DATABASE_URL, PAGES, PYTHON, ROOT, env, load_articles, manage, recreate_database

REQUESTS = int(os.getenv("BENCH_PAGE_REQUESTS", "50"))
ROUNDS = int(os.getenv("BENCH_PAGE_ROUNDS", "10"))
NEVER_CACHED = {"search"}

# Runs in a child process, so that PAGE_CACHE is read by the settings as a server would.
TIMER = """
import io, json, sys, time
import django
django.setup()
from django.core.wsgi import get_wsgi_application

app = get_wsgi_application()
pages, requests, rounds = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])


def call(path):
    base, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": base, "QUERY_STRING": query, "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr,
    }
    status = []
    body = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    assert status[0].startswith("200"), (path, status[0])
    return body


for name, path in list(pages.items()):
    pages[f"{name} ceiling"] = f"/bench/bytes/{len(call(path))}/"
best = {}
for path in pages.values():
    for _ in range(10):
        call(path)
for _ in range(rounds):
    for name, path in pages.items():
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(requests):
            call(path)
        figures = ((time.process_time() - cpu) / requests * 1000, (time.perf_counter() - wall) / requests * 1000)
        if name not in best or figures[1] < best[name][1]:
            best[name] = figures
print(json.dumps(best))
"""


def time_pages(pages: dict[str, str], *, page_cache: bool) -> dict[str, list[float]]:
    child = subprocess.run(
        [PYTHON, "-c", TIMER, json.dumps(pages), str(REQUESTS), str(ROUNDS)],
        cwd=ROOT,
        env=env(PAGE_CACHE="true" if page_cache else "false", LOG_LEVEL="ERROR"),
        capture_output=True,
        text=True,
    )
    if child.returncode:
        sys.exit(f"The timing process failed:\n{child.stderr}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    if "--reuse" not in sys.argv[1:]:
        print(f"Loading the articles of bench/web.py into {DATABASE_URL} ...", file=sys.stderr)
        recreate_database()
        manage("migrate", "--noinput")
        load_articles()
    manage("collectstatic", "--noinput")  # the pages name their static files by the manifest
    only = next((arg.split("=", 1)[1].split(",") for arg in sys.argv[1:] if arg.startswith("--only=")), None)
    pages = {name: path for name, path in PAGES.items() if only is None or name in only}
    rows = []
    for mode, page_cache in (("uncached", False), ("cached", True)):
        timed = {name: path for name, path in pages.items() if not (page_cache and name in NEVER_CACHED)}
        if not timed:
            continue
        print(f"Timing {mode} pages: {ROUNDS} rounds of {REQUESTS} requests each ...", file=sys.stderr)
        best = time_pages(timed, page_cache=page_cache)
        for name in timed:
            (cpu, wall), (ceiling_cpu, ceiling_wall) = best[name], best[f"{name} ceiling"]
            rows.append(
                {"page": name, "mode": mode, "cpu_ms": round(cpu, 3), "wall_ms": round(wall, 3),
                 "ceiling_cpu_ms": round(ceiling_cpu, 3), "ceiling_wall_ms": round(ceiling_wall, 3)}
            )  # fmt: skip
    print(f"\nOne process, WSGI called directly, DEBUG off; best of {ROUNDS} rounds of {REQUESTS} requests")
    print(f"{'page':<8} {'mode':<9} {'CPU ms':>8} {'wall ms':>8} {'trivial view CPU ms':>20}")
    for row in rows:
        print(
            f"{row['page']:<8} {row['mode']:<9} {row['cpu_ms']:>8.2f} {row['wall_ms']:>8.2f} "
            f"{row['ceiling_cpu_ms']:>20.2f}"
        )
    print(json.dumps({"bench": "pages", "rows": rows}))


if __name__ == "__main__":
    main()
