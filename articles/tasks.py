"""Celery tasks of the articles app. They take ids, re-read rows and call services or emails."""

from typing import Any

from celery import Task, shared_task

from articles import emails, services
from articles.models import Article, ArticleTransition
from euro_prospects.emails import retried_when_transient


@shared_task
def publish_due_articles() -> list[int]:
    """Beat runs this every 30 seconds: publish scheduled articles whose time has come."""
    return services.publish_scheduled_articles()


# Each notice is tried again while the mail server says "later"
# (euro_prospects.emails.retried_when_transient).


@shared_task(bind=True)
def send_submission_acknowledgement(self: Task[Any, Any], article_id: int) -> None:
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        return
    with retried_when_transient(self):
        emails.submission_received(article)


@shared_task(bind=True)
def notify_editors_of_submission(self: Task[Any, Any], article_id: int) -> None:
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        return
    with retried_when_transient(self):
        emails.submission_for_editors(article)


@shared_task(bind=True)
def notify_contributors_of_step(self: Task[Any, Any], transition_id: int, notified: list[str] | None = None) -> None:
    """Email the piece's byline authors an editor's decision (with the note) or the published link.

    ``notified``: the addresses an earlier try, which met a "later", had emailed already.
    """
    from articles.contributors import recipients_of

    step = ArticleTransition.objects.select_related("article", "by").filter(pk=transition_id).first()
    if step is None:
        return
    done = list(notified or [])
    for recipient in recipients_of(step):
        if recipient.email in done:
            continue
        with retried_when_transient(self, kwargs={"notified": done}):
            emails.contributor_step(step, recipient)
        done.append(recipient.email)
