"""What the admin's home page shows about articles: reads only, one query per list.

Editors see the newsroom's work: pieces waiting for review (longest wait first),
scheduled pieces, drafts in progress. Authors see their own pieces by state and
what editors sent back, with the editor's note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.db.models import Max, OuterRef, Prefetch, Q, QuerySet, Subquery

from articles import permissions
from articles.models import Article, ArticleAuthor, ArticleTransition

if TYPE_CHECKING:
    from articles.services import User

Status = Article.Status
LIST_LENGTH = 10


@dataclass
class AuthorDesk:
    """An author's own pieces by state (only the states that have some), and the pieces sent back."""

    by_state: list[tuple[str, list[Article]]] = field(default_factory=list)
    sent_back: list[Article] = field(default_factory=list)


@dataclass
class Dashboard:
    is_editor: bool
    waiting: list[Article] = field(default_factory=list)
    scheduled: list[Article] = field(default_factory=list)
    drafts: list[Article] = field(default_factory=list)
    own: AuthorDesk | None = None


def for_user(user: User) -> Dashboard:
    if permissions.is_editor(user):
        return Dashboard(
            is_editor=True, waiting=waiting_for_review(), scheduled=scheduled_pieces(), drafts=drafts_in_progress()
        )
    if user.is_active and user.has_perm("articles.change_article"):
        return Dashboard(is_editor=False, own=author_desk(user))
    return Dashboard(is_editor=False)


def _with_bylines(articles: QuerySet[Article]) -> QuerySet[Article]:
    return articles.prefetch_related(
        Prefetch("article_authors", queryset=ArticleAuthor.objects.select_related("author").order_by("position"))
    )


def waiting_for_review(limit: int = LIST_LENGTH) -> list[Article]:
    """Pieces in review, the one submitted longest ago first; ``submitted_at`` is the last submission."""
    articles = (
        Article.objects.filter(status=Status.IN_REVIEW)
        .annotate(submitted_at=Max("transitions__at", filter=Q(transitions__to_status=Status.IN_REVIEW)))
        .order_by("submitted_at", "pk")
    )
    return list(_with_bylines(articles)[:limit])


def scheduled_pieces(limit: int = LIST_LENGTH) -> list[Article]:
    articles = Article.objects.filter(status=Status.SCHEDULED).order_by("publish_at", "pk")
    return list(_with_bylines(articles)[:limit])


def drafts_in_progress(limit: int = LIST_LENGTH) -> list[Article]:
    """Drafts, the most recently touched first."""
    articles = Article.objects.filter(status=Status.DRAFT).order_by("-updated_at", "-pk")
    return list(_with_bylines(articles)[:limit])


def author_desk(user: User) -> AuthorDesk:
    """The pieces ``user`` wrote or is in the byline of, grouped by state; those an editor sent back."""
    own = Q(created_by=user.pk) | Q(article_authors__author__user=user.pk)
    ids = Article.objects.filter(own).values("pk")
    last_step = ArticleTransition.objects.filter(article=OuterRef("pk")).order_by("-at", "-pk")
    articles = list(
        _with_bylines(
            Article.objects.filter(pk__in=ids)
            .annotate(
                last_from=Subquery(last_step.values("from_status")[:1]),
                last_note=Subquery(last_step.values("note")[:1]),
                last_at=Subquery(last_step.values("at")[:1]),
                last_by_name=Subquery(last_step.values("by__username")[:1]),
            )
            .order_by("-updated_at", "-pk")
        )
    )
    desk = AuthorDesk()
    for value, label in Status.choices:
        pieces = [article for article in articles if article.status == value]
        if pieces:
            desk.by_state.append((label, pieces))
    # Sent back: an editor moved it from review (or approval, or the schedule) back to draft, and it is still there.
    desk.sent_back = [
        article
        for article in articles
        if article.status == Status.DRAFT and article.last_from in (Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED)  # type: ignore[attr-defined]
    ]
    return desk
