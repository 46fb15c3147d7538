"""/healthz answers from worker heartbeats in Redis, cheaply, and tells details only to the operator."""

import time
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection

from euro_prospects import health
from euro_prospects.celery import app as celery_app
from tests.support.workers import WorkerProcess, wait_until

pytestmark = pytest.mark.integration

OUTSIDER = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture(autouse=True)
def no_heartbeats_yet(settings) -> Iterator[None]:
    """Heartbeats of workers earlier tests killed (they never said goodbye) do not count here."""
    redis, key = health.broker_redis(), health.heartbeats_key()
    redis.delete(key)
    health.database_check.forget()
    yield
    redis.delete(key)


def test_a_running_worker_is_up_and_one_that_stopped_is_down(client, celery_worker_process):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert celery_worker_process.name in response.json()["checks"]["worker"]["workers"]

    celery_worker_process.stop()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["down"] == ["worker"]


def test_a_killed_worker_is_down_once_its_heartbeat_is_older_than_the_limit(client, transactional_db, settings):
    settings.HEALTH_HEARTBEAT_MAX_AGE = 3
    worker = WorkerProcess(extra_env={"HEALTH_HEARTBEAT_INTERVAL": "0.5", "HEALTH_HEARTBEAT_MAX_AGE": "3"}).start()
    try:
        redis = health.broker_redis()
        first = redis.zscore(health.heartbeats_key(), worker.name)
        assert first is not None
        # The worker keeps beating, not only once at start.
        wait_until(lambda: (redis.zscore(health.heartbeats_key(), worker.name) or 0) > first, timeout=10)
        assert client.get("/healthz").status_code == 200
        worker.kill()
        wait_until(lambda: client.get("/healthz").status_code == 503, timeout=15)
        assert client.get("/healthz").json()["down"] == ["worker"]
    finally:
        worker.stop()


def test_the_probe_pings_no_worker_and_opens_no_broker_connection(
    client, db, monkeypatch, django_assert_max_num_queries
):
    calls: list[str] = []
    real_connect = Connection.ensure_connection

    def ping(*args: Any, **kwargs: Any) -> list[Any]:
        calls.append("ping")
        return []

    def ensure_connection(self: Connection, *args: Any, **kwargs: Any) -> Any:
        calls.append("connect")
        return real_connect(self, *args, **kwargs)

    monkeypatch.setattr(celery_app.control, "ping", ping)
    monkeypatch.setattr(Connection, "ensure_connection", ensure_connection)
    started = time.monotonic()
    with django_assert_max_num_queries(1):  # SELECT 1 once per HEALTH_CACHE_SECONDS, not once per request
        for _ in range(100):
            assert client.get("/healthz").status_code == 503
    elapsed = time.monotonic() - started
    assert calls == []
    # The old probe waited 1 s for worker replies on every request (100 s here); see
    # docs/deploy.md for the measured latency (bench/health.py).
    assert elapsed < 10


def test_the_public_learns_the_status_and_nothing_else(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz", **OUTSIDER)
    assert response.status_code == 503
    assert response.json() == {"status": "down"}
    assert b"127.0.0.1" not in response.content


def test_a_running_worker_is_not_named_to_the_public(client, celery_worker_process):
    response = client.get("/healthz", **OUTSIDER)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert celery_worker_process.name.encode() not in response.content


def test_a_request_relayed_by_the_local_proxy_is_not_local(client, db):
    response = client.get("/healthz", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert response.json() == {"status": "down"}


def test_the_metrics_token_shows_the_details_from_anywhere(client, db, settings):
    settings.METRICS_TOKEN = "a-token-for-the-health-test"
    wrong = client.get("/healthz", HTTP_AUTHORIZATION="Bearer another-token", **OUTSIDER)
    assert wrong.json() == {"status": "down"}
    right = client.get("/healthz", HTTP_AUTHORIZATION="Bearer a-token-for-the-health-test", **OUTSIDER)
    body = right.json()
    assert body["down"] == ["worker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_an_unreachable_broker_is_named_on_this_machine(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    body = client.get("/healthz").json()
    assert body["down"] == ["broker", "worker"]
    assert "Connection" in body["checks"]["broker"]["error"]
