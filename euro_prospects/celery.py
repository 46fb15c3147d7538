"""The Celery application. Settings live in settings.py under the CELERY_ prefix.

Enqueue from code that runs inside a transaction with ``enqueue_on_commit(task, ...)``:
the message is sent only once the rows it points at are committed, and never
when the transaction rolls back. (``task.delay_on_commit`` does the same; the
helper exists because it type-checks.)
"""

import functools
import os
from typing import Any, ParamSpec

from celery import Celery, Task
from django.db import transaction

import euro_prospects.observability  # noqa: F401  (request ids in tasks, worker logging)
from euro_prospects.health import WorkerHeartbeat

P = ParamSpec("P")

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "euro_prospects.settings")

app = Celery("euro_prospects")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Every worker writes a heartbeat that /healthz reads (euro_prospects/health.py).
app.steps["consumer"].add(WorkerHeartbeat)


def enqueue_on_commit(task: Task[P, Any], *args: P.args, **kwargs: P.kwargs) -> None:
    """Send ``task`` to the broker once the current transaction commits."""
    transaction.on_commit(functools.partial(task.delay, *args, **kwargs))
