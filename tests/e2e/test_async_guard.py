"""Django's async guard is lifted only for the browser tests, never for anything else."""

import os

from tests.support.workers import WorkerProcess


def test_the_async_guard_is_lifted_while_a_browser_test_runs():
    # tests/e2e/conftest.py lifts it for every test in this folder.
    assert os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE") == "true"


def test_a_worker_started_by_a_browser_test_keeps_the_async_guard():
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in WorkerProcess().environment()
