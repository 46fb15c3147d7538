"""The Celery application. Settings live in settings.py under the CELERY_ prefix.

Enqueue from code that runs inside a transaction with ``enqueue_on_commit(task, ...)``:
the message is sent only once the rows it points at are committed, and never
when the transaction rolls back. (``task.delay_on_commit`` does the same; the
helper exists because it type-checks.)
"""

import functools
import logging
import os
from typing import Any, ParamSpec

from celery import Celery, Task
from django.conf import settings
from django.db import transaction
from kombu.exceptions import OperationalError

import euro_prospects.observability  # noqa: F401  (request ids in tasks, worker logging)
from euro_prospects.health import WorkerHeartbeat

P = ParamSpec("P")
logger = logging.getLogger("euro_prospects.celery")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "euro_prospects.settings")

app = Celery("euro_prospects")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Every worker writes a heartbeat that /healthz reads (euro_prospects/health.py).
app.steps["consumer"].add(WorkerHeartbeat)


class QueueUnavailable(Exception):
    """The broker (Redis) could not take a task: what it was to do is not done (a reader's
    data export answers 503, "try again in a few minutes")."""


def enqueue_on_commit(task: Task[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
    """Send ``task`` to the broker once the current transaction commits; with the broker
    down, the commit stands and ``QueueUnavailable`` is raised where the transaction ends."""
    transaction.on_commit(functools.partial(enqueue, task, *args, **kwargs))


def enqueue(task: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
    """Send ``task`` to the broker now; ``QueueUnavailable`` when the broker is down."""
    if not _delay(task, "task_not_queued", *args, **kwargs):
        raise QueueUnavailable(task.name)


def notify_on_commit(task: Task[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
    """Like ``enqueue_on_commit``, for a notice (an email about what just happened) that must
    never make the step that caused it fail: with the broker down, the step stands and the
    notice is logged as not sent (``event=notice_not_queued``) instead of raising."""
    transaction.on_commit(functools.partial(_delay, task, "notice_not_queued", *args, **kwargs))


def _delay(task: Task[Any, Any], event: str, *args: Any, **kwargs: Any) -> bool:
    """Hand ``task`` to the broker; False, logged as ``event``, when the broker refused it."""
    try:
        task.delay(*args, **kwargs)
    except OperationalError as exc:
        logger.error("event=%s task=%s args=%r error=%r", event, task.name, args, exc)
        return False
    return True


def longest_countdown() -> float:
    """A task waiting longer than the broker's visibility timeout would be handed to a
    second worker while the first still holds it: waits are cut to half of it, and the
    task, woken early, waits again (see ``newsletter.sending.send_batch``)."""
    return float(settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]) / 2
