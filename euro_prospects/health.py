"""/healthz: are the database, the broker and at least one Celery worker up?

The probe answers from facts that are cheap to read, so a load balancer may ask
often without tying up the web workers:

- each Celery worker writes a heartbeat (its name and the time) to a sorted set in
  the broker's Redis every HEALTH_HEARTBEAT_INTERVAL seconds, from the worker's own
  event loop (WorkerHeartbeat below), and removes it when it stops;
- the probe reads the heartbeats younger than HEALTH_HEARTBEAT_MAX_AGE in one Redis
  command with a short timeout (which also shows the broker is up), and runs
  ``SELECT 1`` at most once per HEALTH_CACHE_SECONDS per process.

Nothing is pinged and nothing waits for a worker to answer. Everybody gets the status
(200 "ok" or 503 "down"); what is down, the errors and the workers' names only go to
a caller with ``Authorization: Bearer METRICS_TOKEN`` or one on this machine.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis
from celery import bootsteps
from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection
from django.dispatch import receiver
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from euro_prospects.redis_clients import redis_client

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.25
# A heartbeat nobody has refreshed for a day is removed by the next one written.
FORGET_AFTER_SECONDS = 24 * 3600
# Headers a proxy adds: a request carrying one came from elsewhere, whatever REMOTE_ADDR says.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def heartbeats_key() -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:health:workers"


def broker_redis() -> redis.Redis:
    """A client for the broker's Redis with short timeouts (one per URL and process)."""
    return redis_client(settings.CELERY_BROKER_URL, timeout=REDIS_TIMEOUT_SECONDS)


# --- the worker's side -----------------------------------------------------------------------------


def write_heartbeat(hostname: str) -> None:
    now = time.time()
    with broker_redis().pipeline() as pipe:
        pipe.zadd(heartbeats_key(), {hostname: now})
        pipe.zremrangebyscore(heartbeats_key(), "-inf", now - FORGET_AFTER_SECONDS)
        pipe.execute()


def remove_heartbeat(hostname: str) -> None:
    broker_redis().zrem(heartbeats_key(), hostname)


class WorkerHeartbeat(bootsteps.StartStopStep):
    """A consumer bootstep: the worker's heartbeat, from the consumer's timer.

    The timer runs in the worker's event loop, as Celery's own event heartbeat does,
    so a worker whose loop is stuck stops beating and is reported down.
    """

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Any = None
        self.hostname = ""

    def beat(self) -> None:
        try:
            write_heartbeat(self.hostname)
        except Exception:  # the broker's Redis is away: the worker reconnects by itself
            logger.warning("health: could not write the worker heartbeat", exc_info=True)

    def start(self, parent: Any) -> None:
        self.hostname = parent.hostname
        self.beat()
        self.timer_entry = parent.timer.call_repeatedly(settings.HEALTH_HEARTBEAT_INTERVAL, self.beat, priority=10)

    def stop(self, parent: Any) -> None:
        if self.timer_entry is not None:
            parent.timer.cancel(self.timer_entry)
            self.timer_entry = None
        try:
            remove_heartbeat(self.hostname)
        except Exception:
            logger.warning("health: could not remove the worker heartbeat", exc_info=True)

    shutdown = stop


# --- the probe's side ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    error: str | None
    at: float


class RememberedCheck:
    """A check run at most once per HEALTH_CACHE_SECONDS per process, by one thread at a time.

    While one thread runs it, the others answer with the last outcome instead of waiting.
    """

    def __init__(self, run: Any) -> None:
        self.run = run
        self.lock = threading.Lock()
        self.last: Outcome | None = None

    def outcome(self) -> Outcome:
        last = self.last
        if last is not None and time.monotonic() - last.at < settings.HEALTH_CACHE_SECONDS:
            return last
        if last is not None and not self.lock.acquire(blocking=False):
            return last
        if last is None:
            self.lock.acquire()
        try:
            self.last = Outcome(self.run(), time.monotonic())
            return self.last
        finally:
            self.lock.release()

    def forget(self) -> None:
        self.last = None


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "down"
        return f"{type(exc).__name__}: {exc}"
    return None


database_check = RememberedCheck(_check_database)
_broker_failure: Outcome | None = None


def live_workers() -> tuple[list[str], str | None]:
    """Workers whose heartbeat is fresh, and the broker's error (None when it answered)."""
    global _broker_failure
    failure = _broker_failure
    if failure is not None and time.monotonic() - failure.at < settings.HEALTH_CACHE_SECONDS:
        return [], failure.error  # a hanging Redis costs one timeout per interval, not one per request
    try:
        names = broker_redis().zrangebyscore(heartbeats_key(), time.time() - settings.HEALTH_HEARTBEAT_MAX_AGE, "+inf")
    except Exception as exc:
        _broker_failure = Outcome(f"{type(exc).__name__}: {exc}", time.monotonic())
        return [], _broker_failure.error
    _broker_failure = None
    return sorted(name.decode() if isinstance(name, bytes) else str(name) for name in names), None


@receiver(setting_changed)
def _forget_remembered_checks(**kwargs: Any) -> None:
    global _broker_failure
    database_check.forget()
    _broker_failure = None


def may_see_details(request: HttpRequest) -> bool:
    """The metrics token, or a request made on this machine without a proxy in between."""
    token = settings.METRICS_TOKEN
    if token and hmac.compare_digest(request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        return True
    if any(request.META.get(header) for header in PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database_error = database_check.outcome().error
    workers, broker_error = live_workers()
    if broker_error is not None:
        worker_error: str | None = "broker is down"
    else:
        worker_error = None if workers else f"no worker heartbeat in {settings.HEALTH_HEARTBEAT_MAX_AGE:g} s"
    checks: dict[str, dict[str, Any]] = {
        "database": {"ok": database_error is None, "error": database_error},
        "broker": {"ok": broker_error is None, "error": broker_error},
        "worker": {"ok": worker_error is None, "error": worker_error, "workers": workers},
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    body: dict[str, Any] = {"status": "ok" if not down else "down"}
    if may_see_details(request):
        body |= {"down": down, "checks": checks}
    return JsonResponse(body, status=200 if not down else 503)
