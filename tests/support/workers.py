"""Helpers for tests that run real processes: Celery workers on the test database, and waiting."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from euro_prospects.celery import app as celery_app

ROOT = Path(__file__).resolve().parent.parent.parent


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
                "--include", "tests.support.celery_probe", *self.extra_args,
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


def wait_until(
    predicate: Any, timeout: float = 20.0, interval: float = 0.1, describe: Callable[[], str] | None = None
) -> Any:
    """Poll ``predicate`` until it returns something truthy, or fail the test, saying what
    ``describe`` sees then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s" + (f": {describe()}" if describe else ""))


def run_django_setup(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Start Django in a process of its own with the production settings and ``env``."""
    unset = {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "EMAIL_URL", "METRICS_TOKEN"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=base | {"DJANGO_SETTINGS_MODULE": "euro_prospects.settings"} | env,
        capture_output=True,
        text=True,
        check=False,
    )
