"""Fixtures for the subscription tests: tasks run in
this process (after commit) when a test asks for it, and helpers to read mail."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from euro_prospects.celery import app as celery_app
from tests.support.smtp import SMTPServer
from tests.support.workers import WorkerProcess


@pytest.fixture
def run_tasks(smtp_server: SMTPServer, transactional_db: None) -> Iterator[SMTPServer]:
    """Tasks run in this process when their transaction commits; mail goes to the yielded server.

    The test commits for real (transactional_db), so on-commit enqueues fire as in production.
    """
    celery_app.conf.task_always_eager = True
    try:
        yield smtp_server
    finally:
        celery_app.conf.task_always_eager = False


@pytest.fixture
def mail_worker(smtp_server: SMTPServer, transactional_db: None) -> Iterator[WorkerProcess]:
    """A real Celery worker process sending its mail to ``smtp_server``."""
    celery_app.control.purge()
    worker = WorkerProcess(extra_env={"EMAIL_URL": smtp_server.url}).start(timeout=60)
    try:
        yield worker
    finally:
        worker.stop()
