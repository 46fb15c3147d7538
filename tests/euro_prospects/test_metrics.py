"""Prometheus metrics at METRICS_PATH: our counters, queue depth, token protection, several processes."""

import os
import subprocess
import sys

import redis
from django.conf import settings as django_settings
from prometheus_client.parser import text_string_to_metric_families

from euro_prospects import metrics


def scrape(client, **headers) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_our_counters_show_up_and_grow(client, db):
    before = scrape(client)
    metrics.record_emails_sent(campaign_id=901, count=3)
    metrics.record_emails_failed(campaign_id=901)
    metrics.record_subscription()
    metrics.record_confirmation()
    metrics.observe_campaign_duration(seconds=42.0)
    after = scrape(client)

    def grew(name: str, labels: tuple[tuple[str, str], ...] = ()) -> float:
        return after[(name, labels)] - before.get((name, labels), 0)

    assert grew("emails_sent_total", (("campaign", "901"),)) == 3
    assert grew("emails_failed_total", (("campaign", "901"),)) == 1
    assert grew("subscriptions_total") == 1
    assert grew("confirmations_total") == 1
    assert grew("campaign_duration_seconds_count") == 1


def test_queue_depth_is_read_from_redis_at_scrape_time(client, db, settings):
    settings.METRICS_QUEUES = ["metrics-test-queue"]
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.delete("metrics-test-queue")
    try:
        assert scrape(client)[("celery_queue_depth", (("queue", "metrics-test-queue"),))] == 0
        broker.rpush("metrics-test-queue", *[b"message"] * 7)
        assert scrape(client)[("celery_queue_depth", (("queue", "metrics-test-queue"),))] == 7
    finally:
        broker.delete("metrics-test-queue")


def test_requests_are_counted_by_status(client, db):
    before = scrape(client).get(("http_requests_total", (("method", "GET"), ("status", "404"))), 0)
    client.get("/articles/no-such-article/")
    assert scrape(client)[("http_requests_total", (("method", "GET"), ("status", "404")))] == before + 1


def test_a_metrics_token_keeps_strangers_out(client, db, settings):
    settings.METRICS_TOKEN = "scrape-secret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").status_code == 200


def test_metrics_from_other_processes_are_added_up(tmp_path, monkeypatch):
    script = "from euro_prospects import metrics; metrics.record_emails_sent(campaign_id=77, count=5)"
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "euro_prospects.settings"}
    for _ in range(2):  # two worker processes
        subprocess.run([sys.executable, "-c", f"import django; django.setup(); {script}"], env=env, check=True)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    output = metrics.render_metrics().decode()
    assert 'emails_sent_total{campaign="77"} 10.0' in output


def test_probes_are_answered_over_plain_http_while_pages_redirect_to_https(client, db, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/").status_code == 301
    assert client.get("/metrics").status_code == 200
    health = client.get("/healthz")
    # Answered here, not redirected: the body is the health report (up or down, whatever runs now).
    assert not health.has_header("Location")
    assert health.json()["checks"]["database"]["ok"] is True
