"""Fixtures shared by every test: real services where the behaviour matters."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from euro_prospects.celery import app as celery_app
from tests.support.esp import ESPServer
from tests.support.people import client_with_token, member_of
from tests.support.smtp import SMTPServer
from tests.support.workers import STARTED_WORKERS, WorkerProcess, wait_until


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--utc-time",
        metavar="HH:MM",
        help="start every test at this time of today (UTC), the clock ticking on (time_machine): "
        "--utc-time=23:30 finds tests that pass only while the UTC date and the site's date agree",
    )


@pytest.fixture(autouse=True)
def utc_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """Move this process' clock as ``--utc-time`` asks. Worker processes keep the real
    clock, so run it with ``-m "not integration"``."""
    wanted = request.config.getoption("--utc-time")
    if not wanted:
        yield
        return
    hours, _, minutes = wanted.partition(":")
    start = datetime.now(UTC).replace(hour=int(hours), minute=int(minutes or 0), second=0, microsecond=0)
    with time_machine.travel(start, tick=True):
        yield


def pytest_sessionfinish(session: pytest.Session) -> None:
    """No worker outlives the run, whatever a test did: a stray one would take the next run's tasks."""
    for worker in STARTED_WORKERS:
        if worker.process is not None and worker.process.poll() is None:
            worker.kill()  # the whole group, pool processes too


@pytest.fixture
def celery_worker_process(transactional_db: None) -> Iterator[WorkerProcess]:
    """Start a Celery worker process on the test database and the real broker.

    Tests using it commit their data (transactional_db) so the worker sees it.
    """
    celery_app.control.purge()
    worker = WorkerProcess().start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def smtp_server(settings: Any) -> Iterator[SMTPServer]:
    """A real SMTP server on loopback; Django's mail goes to it in this process.

    Pass ``smtp_server.url`` as EMAIL_URL to worker processes
    (``WorkerProcess(extra_env={"EMAIL_URL": smtp_server.url})``).
    """
    server = SMTPServer().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailgun_server(settings: Any) -> Iterator[ESPServer]:
    """Mailgun's send API on loopback (tests/support/esp.py); Django's mail goes to it through anymail."""
    server = ESPServer().start()
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "test-key", "MAILGUN_API_URL": f"{server.url}/v3"}
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unisender_go_server(settings: Any) -> Iterator[ESPServer]:
    """Unisender Go's send API on loopback (tests/support/esp.py): it reports refused addresses one by one."""
    server = ESPServer().start()
    settings.EMAIL_BACKEND = "anymail.backends.unisender_go.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "UNISENDER_GO_API_KEY": "test-key", "UNISENDER_GO_API_URL": server.url}
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Each test starts with no rate-limit counters: they outlive a test run in Redis."""
    import redis
    from django.conf import settings

    # Only the limiter's keys: the same Redis database holds the Celery broker's.
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter("*ratelimit:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def fresh_public_page_cache() -> None:
    """Each test starts with an empty page cache: test databases roll back, Redis does not.

    A new generation makes every page stale; deleting the entries also takes away the
    previous versions a concurrent request could be served while one re-renders.
    """
    from articles.cache import _key, bump_generation, redis_client

    bump_generation()
    client = redis_client()
    stale = list(client.scan_iter(match=_key("page:*"), count=1000))
    if stale:
        client.delete(*stale)


# --- Newsroom personas and clients shared by the apps' tests ------------------------


@pytest.fixture
def eva(db: None) -> Any:
    """Eva, an editor."""
    from articles.roles import EDITORS

    return member_of(EDITORS, username="eva", email="eva@example.org")


@pytest.fixture
def cora(db: None) -> Any:
    """Cora, a correspondent in the Authors group, with her author profile."""
    from articles.roles import AUTHORS
    from tests.support.factories import AuthorFactory

    user = member_of(AUTHORS, username="cora", email="cora@example.org")
    AuthorFactory.create(name="Cora Lindqvist", slug="cora-lindqvist", user=user, role="Baltic Correspondent")
    return user


@pytest.fixture
def otto(db: None) -> Any:
    """Otto, another correspondent."""
    from articles.roles import AUTHORS
    from tests.support.factories import AuthorFactory

    user = member_of(AUTHORS, username="otto", email="otto@example.org")
    AuthorFactory.create(name="Otto Brandl", slug="otto-brandl", user=user)
    return user


@pytest.fixture
def coras_draft(cora: Any) -> Any:
    """Cora's draft on Energy."""
    from articles import services
    from tests.support.factories import TopicFactory

    topic = TopicFactory.create(name="Energy", slug="energy")
    return services.create_draft(
        by=cora, title="Grid talks stall again", standfirst="A summary.", body="<p>Words.</p>", topics=[topic]
    )


@pytest.fixture
def as_eva(eva: Any) -> APIClient:
    """Eva's API client, with a token."""
    return client_with_token(eva)


@pytest.fixture
def as_cora(cora: Any) -> APIClient:
    """Cora's API client, with a token."""
    return client_with_token(cora)


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def private_redis() -> Any:
    """A Redis server of this test's own (a cache apart from the broker's Redis)."""
    import shutil

    from tests.support.smtp import free_port

    port = free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    ping = ["redis-cli", "-p", str(port), "ping"]
    wait_until(lambda: subprocess.run(ping, capture_output=True).returncode == 0)

    class PrivateRedis:
        url = f"redis://127.0.0.1:{port}/0"

    try:
        yield PrivateRedis()
    finally:
        process.kill()
        process.wait()
