import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from euro_prospects import health
from euro_prospects.celery import app as celery_app
from tests.support.smtp import free_port
from tests.support.workers import wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def broker_of_its_own(settings, monkeypatch) -> Iterator[str]:
    """A Redis server of this test's own as the broker: no worker of another test run
    (or of `make run`) can answer its pings."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: `apt-get install -y redis-server`")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _answers(url))
        settings.CELERY_BROKER_URL = url
        monkeypatch.setenv("CELERY_BROKER_URL", url)  # Celery reads it before its own setting
        monkeypatch.setattr(celery_app.conf, "broker_url", url)
        # New connection pools for the private broker; the shared broker's come back afterwards.
        monkeypatch.setattr(celery_app, "_pool", None)
        monkeypatch.setattr(celery_app.amqp, "_producer_pool", None)
        yield url
        pool: Any = celery_app.pool
        pool.force_close_all()
    finally:
        process.kill()
        process.wait()


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.2).ping())
    except redis.ConnectionError:
        return False


def test_healthz_names_the_worker_as_down_when_none_runs(client, db, broker_of_its_own):
    # The probe reads heartbeats from the broker's Redis: it must be the private one.
    assert health.broker_redis().connection_pool.connection_kwargs["port"] == int(
        broker_of_its_own.split(":")[2].split("/")[0]
    )
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
