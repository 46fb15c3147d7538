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
from django.db import models, transaction
from django.utils import timezone
from django.utils.text import slugify

from articles.html import sanitise_html
from articles.images import RENDITIONS, rendition, rendition_name
from articles.models import Article, ArticleAuthor, ArticleTopic, ArticleTransition, Author, Topic
from articles.permissions import (
    AUTHOR,
    EDIT_RULES,
    REVERTED_FIELDS,
    TRANSITIONS,
    VERBS,
    Access,
    can_transition,
    check_can_edit,
    editable_fields,
    editing_role,
    field_access,
)
from articles.signals import article_published

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractUser, AnonymousUser

    User = AbstractUser | AnonymousUser

logger = logging.getLogger(__name__)
Status = Article.Status


class InvalidTransition(ValueError):
    """The article is not in a state the requested step starts from."""


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
    step = ArticleTransition.objects.create(
        article=locked, from_status=from_status, to_status=target, by=user_or_none(by), note=note, action=action
    )
    if action in CONTRIBUTOR_NOTICES:
        from articles import tasks
        from euro_prospects.celery import notify_on_commit

        notify_on_commit(tasks.notify_contributors_of_step, step.pk)
    article.refresh_from_db()
    return article


# Steps the byline authors are emailed about, with the editor's note (articles/contributors.py).
CONTRIBUTOR_NOTICES = frozenset({"return_to_draft", "approve", "decline", "publish"})


def user_or_none(user: User | None) -> Any:
    return user if user is not None and user.is_authenticated else None


def submit_for_review(*, article: Article, by: User | None) -> Article:
    return _transition(article=article, by=by, action="submit")


def approve_article(*, article: Article, by: User | None, note: str = "") -> Article:
    return _transition(article=article, by=by, action="approve", note=note)


def return_to_draft(*, article: Article, by: User | None, note: str = "") -> Article:
    return _transition(article=article, by=by, action="return_to_draft", note=note)


def decline_article(*, article: Article, by: User | None, note: str = "") -> Article:
    """Turn the piece down: it goes back to draft and its contributor is told, with ``note``."""
    return _transition(article=article, by=by, action="decline", note=note)


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


def publish_scheduled_articles() -> list[int]:
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


def _comparable(field: str, value: Any) -> Any:
    """A value of ``field`` in a form that compares equal when the stored value would not change."""
    if field in ("authors", "topics"):
        return [item.pk for item in value]
    if isinstance(value, models.Model):
        return value.pk
    if field == "hero_image":
        return getattr(value, "name", value) or ""
    if field == "body":
        return sanitise_html(value or "")
    return value


def _current(article: Article | None, field: str, by: User | None = None) -> Any:
    """What ``field`` holds on ``article`` now (on a new piece: what it would hold if left out)."""
    if article is None:
        if field == "authors":
            profile = Author.objects.filter(user_id=by.pk).first() if by is not None and by.pk else None
            return [profile] if profile else []
        if field == "topics":
            return []
        return _model_field(field).get_default()
    if field == "authors":
        return [link.author for link in article.article_authors.select_related("author").order_by("position")]
    if field == "topics":
        return [link.topic for link in article.article_topics.select_related("topic").order_by("position")]
    return getattr(article, field)


def changed_fields(article: Article | None, changes: dict[str, Any], by: User | None = None) -> list[str]:
    """The fields of ``changes`` whose value differs from what ``article`` holds (or a new piece would)."""
    return [
        field
        for field, value in changes.items()
        if _comparable(field, value) != _comparable(field, _current(article, field, by))
    ]


def check_changes(*, by: User | None, article: Article | None, fields: Iterable[str]) -> None:
    """Raise ``PermissionDenied`` naming every field in ``fields`` that ``by`` may not change (``EDIT_RULES``)."""
    if by is None:
        return
    allowed = editable_fields(by, article)
    refused = [field for field in fields if field not in allowed]
    if not refused:
        return
    names = ", ".join(_label(field) for field in refused)
    if article is None:
        raise PermissionDenied(f"You may not set {names} on a new article: an editor does.")
    state = article.get_status_display().lower()
    raise PermissionDenied(f"You may not change {names} of “{article.title}” while it is {state}.")


def _label(field: str) -> str:
    return "the byline (authors)" if field == "authors" else str(_model_field(field).verbose_name)


def _model_field(name: str) -> models.Field[Any, Any]:
    field = Article._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{name} is not a field of Article")
    return field


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
    ``by`` may set only what ``EDIT_RULES`` lets them change on a draft.
    """
    if by is not None and not (by.is_active and by.has_perm("articles.add_article")):
        raise PermissionDenied("You may not write articles.")
    if not fields.get("title"):
        raise ValueError("An article needs a title.")
    fields.pop("status", None)
    parts = {name: value for name, value in (("authors", authors), ("topics", topics)) if value is not None}
    check_changes(by=by, article=None, fields=changed_fields(None, {**fields, **parts}, by))
    fields.setdefault("slug", unique_slug(fields["title"]))
    article = Article(status=Status.DRAFT, created_by=user_or_none(by), **fields)
    article.full_clean()
    article._history_user = user_or_none(by)  # type: ignore[attr-defined]
    article.save()
    if authors is None and by is not None:
        authors = _current(None, "authors", by)
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
    """Change an article's fields (not its status: that is the workflow's), as ``EDIT_RULES`` allow.

    An Author's change to an approved or scheduled piece sends it back to review
    (recorded in the workflow log); it goes live only once an editor approves it again.
    """
    if "status" in fields:
        raise InvalidTransition("Change the status with submit, approve, schedule, publish or unpublish.")
    locked = Article.objects.select_for_update().get(pk=article.pk)
    check_can_edit(by, locked)
    _edit(locked, by, fields, authors=authors, topics=topics)
    article.refresh_from_db()
    return article


@transaction.atomic
def restore_version(*, article: Article, by: User | None, history_id: int) -> Article:
    """Bring back an old version's text and image (``REVERTED_FIELDS``): an edit of the current row.

    The same rules as any edit apply to the current state of the piece; fields
    ``by`` may not change are left as they are. Recorded in the workflow log.
    """
    locked = Article.objects.select_for_update().get(pk=article.pk)
    check_can_edit(by, locked)
    record = Article.history.get(id=locked.pk, history_id=history_id)
    allowed = editable_fields(by, locked) if by is not None else list(EDIT_RULES)
    fields = {field: getattr(record.instance, field) for field in REVERTED_FIELDS if field in allowed}
    when = timezone.localtime(record.history_date)
    _edit(locked, by, fields, note=f"Restored the version of {when:%Y-%m-%d %H:%M}", always_log=True)
    article.refresh_from_db()
    return article


def _edit(
    locked: Article,
    by: User | None,
    fields: dict[str, Any],
    *,
    authors: Sequence[Author] | None = None,
    topics: Sequence[Topic] | None = None,
    note: str = "",
    always_log: bool = False,
) -> None:
    """Apply ``fields`` (and the byline and topics) to the locked row, checking each change against the rules."""
    parts = {name: value for name, value in (("authors", authors), ("topics", topics)) if value is not None}
    changed = changed_fields(locked, {**fields, **parts})
    check_changes(by=by, article=locked, fields=changed)
    from_status = locked.status
    back_to_review = editing_role(by, locked) == AUTHOR and any(
        field_access(field, from_status) is Access.REVIEW for field in changed
    )
    image_changed = "hero_image" in changed
    for field, value in fields.items():
        setattr(locked, field, value)
    if back_to_review:
        locked.status = Status.IN_REVIEW
        note = "; ".join(filter(None, [note, "changed by an author after approval: back to review"]))
    # An unchanged image was checked when it was uploaded; the constraints still apply.
    locked.full_clean(exclude=None if image_changed else ["hero_image"])
    locked.validate_constraints()
    locked._history_user = user_or_none(by)  # type: ignore[attr-defined]
    locked.save()
    if "authors" in changed and authors is not None:
        set_authors(article=locked, authors=authors)
    if "topics" in changed and topics is not None:
        set_topics(article=locked, topics=topics)
    if image_changed:
        refresh_renditions(article=locked)
    if back_to_review or always_log:
        ArticleTransition.objects.create(
            article=locked, from_status=from_status, to_status=locked.status, by=user_or_none(by), note=note[:200]
        )


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
    image: Any = None,
    image_alt: str = "",
    image_credit: str = "",
) -> Article:
    """A piece sent through /write/: file it in review under a new contributor record, mail both sides.

    ``image`` (optional, already checked like a hero image) becomes the hero image, re-encoded.

    Nobody proves an address by typing it, so a piece never joins an existing
    author. When the address is one an author already has, the new record
    points at that author (``same_email_as``) for an editor to merge.
    """
    from articles import tasks
    from euro_prospects.celery import notify_on_commit

    email = email.strip()
    existing = Author.objects.filter(email__iexact=email, same_email_as__isnull=True).order_by("pk").first()
    author = Author.objects.create(
        name=name.strip(),
        slug=_unique_author_slug(name),
        bio=bio.strip(),
        email=email,
        role="Contributor",
        same_email_as=existing,
    )
    article = Article(
        title=title.strip(),
        slug=unique_slug(title),
        standfirst=standfirst.strip(),
        body=body_html,
        status=Status.DRAFT,
    )
    if image:
        from euro_prospects.images import reencode_image

        article.hero_image = reencode_image(image)
        article.hero_image_alt, article.hero_image_credit = image_alt.strip(), image_credit.strip()
    article.save()
    if image:
        refresh_renditions(article=article)
    set_authors(article=article, authors=[author])
    set_topics(article=article, topics=list(topics))
    ArticleTransition.objects.create(article=article, from_status="", to_status=Status.DRAFT, note="sent via /write/")
    submit_for_review(article=article, by=None)
    notify_on_commit(tasks.send_submission_acknowledgement, article.pk)
    notify_on_commit(tasks.notify_editors_of_submission, article.pk)
    return article


@transaction.atomic
def merge_author(*, author: Author, by: User | None) -> Author:
    """An editor's link of a /write/ contributor record to the author with the same address.

    The record's bylines and reviews move to that author, and the record is deleted.
    Returns the author the pieces now belong to.
    """
    if by is not None and not (by.has_perm("articles.change_author") and by.has_perm("articles.delete_author")):
        raise PermissionDenied("Only editors may merge authors.")
    locked = Author.objects.select_for_update().get(pk=author.pk)
    target = locked.same_email_as
    if target is None:
        raise InvalidTransition(f"“{locked.name}” shares no address with another author: there is nothing to merge.")
    already = ArticleAuthor.objects.filter(author=target).values("article_id")
    ArticleAuthor.objects.filter(author=locked).exclude(article_id__in=already).update(author=target)
    Article.objects.filter(editor=locked).update(editor=target)
    if not target.bio and locked.bio:
        target.bio = locked.bio
        target.save(update_fields=["bio"])
    locked.delete()
    return target


def _unique_author_slug(name: str) -> str:
    base = slugify(name)[:110].strip("-") or "contributor"
    slug, number = base, 1
    while Author.objects.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug
