import pytest

from euro_prospects import health
from euro_prospects.celery import app as celery_app

pytestmark = pytest.mark.integration


def test_healthz_names_the_worker_as_down_when_none_runs(client, db):
    celery_app.control.purge()
    # A worker an earlier test killed leaves a heartbeat that counts for HEALTH_HEARTBEAT_MAX_AGE.
    health.broker_redis().delete(health.heartbeats_key())
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["worker"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


def test_healthz_is_ok_with_a_live_worker(client, celery_worker_process):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert celery_worker_process.name in body["checks"]["worker"]["workers"]


def test_healthz_names_the_broker_when_redis_is_unreachable(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert "broker" in response.json()["down"]
