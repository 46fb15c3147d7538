import os

import pytest
from django.db import transaction

from articles.models import Topic
from euro_prospects.celery import enqueue_on_commit
from tests.support.celery_probe import create_topic
from tests.support.workers import wait_until


@pytest.mark.integration
def test_a_real_worker_runs_a_task_enqueued_after_commit(celery_worker_process):
    with transaction.atomic():
        enqueue_on_commit(create_topic, "Fisheries", "fisheries")
    assert wait_until(lambda: Topic.objects.filter(slug="fisheries").exists())


@pytest.mark.integration
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


@pytest.mark.django_db(transaction=True)
def test_a_notice_the_broker_cannot_take_is_logged_and_the_step_stands(monkeypatch, caplog):
    """The broker itself going away is tested in tests/newsletter/test_stopping_and_outages.py
    (publishing with Redis stopped); here the refusal is raised where kombu raises it."""
    from kombu.exceptions import OperationalError

    from euro_prospects.celery import notify_on_commit

    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(create_topic, "delay", refuse)
    with transaction.atomic():
        Topic.objects.create(name="Kept", slug="kept")
        notify_on_commit(create_topic, "Lost notice", "lost-notice")
    assert Topic.objects.filter(slug="kept").exists()
    assert "event=notice_not_queued task=tests.support.celery_probe.create_topic" in caplog.text
