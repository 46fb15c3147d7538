"""Prometheus metrics: the objects every app records into, and the scrape view.

Call these from the code that does the work (never from tests of it):

    from euro_prospects import metrics
    metrics.record_emails_sent(campaign_id=campaign.id, count=n)
    metrics.record_emails_failed(campaign_id=campaign.id, count=n)
    metrics.observe_campaign_duration(seconds=...)
    metrics.record_campaign_paused(campaign_id=campaign.id)
    metrics.record_subscription()
    metrics.record_confirmation()

Queue depth is read from Redis (``LLEN`` of each queue in METRICS_QUEUES) when
Prometheus scrapes, so it needs no recording.

Several processes (gunicorn workers, Celery pool processes) count separately.
When the PROMETHEUS_MULTIPROC_DIR environment variable names a directory
shared by the processes of one machine, prometheus_client writes every
process' values there and the scrape view adds them up. Without it, each
process serves only its own values (fine for `runserver` and tests).
"""

import hmac
import os
import sys
import time
from collections.abc import Callable, Iterator

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from euro_prospects.redis_clients import redis_client

EMAILS_SENT = Counter("emails_sent", "Newsletter emails accepted by the mail server or ESP", ["campaign"])
EMAILS_FAILED = Counter("emails_failed", "Newsletter emails that failed for good", ["campaign"])
CAMPAIGN_PAUSES = Counter(
    "campaign_pauses", "Campaigns paused: the server or provider refused the sender, relay or account", ["campaign"]
)
CAMPAIGN_DURATION = Histogram(
    "campaign_duration_seconds",
    "Time from a campaign's start to its last delivery",
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400),
)
SUBSCRIPTIONS = Counter("subscriptions", "Sign-ups received (before confirmation)")
CONFIRMATIONS = Counter("confirmations", "Subscriptions confirmed by the reader")
HTTP_REQUESTS = Counter("http_requests", "HTTP responses by method and status", ["method", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to produce an HTTP response",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def record_emails_sent(*, campaign_id: int, count: int = 1) -> None:
    EMAILS_SENT.labels(campaign=str(campaign_id)).inc(count)


def record_emails_failed(*, campaign_id: int, count: int = 1) -> None:
    EMAILS_FAILED.labels(campaign=str(campaign_id)).inc(count)


def record_campaign_paused(*, campaign_id: int) -> None:
    CAMPAIGN_PAUSES.labels(campaign=str(campaign_id)).inc()


def observe_campaign_duration(*, seconds: float) -> None:
    CAMPAIGN_DURATION.observe(seconds)


def record_subscription() -> None:
    SUBSCRIPTIONS.inc()


def record_confirmation() -> None:
    CONFIRMATIONS.inc()


class QueueDepthCollector(Collector):
    """``celery_queue_depth{queue}``: messages waiting in each broker queue, read at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily("celery_queue_depth", "Messages waiting in the Celery queue", labels=["queue"])
        try:
            client = redis_client(settings.CELERY_BROKER_URL, timeout=2)
            for queue in settings.METRICS_QUEUES:
                gauge.add_metric([queue], float(client.llen(queue)))
        except redis.RedisError:
            pass  # an empty gauge says "unknown"; /healthz says the broker is down
        yield gauge


def scrape_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return registry


_queue_depth = QueueDepthCollector()


def render_metrics() -> bytes:
    registry = scrape_registry()
    registry.register(_queue_depth)
    try:
        return generate_latest(registry)
    finally:
        registry.unregister(_queue_depth)


@csrf_exempt
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return HttpResponse("A valid bearer token is required.\n", status=401, content_type="text/plain")
    return HttpResponse(render_metrics(), content_type=CONTENT_TYPE_LATEST)


class RequestMetricsMiddleware:
    """Counts responses by method and status and times them (no paths: they would explode the label set)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        HTTP_DURATION.observe(time.perf_counter() - started)
        method = request.method if request.method in {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} else "other"
        HTTP_REQUESTS.labels(method=method, status=str(response.status_code)).inc()
        return response


def serve(port: int) -> None:
    """Serve this machine's multiprocess metrics on ``port`` (worker-only machines)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = render_metrics()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 (bind where Prometheus reaches)


if __name__ == "__main__":  # python -m euro_prospects.metrics 9808
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "euro_prospects.settings")
    django.setup()
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 9808)
