"""A task only the test worker loads (``--include tests.support.celery_probe``): it proves
that a real worker process runs what the web process enqueues, on the same database."""

from celery import shared_task

from articles.models import Topic


@shared_task
def create_topic(name: str, slug: str) -> None:
    Topic.objects.get_or_create(slug=slug, defaults={"name": name})


@shared_task
def log_line(text: str) -> None:
    """Writes one log line from inside a task (the request id test reads the worker's log)."""
    import logging

    logging.getLogger("tests.support.celery_probe").info(text)
