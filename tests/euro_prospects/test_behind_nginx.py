"""Behind the shipped nginx config, each visitor keeps their own address.

A real nginx runs deploy/nginx/euro-prospects.conf (TLS taken out, ports moved)
in front of the live test server; requests leave from two loopback addresses,
and rate limits and consent records must tell them apart.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import redis
from django.conf import settings as django_settings

from euro_prospects.celery import app as celery_app
from newsletter.models import Subscriber
from tests.support.workers import ROOT

SHIPPED_CONFIG = ROOT / "deploy" / "nginx" / "euro-prospects.conf"
VISITOR_A = "127.0.0.2"
VISITOR_B = "127.0.0.3"


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found:
        return found
    message = "nginx is not installed (apt-get install -y nginx-light)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def derived_config(upstream: str, port: int, redirect_port: int, logs: Path) -> str:
    """The shipped server blocks, on plain HTTP at ``port``, proxying to ``upstream``."""
    lines = []
    for line in SHIPPED_CONFIG.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("listen [::]") or stripped.startswith("ssl_"):
            continue
        if stripped.startswith("listen 443"):
            line = f"    listen 127.0.0.1:{port};"
        elif stripped.startswith("listen 80"):
            line = f"    listen 127.0.0.1:{redirect_port};"
        lines.append(line.replace("server 127.0.0.1:8000 ", f"server {upstream} ").replace("/var/log/nginx", str(logs)))
    config = "\n".join(lines)
    assert f"server {upstream} " in config, "deploy/nginx no longer names its upstream as this test expects"
    assert f"listen 127.0.0.1:{port};" in config, "deploy/nginx no longer listens on 443 as this test expects"
    return config


@pytest.fixture
def nginx(live_server, tmp_path: Path) -> Iterator[int]:
    """nginx with the shipped config in front of the live server; yields its port."""
    binary = nginx_binary()
    port, redirect_port = free_port(), free_port()
    upstream = urlsplit(live_server.url).netloc
    root_user = "user root root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{root_user}daemon off;\nworker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n client_body_temp_path {tmp_path}/body;\n proxy_temp_path {tmp_path}/proxy;\n"
        f"{derived_config(upstream, port, redirect_port, tmp_path)}\n}}\n"
    )
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited:\n{(tmp_path / 'error.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not start listening within 20s")
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def request(
    port: int,
    source: str,
    method: str,
    path: str,
    body: dict[str, str] | None = None,
    cookie: str = "",
    forged_for: str = "",
) -> http.client.HTTPResponse:
    """One request to nginx whose TCP connection leaves from ``source``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    if forged_for:
        headers["X-Forwarded-For"] = headers["X-Real-IP"] = forged_for
    if cookie:
        headers["Cookie"] = cookie
    connection.request(method, path, body=urlencode(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response


@pytest.fixture
def site(settings, transactional_db):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1"]
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter("*ratelimit:*"))
    if keys:
        client.delete(*keys)
    celery_app.conf.task_always_eager = True
    try:
        yield settings
    finally:
        celery_app.conf.task_always_eager = False


def test_sign_ups_behind_nginx_are_counted_and_recorded_per_visitor(site, nginx):
    site.NEWSLETTER_RATE_LIMIT_PER_IP = 2
    sign_up = "/newsletter/subscribe/"
    first = [request(nginx, VISITOR_A, "POST", sign_up, {"email": f"a{n}@example.org"}).status for n in range(3)]
    assert first == [200, 200, 429]
    # Claiming another address in the request's own headers does not open a new bucket.
    forged = request(nginx, VISITOR_A, "POST", sign_up, {"email": "a3@example.org"}, forged_for="203.0.113.9")
    assert forged.status == 429
    assert request(nginx, VISITOR_B, "POST", sign_up, {"email": "b0@example.org"}).status == 200

    consent = dict(Subscriber.objects.values_list("email", "consent_ip"))
    assert consent == {"a0@example.org": VISITOR_A, "a1@example.org": VISITOR_A, "b0@example.org": VISITOR_B}


def csrf_for(port: int, source: str) -> tuple[str, str]:
    """The CSRF cookie and form token a visitor gets with the /write/ page."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    connection.request("GET", "/write/")
    response = connection.getresponse()
    page = response.read().decode()
    cookie = next(c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or [] if c.startswith("csrftoken="))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, "no CSRF token on /write/"
    return cookie, token.group(1)


def test_write_for_us_posts_behind_nginx_are_limited_per_visitor(site, nginx):
    site.WRITE_RATE_LIMIT = 2
    cookie, token = csrf_for(nginx, VISITOR_A)
    # An empty piece is refused (400), but still counts against its sender's limit.
    codes = [request(nginx, VISITOR_A, "POST", "/write/", {"csrfmiddlewaretoken": token}, cookie).status for _ in "123"]
    assert codes == [400, 400, 429]

    cookie, token = csrf_for(nginx, VISITOR_B)
    assert request(nginx, VISITOR_B, "POST", "/write/", {"csrfmiddlewaretoken": token}, cookie).status == 400
