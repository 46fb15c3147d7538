"""Celery tasks of the articles app. They take ids, re-read rows and call services or emails."""

from celery import shared_task

from articles import emails, services
from articles.models import Article, ArticleTransition


@shared_task
def publish_due_articles() -> list[int]:
    """Beat runs this every 30 seconds: publish scheduled articles whose time has come."""
    return services.publish_scheduled_articles()


@shared_task
def send_submission_acknowledgement(article_id: int) -> None:
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        return
    emails.submission_received(article)


@shared_task
def notify_editors_of_submission(article_id: int) -> None:
    article = Article.objects.filter(pk=article_id).first()
    if article is None:
        return
    emails.submission_for_editors(article)


@shared_task
def notify_contributors_of_step(transition_id: int) -> None:
    """Email the piece's byline authors an editor's decision (with the note) or the published link."""
    from articles.contributors import recipients_of

    step = ArticleTransition.objects.select_related("article", "by").filter(pk=transition_id).first()
    if step is None:
        return
    for recipient in recipients_of(step):
        emails.contributor_step(step, recipient)
