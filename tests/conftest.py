"""Fixtures shared by every test: real services where the behaviour matters."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.db import connection

from euro_prospects.celery import app as celery_app
from tests.esp import ESPServer
from tests.smtp import SMTPServer

ROOT = Path(__file__).resolve().parent.parent


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


def database_url(settings_dict: dict[str, Any]) -> str:
    """The DATABASE_URL that reaches the database this test run uses."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"no DATABASE_URL for engine {engine}")


STARTED_WORKERS: list[WorkerProcess] = []


def pytest_sessionfinish(session: pytest.Session) -> None:
    """No worker outlives the run, whatever a test did: a stray one would take the next run's tasks."""
    for worker in STARTED_WORKERS:
        if worker.process is not None and worker.process.poll() is None:
            worker.kill()  # the whole group, pool processes too


class WorkerProcess:
    """A real `celery worker` process consuming from the real Redis broker."""

    def __init__(
        self, concurrency: int = 1, extra_env: dict[str, str] | None = None, extra_args: list[str] | None = None
    ) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.concurrency = concurrency
        self.extra_env = extra_env or {}
        self.extra_args = extra_args or []
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = ROOT / "var" / f"worker-{self.name.split('@')[0]}.log"

    def environment(self) -> dict[str, str]:
        env = os.environ | {
            "DATABASE_URL": database_url(connection.settings_dict),
            "CELERY_BROKER_URL": celery_app.conf.broker_url,
            "PYTHONUNBUFFERED": "1",
        }
        # Browser tests lift Django's async guard for themselves; a worker keeps it.
        env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        return env | self.extra_env

    def start(self, timeout: float = 30.0) -> WorkerProcess:
        env = self.environment()
        self.log_path.parent.mkdir(exist_ok=True)
        self.log_file = self.log_path.open("wb")
        STARTED_WORKERS.append(self)
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "euro_prospects", "worker",
                "--hostname", self.name, "--concurrency", str(self.concurrency),
                "--without-gossip", "--without-mingle", "--loglevel", "INFO",
                "--include", "tests.celery_probe", *self.extra_args,
            ],
            cwd=ROOT, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()}")
            if celery_app.control.ping(destination=[self.name], timeout=0.5):
                return self
        self.stop()
        raise RuntimeError(f"worker did not answer within {timeout}s:\n{self.log_path.read_text()}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()  # the pool processes too: a stray one would take later tests' tasks
        if self.process:
            # An embedded beat or a pool process outliving its parent would go on taking tasks.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.log_file.close()


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


def wait_until(predicate: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")


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
    """Mailgun's send API on loopback (tests/esp.py); Django's mail goes to it through anymail."""
    server = ESPServer().start()
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_API_KEY": "test-key", "MAILGUN_API_URL": f"{server.url}/v3"}
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def unisender_go_server(settings: Any) -> Iterator[ESPServer]:
    """Unisender Go's send API on loopback (tests/esp.py): it reports refused addresses one by one."""
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


# --- Newsroom personas shared by the CMS and API tests ----------------------------


def member_of(group_name: str, **fields: Any) -> Any:
    from django.contrib.auth.models import Group

    from articles.roles import ensure_groups
    from newsletter.roles import grant_editor_permissions
    from tests.factories import UserFactory

    # Transactional tests flush the tables, groups included; the migrations filled them.
    ensure_groups()
    grant_editor_permissions()
    user = UserFactory.create(**fields)
    user.groups.add(Group.objects.get(name=group_name))
    return user


@pytest.fixture
def eva(db: None) -> Any:
    """Eva, an editor."""
    from articles.roles import EDITORS

    return member_of(EDITORS, username="eva", email="eva@example.org")


@pytest.fixture
def cora(db: None) -> Any:
    """Cora, a correspondent in the Authors group, with her author profile."""
    from articles.roles import AUTHORS
    from tests.factories import AuthorFactory

    user = member_of(AUTHORS, username="cora", email="cora@example.org")
    AuthorFactory.create(name="Cora Lindqvist", slug="cora-lindqvist", user=user, role="Baltic Correspondent")
    return user
