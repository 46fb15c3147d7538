"""/healthz: is the database, the broker and at least one Celery worker up?"""

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

from euro_prospects.celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 2
WORKER_PING_SECONDS = 1.0


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "down"
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    try:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=BROKER_TIMEOUT_SECONDS) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def check_workers() -> tuple[list[str], str | None]:
    try:
        replies = celery_app.control.ping(timeout=WORKER_PING_SECONDS) or []
    except Exception as exc:
        return [], f"{type(exc).__name__}: {exc}"
    workers = sorted(name for reply in replies for name in reply)
    return workers, None if workers else "no worker answered a ping"


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    database_error = check_database()
    broker_error = check_broker()
    workers, worker_error = check_workers() if broker_error is None else ([], "broker is down")
    checks: dict[str, dict[str, Any]] = {
        "database": {"ok": database_error is None, "error": database_error},
        "broker": {"ok": broker_error is None, "error": broker_error},
        "worker": {"ok": worker_error is None, "error": worker_error, "workers": workers},
    }
    down = [name for name, check in checks.items() if not check["ok"]]
    body = {"status": "ok" if not down else "down", "down": down, "checks": checks}
    return JsonResponse(body, status=200 if not down else 503)
