"""The contributor's loop: a piece sent through /write/ and what its writer hears back.

The writer has no account. They get a private status link (a signed token naming
the piece and their author record; it does not expire while the piece exists) in the
acknowledgement email and on the page after sending. The token carries no timestamp,
so every email and page gives a writer the same link for a piece. When an editor sends the piece
back, accepts it or declines it, they are emailed the editor's note; when it goes
live, its address. ``services._transition`` enqueues ``tasks.notify_contributors_of_step``
after commit for those steps (``services.CONTRIBUTOR_NOTICES``).

"Contributor" here is a byline author with an email address and no staff account.
Byline authors with a staff account (correspondents writing in the admin) hear of the
same steps at their author address, or their account's, with a link to the piece's
admin page instead of a status link (``recipients_of``). Whoever took the step is
never written to about it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from articles.models import Article, ArticleAuthor, ArticleTransition, Author

SALT = "articles.contributor-status"


def status_path(article: Article, author: Author) -> str:
    token = signing.Signer(salt=SALT).sign_object([article.pk, author.pk])
    return reverse("articles:contributor_status", kwargs={"token": token})


def status_url(article: Article, author: Author) -> str:
    return settings.SITE_URL + status_path(article, author)


def article_for_status_token(token: str) -> tuple[Article, Author] | None:
    """The piece and author a status token names, or None for a forged token or a piece gone."""
    try:
        if token.count(":") == 2:  # links sent before 2026-12 carry a timestamp
            article_id, author_id = signing.loads(token, salt=SALT)
        else:
            article_id, author_id = signing.Signer(salt=SALT).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    link = (
        ArticleAuthor.objects.select_related("article", "author")
        .filter(article_id=article_id, author_id=author_id)
        .first()
    )
    return (link.article, link.author) if link else None


@dataclass(frozen=True)
class Recipient:
    """A byline author told of an editor's step, at ``email``, pointed to ``link``."""

    author: Author
    email: str
    link: str  # a contributor's private status link, or the piece's admin page for staff
    has_account: bool


def recipients_of(step: ArticleTransition) -> list[Recipient]:
    """Who hears of ``step``: the byline's contributors and its staff authors with an
    address, in byline order, once per address, never the person who took the step."""
    article = step.article
    actor = step.by if step.by_id else None
    skipped = {actor.email.lower()} if actor is not None and actor.email else set()
    admin_url = settings.SITE_URL + reverse("admin:articles_article_change", args=[article.pk])
    recipients = []
    links = ArticleAuthor.objects.filter(article=article).select_related("author__user").order_by("position")
    for author in (link.author for link in links):
        user = author.user
        if user is None:
            email, link = author.email, status_url(article, author)
        elif user.is_active and user.pk != step.by_id:
            email, link = author.email or user.email, admin_url
        else:
            continue
        if email and email.lower() not in skipped:
            skipped.add(email.lower())
            recipients.append(Recipient(author, email, link, has_account=user is not None))
    return recipients


@dataclass(frozen=True)
class Status:
    headline: str
    explanation: str
    note: str  # the editor's latest note, if any
    url: str  # the published piece's address, once it is live


def last_decision(article: Article) -> ArticleTransition | None:
    """The latest step an editor took that the contributor hears of."""
    from articles.services import CONTRIBUTOR_NOTICES

    return article.transitions.filter(action__in=CONTRIBUTOR_NOTICES).order_by("-at", "-pk").first()


def status_for(article: Article) -> Status:
    """What the status page says: where the piece stands, in the contributor's words."""
    step = last_decision(article)
    note = step.note if step is not None and step.action != "publish" else ""
    state = Article.Status
    if article.status == state.PUBLISHED:
        url = settings.SITE_URL + article.get_absolute_url()
        return Status("Published", "Your piece is live. Thank you for writing for us.", note, url)
    if article.status == state.IN_REVIEW:
        return Status("With our editors", "An editor will read your piece and reply, usually within a week.", "", "")
    if article.status == state.APPROVED:
        return Status("Accepted", "An editor accepted your piece; it will be scheduled for publication.", note, "")
    if article.status == state.SCHEDULED and article.publish_at:
        when = date_format(timezone.localtime(article.publish_at), "F j, Y | H:i")
        return Status("Accepted and scheduled", f"Your piece goes live on {when}.", note, "")
    if article.status == state.DRAFT and step is not None and step.action == "decline":
        return Status("Declined", "We will not publish this piece. The editor's note says why.", note, "")
    if article.status == state.DRAFT and step is not None and step.action == "return_to_draft":
        return Status(
            "Sent back to you",
            "An editor asks for changes. Reply to the email we sent you with your revised piece.",
            note,
            "",
        )
    if article.status == state.UNPUBLISHED:
        return Status("No longer published", "The piece has been taken off the site.", note, "")
    return Status("With our editors", "Your piece is being prepared by the editors.", note, "")
