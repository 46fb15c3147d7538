"""Emails of the articles app: one function per email, each rendering a subject/text/html trio."""

from django.conf import settings
from django.urls import reverse

from articles import permissions
from articles.contributors import Recipient, status_url
from articles.models import Article, ArticleAuthor, ArticleTransition, Author, SiteSettings
from euro_prospects.emails import build_email


def byline_author(article: Article) -> Author | None:
    first = ArticleAuthor.objects.filter(article=article).select_related("author").order_by("position").first()
    return first.author if first else None


def _send(name: str, context: dict[str, object], to: list[str], reply_to: list[str] | None = None) -> None:
    context = {"site": SiteSettings.load(), "site_url": settings.SITE_URL, **context}
    build_email(f"articles/emails/{name}", context, to, reply_to=reply_to).send()


def submission_received(article: Article) -> None:
    """To the contributor: we have your piece and an editor will read it."""
    author = byline_author(article)
    if author is None or not author.email:
        return
    context = {"article": article, "author": author, "status_url": status_url(article, author)}
    _send("submission_received", context, [author.email])


def editor_addresses() -> list[str]:
    return sorted({email for email in permissions.editors().values_list("email", flat=True) if email})


def submission_for_editors(article: Article) -> None:
    """To the editors: a new contributor piece waits in the review queue."""
    recipients = editor_addresses()
    if not recipients:
        return
    author = byline_author(article)
    admin_url = settings.SITE_URL + reverse("admin:articles_article_change", args=[article.pk])
    reply_to = [author.email] if author and author.email else None
    _send(
        "submission_for_editors",
        {"article": article, "author": author, "admin_url": admin_url},
        recipients,
        reply_to=reply_to,
    )


def contributor_step(step: ArticleTransition, recipient: Recipient) -> None:
    """To a byline author: an editor sent their piece back, accepted or declined it (with the note), or it went live.

    A contributor gets their status link; an author with a staff account the piece's admin page.
    """
    article = step.article
    context = {
        "article": article,
        "author": recipient.author,
        "action": step.action,
        "note": step.note,
        "has_account": recipient.has_account,
        "link": recipient.link,
        "article_url": settings.SITE_URL + article.get_absolute_url(),
    }
    # A reply goes to the editor who took the step, who wrote the note.
    editor_email = getattr(step.by, "email", "") if step.by_id else ""
    _send("contributor_step", context, [recipient.email], reply_to=[editor_email] if editor_email else None)
