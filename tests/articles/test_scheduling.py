import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from articles import services
from articles.models import Article, ArticleTransition
from articles.signals import article_published
from articles.tasks import publish_due_articles
from tests.support.factories import ArticleFactory
from tests.support.workers import WorkerProcess, wait_until

Status = Article.Status


def scheduled(count, publish_at):
    return [
        ArticleFactory.create(status=Status.SCHEDULED, published_at=None, publish_at=publish_at) for _ in range(count)
    ]


def test_beat_runs_the_publisher_at_least_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["articles-publish-due"]
    assert entry["task"] == publish_due_articles.name
    assert isinstance(entry["schedule"], float)
    assert entry["schedule"] <= 60


def test_it_publishes_due_articles_and_leaves_future_ones(db):
    now = timezone.now()
    due = scheduled(2, now - timedelta(seconds=5))
    later = scheduled(1, now + timedelta(hours=1))
    assert sorted(services.publish_scheduled_articles()) == sorted(a.pk for a in due)
    assert set(Article.objects.published().values_list("pk", flat=True)) == {a.pk for a in due}
    later[0].refresh_from_db()
    assert later[0].status == Status.SCHEDULED
    assert ArticleTransition.objects.get(article=due[0], to_status=Status.PUBLISHED).by is None


def test_a_scheduled_article_goes_live_when_its_time_comes(coras_draft, eva):
    when = timezone.now() + timedelta(minutes=30)
    services.schedule_article(article=coras_draft, by=eva, publish_at=when)
    assert services.publish_scheduled_articles() == []
    with time_machine.travel(when + timedelta(seconds=20)):
        assert services.publish_scheduled_articles() == [coras_draft.pk]
        assert Article.objects.published().filter(pk=coras_draft.pk).exists()


@pytest.mark.integration
def test_two_publishers_racing_publish_each_article_exactly_once(transactional_db):
    """Two threads, each with its own database connection, run the beat task's service at once."""
    articles = scheduled(30, timezone.now() - timedelta(seconds=1))
    signals = []
    lock = threading.Lock()

    def receiver(sender, article_id, **kwargs):
        with lock:
            signals.append(article_id)

    article_published.connect(receiver, weak=False)
    start = threading.Barrier(2)
    results = {}

    def run(name):
        try:
            start.wait()
            results[name] = services.publish_scheduled_articles()
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        article_published.disconnect(receiver)
    ids = sorted(a.pk for a in articles)
    assert sorted(results["a"] + results["b"]) == ids
    assert sorted(signals) == ids
    assert ArticleTransition.objects.filter(to_status=Status.PUBLISHED).count() == len(ids)
    assert Article.objects.published().count() == len(ids)


@pytest.mark.integration
def test_two_real_workers_racing_publish_once(transactional_db):
    """The beat task enqueued twice and taken by two worker processes at once."""
    articles = scheduled(20, timezone.now() - timedelta(seconds=1))
    workers = [WorkerProcess().start(timeout=60), WorkerProcess().start(timeout=60)]
    try:
        for _ in range(4):
            publish_due_articles.delay()
        wait_until(lambda: Article.objects.published().count() == len(articles), timeout=60)
        # Let any late task finish before counting.
        publish_due_articles.delay()
        publish_due_articles.delay()
        wait_until(lambda: not Article.objects.filter(status=Status.SCHEDULED).exists(), timeout=30)
    finally:
        for worker in workers:
            worker.stop()
    for article in articles:
        assert ArticleTransition.objects.filter(article=article, to_status=Status.PUBLISHED).count() == 1
