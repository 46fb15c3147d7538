import os

import pytest
from django.db import transaction

from articles.models import Topic
from euro_prospects.celery import enqueue_on_commit
from tests.support.celery_probe import create_topic
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration


def test_a_real_worker_runs_a_task_enqueued_after_commit(celery_worker_process):
    with transaction.atomic():
        enqueue_on_commit(create_topic, "Fisheries", "fisheries")
    assert wait_until(lambda: Topic.objects.filter(slug="fisheries").exists())


def test_a_rolled_back_transaction_enqueues_nothing(celery_worker_process):
    with transaction.atomic():
        enqueue_on_commit(create_topic, "Never", "never")
        transaction.set_rollback(True)
    # A task enqueued after it proves the worker is consuming; the first never ran.
    create_topic.delay("Afterwards", "afterwards")
    wait_until(lambda: Topic.objects.filter(slug="afterwards").exists())
    assert not Topic.objects.filter(slug="never").exists()


def test_tests_outside_the_browser_folder_run_with_the_async_guard():
    # The browser tests (tests/e2e) lift it for themselves only, even when they ran first.
    assert "DJANGO_ALLOW_ASYNC_UNSAFE" not in os.environ
