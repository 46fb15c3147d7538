"""Logs an operator can follow: JSON lines that carry a request id from the web
request into every Celery task it enqueues, and Sentry when configured.

The id comes from a sane ``X-Request-ID`` header (nginx sets one) or is made
here; it is returned in the response's ``X-Request-ID`` header, added to every
log line as ``request_id``, and sent along with each task published during the
request, where the worker puts it back in its own log lines.
"""

import contextvars
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import signals
from django.http import HttpRequest, HttpResponse

# Readers' links carry a signed token that never expires and lets whoever holds it
# manage, export or erase the subscription: it must not reach any log.
# The same holds, for their lifetime, for shared preview links and contributors' status links.
READER_TOKEN_PATH = re.compile(
    r"(/newsletter/(?:confirm|unsubscribe|preferences)/|/preview/|/write/status/)[^/?#\s\"'<>\\]+"
)
REDACTED = "[token]"

REQUEST_ID_HEADER = "X-Request-ID"
TASK_HEADER = "request_id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
task_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar("task", default=None)


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return request_id_var.get()


class RequestIdMiddleware:
    """Give every request an id, in logs, in the response and in tasks it enqueues."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_ID.match(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        try:
            request.request_id = request_id  # type: ignore[attr-defined]
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            return response
        finally:
            request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (and inside a task ``task_id``/``task_name``) to each record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        task = task_var.get()
        if task is not None:
            record.task_id, record.task_name = task
        return True


def redact_reader_tokens(text: str) -> str:
    """``text`` with the token of every reader's link (confirm, unsubscribe, preferences) replaced."""
    if "/newsletter/" not in text and "/preview/" not in text and "/write/status/" not in text:
        return text
    return READER_TOKEN_PATH.sub(rf"\1{REDACTED}", text)


EMAIL_ADDRESS = re.compile(r"[^\s<>\"'(),;:@]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def redact_email_addresses(text: str) -> str:
    """``text`` (say a mail server's reply) with every email address replaced: log ids, not addresses."""
    return EMAIL_ADDRESS.sub("[address]", text) if "@" in text else text


_make_record = logging.getLogRecordFactory()


def _record_without_reader_tokens(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """Every log record, whichever logger and handler: Django's request and security loggers
    ("Bad Request: /newsletter/preferences/…/", CSRF failures), runserver's and gunicorn's
    access lines (request line and referrer), and the handlers of tests and Sentry."""
    record = _make_record(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed call: leave it for logging's own error report
        return record
    redacted = redact_reader_tokens(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    return record


if not getattr(_make_record, "redacts_reader_tokens", False):
    _record_without_reader_tokens.redacts_reader_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(_record_without_reader_tokens)


class PlainFormatter(logging.Formatter):
    """The plain text format, with readers' tokens redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_reader_tokens(super().format(record))


# LogRecord attributes that are not "extra" fields passed by the caller.
_STANDARD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras.

    Readers' tokens are redacted in the whole line: also in extras such as the
    request Django's logger attaches (its repr names the path).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact_reader_tokens(json.dumps(entry, default=str, ensure_ascii=False))


@signals.before_task_publish.connect
def _attach_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = request_id_var.get()
    if request_id and headers is not None and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


@signals.task_prerun.connect
def _enter_task_context(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request_id = getattr(task.request, TASK_HEADER, None) if task is not None else None
    if request_id is None and task is not None:
        request_id = (getattr(task.request, "headers", None) or {}).get(TASK_HEADER)
    request_id_var.set(request_id if isinstance(request_id, str) else None)
    task_var.set((task_id or "-", getattr(task, "name", "-")))


@signals.task_postrun.connect
def _leave_task_context(**kwargs: Any) -> None:
    request_id_var.set(None)
    task_var.set(None)


@signals.setup_logging.connect
def _use_django_logging(**kwargs: Any) -> None:
    """Celery workers log through settings.LOGGING (JSON in production) instead
    of setting up their own handlers."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


def without_reader_tokens(value: Any) -> Any:
    """``value`` (a Sentry event or breadcrumb: dicts, lists, strings) with readers' tokens redacted."""
    if isinstance(value, str):
        return redact_reader_tokens(value)
    if isinstance(value, dict):
        return {key: without_reader_tokens(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_reader_tokens(item) for item in value]
    return value


def _sentry_scrub(event: Any, hint: Any) -> Any:
    return without_reader_tokens(event)


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,  # readers' addresses are personal data
        # The request's URL and referrer, breadcrumbs, transaction names: no reader's token.
        before_send=_sentry_scrub,
        before_send_transaction=_sentry_scrub,
        before_breadcrumb=_sentry_scrub,
    )


def logging_settings(*, level: str, log_format: str) -> dict[str, Any]:
    """Django's LOGGING: every record through the redacting formatters, with its request id.

    ``log_format``: json (one object per line, for a log collector) or plain.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "euro_prospects.observability.RequestIdFilter"}},
        # Records are redacted when made (observability); the formats redact extras and tracebacks too.
        "formatters": {
            "plain": {
                "()": "euro_prospects.observability.PlainFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
            },
            "json": {"()": "euro_prospects.observability.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {"django.db.backends": {"level": "INFO"}},
    }
