"""Writes to articles: the editorial workflow and the contributor submission.

Every change of status goes through ``_transition``: it locks the row, checks the
role of ``by`` and that the move is allowed from the current state, records an
``ArticleTransition`` (who, when, from, to) and saves. An invalid move raises
``InvalidTransition`` and a missing right raises ``PermissionDenied``; neither
changes anything. ``by=None`` means the system (the scheduler, a public
submission) and skips the role check.

Publishing sends ``articles.signals.article_published`` once, after commit: the
newsletter connects to it; this app never imports the newsletter.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.core.files.images import get_image_dimensions
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from articles.images import RENDITIONS, rendition, rendition_name
from articles.models import Article, ArticleAuthor, ArticleTopic, ArticleTransition, Author, Topic
from articles.signals import article_published

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    User = AbstractUser | AnonymousUser

logger = logging.getLogger(__name__)
Status = Article.Status


class InvalidTransition(ValueError):
    """The article is not in a state the requested step starts from."""


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
}
VERBS = {
    "submit": "submit for review",
    "approve": "approve",
    "schedule": "schedule",
    "publish": "publish",
    "unpublish": "unpublish",
    "return_to_draft": "send back to draft",
}
EDITABLE_BY_AUTHORS = frozenset({Status.DRAFT, Status.IN_REVIEW, Status.APPROVED, Status.SCHEDULED})


# --- roles ---------------------------------------------------------------------------------------


def is_editor(user: User | None) -> bool:
    return bool(user and user.is_active and user.has_perm("articles.publish_article"))


def is_own_article(user: User | None, article: Article) -> bool:
    """True when ``user`` created the article or is one of its authors."""
    if user is None or not user.is_authenticated or article.pk is None:
        return False
    if article.created_by_id == user.pk:
        return True
    return article.article_authors.filter(author__user_id=user.pk).exists()


def can_edit(user: User | None, article: Article) -> bool:
    """Editors edit anything; authors edit their own articles until they are published."""
    if user is None or not user.is_active or not user.has_perm("articles.change_article"):
        return False
    if is_editor(user):
        return True
    return article.status in EDITABLE_BY_AUTHORS and is_own_article(user, article)


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


def _check_can_edit(by: User | None, article: Article) -> None:
    if by is not None and not can_edit(by, article):
        raise PermissionDenied(f"You may not edit “{article.title}”.")


# --- the workflow --------------------------------------------------------------------------------


@transaction.atomic
def _transition(*, article: Article, by: User | None, action: str, note: str = "", **changes: Any) -> Article:
    sources, target, _permission = TRANSITIONS[action]
    locked = Article.objects.select_for_update().get(pk=article.pk)
    if not can_transition(by, locked, action):
        raise PermissionDenied(f"You may not {VERBS[action]} “{locked.title}”.")
    if locked.status not in sources:
        raise InvalidTransition(
            f"Cannot {VERBS[action]} “{locked.title}”: it is {locked.get_status_display().lower()}."
        )
    from_status = locked.status
    locked.status = target
    for field, value in changes.items():
        setattr(locked, field, value)
    if target == Status.PUBLISHED and locked.published_at is None:
        locked.published_at = timezone.now()
    locked._history_user = by if by is not None and by.is_authenticated else None  # type: ignore[attr-defined]
    locked._change_reason = f"{VERBS[action].capitalize()}"  # type: ignore[attr-defined]
    locked.save()
    ArticleTransition.objects.create(
        article=locked, from_status=from_status, to_status=target, by=user_or_none(by), note=note
    )
    article.refresh_from_db()
    return article


def user_or_none(user: User | None) -> Any:
    return user if user is not None and user.is_authenticated else None


def submit_for_review(*, article: Article, by: User | None) -> Article:
    return _transition(article=article, by=by, action="submit")


def approve_article(*, article: Article, by: User | None) -> Article:
    return _transition(article=article, by=by, action="approve")


def return_to_draft(*, article: Article, by: User | None, note: str = "") -> Article:
    return _transition(article=article, by=by, action="return_to_draft", note=note)


def schedule_article(*, article: Article, by: User | None, publish_at: datetime) -> Article:
    if timezone.is_naive(publish_at):
        raise InvalidTransition("The publishing time needs a time zone.")
    if publish_at <= timezone.now():
        raise InvalidTransition(f"Cannot schedule “{article.title}” in the past: choose a later time.")
    return _transition(
        article=article, by=by, action="schedule", note=f"for {publish_at.isoformat()}", publish_at=publish_at
    )


def publish_article(*, article: Article, by: User | None) -> Article:
    """Publish now; after commit, ``article_published`` goes out exactly once."""
    with transaction.atomic():
        article = _transition(article=article, by=by, action="publish")
        article_id = article.pk
        transaction.on_commit(lambda: article_published.send(sender=Article, article_id=article_id))
    return article


def unpublish_article(*, article: Article, by: User | None) -> Article:
    return _transition(article=article, by=by, action="unpublish")


def publish_due_articles() -> list[int]:
    """Publish every scheduled article whose time has come; return their ids.

    Safe with several workers: each article is claimed in its own transaction
    with ``SELECT … FOR UPDATE SKIP LOCKED`` (PostgreSQL) and re-checked under
    the lock, so an article is published once however many run this at once.
    """
    published = []
    for article_id in list(Article.objects.due_for_publishing().order_by("publish_at").values_list("pk", flat=True)):
        with transaction.atomic():
            article = (
                Article.objects.due_for_publishing().select_for_update(skip_locked=True).filter(pk=article_id).first()
            )
            if article is None:  # another worker has it, or it is no longer due
                continue
            publish_article(article=article, by=None)
            published.append(article_id)
    if published:
        logger.info("published %d scheduled article(s): %s", len(published), published)
    return published


# --- writing -------------------------------------------------------------------------------------


def unique_slug(title: str, *, exclude_pk: int | None = None) -> str:
    base = slugify(title)[:180].strip("-") or "article"
    slug, number = base, 1
    taken = Article.objects.exclude(pk=exclude_pk) if exclude_pk else Article.objects.all()
    while taken.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug


def set_authors(*, article: Article, authors: Sequence[Author]) -> None:
    """Replace the article's authors, in byline order (the first is the byline)."""
    ArticleAuthor.objects.filter(article=article).delete()
    ArticleAuthor.objects.bulk_create(
        ArticleAuthor(article=article, author=author, position=position) for position, author in enumerate(authors)
    )


def set_topics(*, article: Article, topics: Sequence[Topic]) -> None:
    """Replace the article's topics in order (the first is the primary topic)."""
    ArticleTopic.objects.filter(article=article).delete()
    ArticleTopic.objects.bulk_create(
        ArticleTopic(article=article, topic=topic, position=position) for position, topic in enumerate(topics)
    )


@transaction.atomic
def create_draft(
    *,
    by: User | None,
    authors: Sequence[Author] | None = None,
    topics: Sequence[Topic] | None = None,
    **fields: Any,
) -> Article:
    """Create a draft from model ``fields`` (title required; slug made from it when missing).

    Without ``authors``, the author profile of ``by`` (if any) becomes the byline.
    """
    if by is not None and not (by.is_active and by.has_perm("articles.add_article")):
        raise PermissionDenied("You may not write articles.")
    if not fields.get("title"):
        raise ValueError("An article needs a title.")
    fields.pop("status", None)
    fields.setdefault("slug", unique_slug(fields["title"]))
    article = Article(status=Status.DRAFT, created_by=user_or_none(by), **fields)
    article.full_clean()
    article._history_user = user_or_none(by)  # type: ignore[attr-defined]
    article.save()
    if authors is None and by is not None:
        profile = Author.objects.filter(user_id=by.pk).first()
        authors = [profile] if profile else []
    set_authors(article=article, authors=authors or [])
    set_topics(article=article, topics=topics or [])
    ArticleTransition.objects.create(article=article, from_status="", to_status=Status.DRAFT, by=user_or_none(by))
    refresh_renditions(article=article)
    return article


@transaction.atomic
def update_article(
    *,
    article: Article,
    by: User | None,
    authors: Sequence[Author] | None = None,
    topics: Sequence[Topic] | None = None,
    **fields: Any,
) -> Article:
    """Change an article's fields (not its status: that is the workflow's)."""
    if "status" in fields:
        raise InvalidTransition("Change the status with submit, approve, schedule, publish or unpublish.")
    locked = Article.objects.select_for_update().get(pk=article.pk)
    _check_can_edit(by, locked)
    image_changed = "hero_image" in fields and fields["hero_image"] != locked.hero_image
    for field, value in fields.items():
        setattr(locked, field, value)
    # An unchanged image was checked when it was uploaded; the constraints still apply.
    locked.full_clean(exclude=None if image_changed else ["hero_image"])
    locked.validate_constraints()
    locked._history_user = user_or_none(by)  # type: ignore[attr-defined]
    locked.save()
    if authors is not None:
        set_authors(article=locked, authors=authors)
    if topics is not None:
        set_topics(article=locked, topics=topics)
    if image_changed:
        refresh_renditions(article=locked)
    article.refresh_from_db()
    return article


RENDITION_FIELDS = ["hero_image_page", "hero_image_page_width", "hero_image_page_height", "hero_image_email"]


def refresh_renditions(*, article: Article) -> Article:
    """Make the page and email renditions of the hero image (or clear them when there is none)."""
    if not article.hero_image:
        if article.hero_image_page or article.hero_image_email:
            article.hero_image_page = article.hero_image_email = ""
            article.hero_image_page_width = article.hero_image_page_height = None
            article.skip_history_when_saving = True  # type: ignore[attr-defined]
            article.save(update_fields=RENDITION_FIELDS)
            del article.skip_history_when_saving  # type: ignore[attr-defined]
        return article
    for name, (width, quality) in RENDITIONS.items():
        content = rendition(article.hero_image, width, quality)
        if name == "page":
            article.hero_image_page_width, article.hero_image_page_height = get_image_dimensions(content)
        field = getattr(article, f"hero_image_{name}")
        field.save(rendition_name(article.hero_image.name, name), content, save=False)
    article.skip_history_when_saving = True  # type: ignore[attr-defined]
    article.save(update_fields=RENDITION_FIELDS)
    del article.skip_history_when_saving  # type: ignore[attr-defined]
    return article


# --- contributor submissions ---------------------------------------------------------------------


@transaction.atomic
def submit_contribution(
    *,
    name: str,
    email: str,
    bio: str,
    title: str,
    standfirst: str,
    body_html: str,
    topics: Iterable[Topic],
) -> Article:
    """A piece sent through /write/: reuse (or create) the Author by email, file it in review, mail both sides."""
    from articles import tasks
    from euro_prospects.celery import enqueue_on_commit

    email = email.strip()
    author = Author.objects.filter(email__iexact=email).order_by("pk").first()
    if author is None:
        author = Author.objects.create(
            name=name.strip(), slug=_unique_author_slug(name), bio=bio.strip(), email=email, role="Contributor"
        )
    elif bio.strip() and not author.bio:
        author.bio = bio.strip()
        author.save(update_fields=["bio"])
    article = Article(
        title=title.strip(),
        slug=unique_slug(title),
        standfirst=standfirst.strip(),
        body=body_html,
        status=Status.DRAFT,
    )
    article.save()
    set_authors(article=article, authors=[author])
    set_topics(article=article, topics=list(topics))
    ArticleTransition.objects.create(article=article, from_status="", to_status=Status.DRAFT, note="sent via /write/")
    submit_for_review(article=article, by=None)
    enqueue_on_commit(tasks.send_submission_acknowledgement, article.pk)
    enqueue_on_commit(tasks.notify_editors_of_submission, article.pk)
    return article


def _unique_author_slug(name: str) -> str:
    base = slugify(name)[:110].strip("-") or "contributor"
    slug, number = base, 1
    while Author.objects.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug
