"""Who may do what to an article: roles, workflow steps, and which fields whom may change.

The one place for these rules: the services enforce them, and the admin and the API
ask them what to show. An Editor (``is_editor``) may do everything; an Author may
work on their own pieces only (``is_own_article``), within ``EDIT_RULES``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet

from articles.models import Article, Author

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    User = AbstractUser | AnonymousUser

Status = Article.Status

# action -> (states it may start from, state it leads to, permission it needs)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "submit": (frozenset({Status.DRAFT, Status.UNPUBLISHED}), Status.IN_REVIEW, "articles.submit_article"),
    "approve": (frozenset({Status.IN_REVIEW}), Status.APPROVED, "articles.approve_article"),
    "schedule": (
        frozenset({Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED, Status.UNPUBLISHED}),
        Status.SCHEDULED,
        "articles.schedule_article",
    ),
    "publish": (
        frozenset({Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED, Status.UNPUBLISHED}),
        Status.PUBLISHED,
        "articles.publish_article",
    ),
    "unpublish": (frozenset({Status.PUBLISHED}), Status.UNPUBLISHED, "articles.unpublish_article"),
    "return_to_draft": (
        frozenset({Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED}),
        Status.DRAFT,
        "articles.approve_article",
    ),
    # Turning a piece down: back to draft like "send back", but the author is told it will not run.
    "decline": (frozenset({Status.IN_REVIEW, Status.APPROVED}), Status.DRAFT, "articles.approve_article"),
}
VERBS = {
    "submit": "submit for review",
    "approve": "approve",
    "schedule": "schedule",
    "publish": "publish",
    "unpublish": "unpublish",
    "return_to_draft": "send back to draft",
    "decline": "decline",
}


# --- roles ---------------------------------------------------------------------------------------


# Who is an editor: whoever may publish (the Editors group, articles.roles, carries it).
EDITOR_PERMISSION = "articles.publish_article"


def is_editor(user: User | None) -> bool:
    return bool(user and user.is_active and user.has_perm(EDITOR_PERMISSION))


def editors() -> QuerySet[Any]:
    """The active accounts that are editors (``is_editor``), superusers included."""
    app_label, codename = EDITOR_PERMISSION.split(".")
    permission = Q(content_type__app_label=app_label, codename=codename)
    granted = Permission.objects.filter(permission).values("pk")
    holders = Q(is_superuser=True) | Q(groups__permissions__in=granted) | Q(user_permissions__in=granted)
    return get_user_model().objects.filter(holders, is_active=True).distinct()


def is_own_article(user: User | None, article: Article) -> bool:
    """True when ``user`` created the article or is one of its authors (``Article.objects.owned_by``)."""
    if user is None or not user.is_authenticated or article.pk is None:
        return False
    return article.created_by_id == user.pk or Article.objects.owned_by(user).filter(pk=article.pk).exists()


def can_edit(user: User | None, article: Article) -> bool:
    """Whether ``user`` may change anything of ``article`` now (see ``EDIT_RULES``)."""
    if user is None or not user.is_active or not user.has_perm("articles.change_article"):
        return False
    return bool(editable_fields(user, article))


def can_view(user: User | None, article: Article) -> bool:
    if user is None or not user.is_active or not user.is_staff:
        return False
    return is_editor(user) or is_own_article(user, article)


def can_transition(user: User | None, article: Article, action: str) -> bool:
    """Whether ``user`` has the right to ``action`` on ``article`` (the state is checked separately)."""
    if user is None:
        return True
    _sources, _target, permission = TRANSITIONS[action]
    if not user.is_active or not user.has_perm(permission):
        return False
    return is_editor(user) or is_own_article(user, article)


def allowed_actions(user: User | None, article: Article) -> list[str]:
    """The workflow steps ``user`` can take on ``article`` now (for the admin's buttons)."""
    return [
        action
        for action, (sources, _target, _permission) in TRANSITIONS.items()
        if article.status in sources and can_transition(user, article, action)
    ]


def sees_private_author_fields(user: User | None, author: Author | None) -> bool:
    """An author's address and account are for those who manage authors (Editors), and the author themself."""
    if user is None or not user.is_active:
        return False
    if user.has_perm("articles.change_author"):
        return True
    return author is not None and author.user_id is not None and author.user_id == user.pk


AUTHOR_PRIVATE_FIELDS = ("email", "user", "same_email_as")


def check_can_edit(by: User | None, article: Article) -> None:
    if by is not None and not can_edit(by, article):
        raise PermissionDenied(f"You may not edit “{article.title}”.")


# --- who may change which field ------------------------------------------------------------------


class Access(enum.Enum):
    """Who may change a field of an article in a given state (one cell of ``EDIT_RULES``)."""

    WORKFLOW = "nobody: only the workflow steps change it"
    EDITORS = "Editors"
    AUTHORS = "Editors and the piece's own Authors"
    REVIEW = "Editors and the piece's own Authors; an Author's change sends the piece back to review"


_W, _E, _A, _R = Access.WORKFLOW, Access.EDITORS, Access.AUTHORS, Access.REVIEW
EDIT_STATES = (Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED, Status.PUBLISHED, Status.UNPUBLISHED)
# The one rule for every edit (admin form, History revert, API): field x state -> who may change it.
# The byline, the reviewer, placement, the newsletter send and the canonical URL are the editors' call.
EDIT_RULES: dict[str, tuple[Access, ...]] = {
    #                         draft in_review approved scheduled published unpublished
    "title":                  (_A,  _A,       _R,      _R,       _E,       _E),
    "slug":                   (_A,  _A,       _R,      _R,       _E,       _E),
    "standfirst":             (_A,  _A,       _R,      _R,       _E,       _E),
    "body":                   (_A,  _A,       _R,      _R,       _E,       _E),
    "hero_image":             (_A,  _A,       _R,      _R,       _E,       _E),
    "hero_image_alt":         (_A,  _A,       _R,      _R,       _E,       _E),
    "hero_image_credit":      (_A,  _A,       _R,      _R,       _E,       _E),
    "topics":                 (_A,  _A,       _R,      _R,       _E,       _E),
    "disclaimer":             (_A,  _A,       _R,      _R,       _E,       _E),
    "meta_title":             (_A,  _A,       _R,      _R,       _E,       _E),
    "meta_description":       (_A,  _A,       _R,      _R,       _E,       _E),
    "canonical_url":          (_E,  _E,       _E,      _E,       _E,       _E),
    "authors":                (_E,  _E,       _E,      _E,       _E,       _E),
    "editor":                 (_E,  _E,       _E,      _E,       _E,       _E),
    "is_featured":            (_E,  _E,       _E,      _E,       _E,       _E),
    "send_to_subscribers":    (_E,  _E,       _E,      _E,       _E,       _E),
    "publish_at":             (_E,  _E,       _E,      _E,       _E,       _E),
    "status":                 (_W,  _W,       _W,      _W,       _W,       _W),
    "published_at":           (_W,  _W,       _W,      _W,       _W,       _W),
}  # fmt: skip
# What restoring an old version (History → Revert) brings back: the piece's text and image,
# never its workflow state, dates, reviewer, placement or newsletter send.
REVERTED_FIELDS = (
    "title", "slug", "standfirst", "body", "hero_image", "hero_image_alt", "hero_image_credit",
    "disclaimer", "meta_title", "meta_description", "canonical_url",
)  # fmt: skip
EDITOR, AUTHOR = "editor", "author"


def field_access(field: str, status: str) -> Access:
    return EDIT_RULES[field][EDIT_STATES.index(Status(status))]


def editing_role(user: User | None, article: Article | None) -> str | None:
    """``"editor"``, ``"author"`` (of this piece, or of a new one) or None: who ``user`` is to ``article``."""
    if user is None or not user.is_active:
        return None
    if is_editor(user):
        return EDITOR
    if article is None:
        return AUTHOR if user.has_perm("articles.add_article") else None
    if user.has_perm("articles.change_article") and is_own_article(user, article):
        return AUTHOR
    return None


def role_may(role: str | None, access: Access) -> bool:
    if role == EDITOR:
        return access is not Access.WORKFLOW
    return role == AUTHOR and access in (Access.AUTHORS, Access.REVIEW)


def editable_fields(user: User | None, article: Article | None) -> list[str]:
    """The fields ``user`` may change on ``article`` now (``None``: a new piece, a draft)."""
    role = editing_role(user, article)
    status = article.status if article is not None else Status.DRAFT
    return [field for field in EDIT_RULES if role_may(role, field_access(field, status))]


def may_change(user: User | None, article: Article | None, field: str) -> bool:
    return field in editable_fields(user, article)
