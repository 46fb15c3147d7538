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

import enum
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


def _check_can_edit(by: User | None, article: Article) -> None:
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
        from euro_prospects.celery import enqueue_on_commit

        enqueue_on_commit(tasks.notify_contributors_of_step, step.pk)
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
    _check_can_edit(by, locked)
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
    _check_can_edit(by, locked)
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
    from euro_prospects.celery import enqueue_on_commit

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
    enqueue_on_commit(tasks.send_submission_acknowledgement, article.pk)
    enqueue_on_commit(tasks.notify_editors_of_submission, article.pk)
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
