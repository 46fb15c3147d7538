"""Fixtures for the subscription tests: tasks run in
this process (after commit) when a test asks for it, and helpers to read mail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from django.conf import settings

from euro_prospects.celery import app as celery_app
from tests.conftest import WorkerProcess
from tests.smtp import SMTPServer


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


def links_in(message: EmailMessage) -> list[str]:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return re.findall(r"https?://\S+", body.get_content())


def link_to(message: EmailMessage, fragment: str) -> str:
    """The path of the first link in ``message`` containing ``fragment`` (e.g. "/confirm/")."""
    for link in links_in(message):
        if fragment in link:
            return link.removeprefix(settings.SITE_URL)
    raise AssertionError(f"no link with {fragment!r} in the message")
