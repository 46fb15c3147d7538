"""The writing room's rules: autosave, and no silent last-save-wins.

Every edit page carries the version it opened (``version_of``: the article's
``updated_at``). A save, or an autosave, of an older version is an edit conflict:
the admin shows who saved since and what differs, merges what only one side
changed (``merge``) and saves the rest only when the writer says so.

Autosave keeps the text (title, standfirst, body) of a piece not yet approved.
It does not add a version to History per call: a writer's run of autosaves is
one version, "Autosaved", brought up to date in place until someone saves.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.html import strip_tags

from articles import permissions, services
from articles.html import sanitise_html
from articles.models import Article

if TYPE_CHECKING:
    from articles.services import User

Status = Article.Status
AUTOSAVED_FIELDS = ("title", "standfirst", "body")
AUTOSAVE_STATES = (Status.DRAFT, Status.IN_REVIEW)
AUTOSAVE_REASON = "Autosaved"
# Plain text fields a conflict merges field by field; other differences are shown, never merged.
MERGED_FIELDS = (
    "title", "slug", "standfirst", "body", "hero_image_alt", "hero_image_credit",
    "disclaimer", "meta_title", "meta_description", "canonical_url",
)  # fmt: skip


class EditConflict(Exception):
    """Someone saved the article after the writer opened it."""

    def __init__(self, article: Article) -> None:
        self.saved_by, self.saved_at = last_saved(article)
        self.version = version_of(article)
        super().__init__(f"{self.saved_by} saved “{article.title}” after you opened it.")


@dataclass
class Line:
    kind: str  # "same", "theirs" (only in the saved version), "yours" (only in yours)
    text: str


@dataclass
class FieldConflict:
    name: str
    label: str
    theirs: str
    yours: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class Merge:
    """The outcome of comparing a save with what was saved since it was opened."""

    saved_by: str
    saved_at: datetime
    version: str  # the saved version: posting it back overwrites knowingly
    taken_from_them: list[str] = field(default_factory=list)  # fields merged in from the saved version
    taken_labels: list[str] = field(default_factory=list)
    both_changed: list[FieldConflict] = field(default_factory=list)


def version_of(article: Article) -> str:
    return article.updated_at.isoformat() if article.updated_at else ""


def last_saved(article: Article) -> tuple[str, datetime]:
    """Who saved ``article`` last and when (its newest version in History)."""
    record = article.history.select_related("history_user").order_by("-history_date", "-history_id").first()
    if record is None:
        return "Someone", article.updated_at
    user = record.history_user
    name = (user.get_full_name() or user.get_username()) if user is not None else "The system"
    return name, record.history_date


def opened_record(article: Article, opened_version: str) -> Any:
    """The version in History the writer opened, or None when it is not known."""
    try:
        opened = datetime.fromisoformat(opened_version)
    except ValueError:
        return None
    return article.history.filter(updated_at=opened).order_by("-history_id").first()


def comparable(name: str, value: Any) -> str:
    text = "" if value is None else str(value)
    return sanitise_html(text) if name == "body" else text.strip()


def merge(*, article: Article, opened_version: str, yours: dict[str, Any], labels: dict[str, str]) -> Merge:
    """Three-way, field by field: what only they changed is taken from them; what both changed is listed.

    ``yours``: the posted values of ``MERGED_FIELDS``. Without the opened version
    (History has no such version) every difference counts as changed by both.
    """
    saved_by, saved_at = last_saved(article)
    result = Merge(saved_by=saved_by, saved_at=saved_at, version=version_of(article))
    base = opened_record(article, opened_version)
    for name, mine in yours.items():
        theirs = getattr(article, name)
        if comparable(name, mine) == comparable(name, theirs):
            continue
        if base is not None and comparable(name, mine) == comparable(name, getattr(base, name)):
            result.taken_from_them.append(name)
            result.taken_labels.append(labels.get(name, name))
            continue
        if base is not None and comparable(name, theirs) == comparable(name, getattr(base, name)):
            continue  # only you changed it: yours stands
        result.both_changed.append(
            FieldConflict(
                name=name,
                label=labels.get(name, name),
                theirs=str(theirs or ""),
                yours=str(mine or ""),
                lines=diff_lines(name, str(theirs or ""), str(mine or "")),
            )
        )
    return result


def diff_lines(name: str, theirs: str, yours: str) -> list[Line]:
    """A line diff a person can read: HTML bodies compare paragraph by paragraph, as text."""
    if name == "body":
        theirs, yours = _paragraphs(theirs), _paragraphs(yours)
    kinds = {" ": "same", "-": "theirs", "+": "yours"}
    return [
        Line(kind=kinds[line[0]], text=line[2:])
        for line in difflib.ndiff(theirs.splitlines(), yours.splitlines())
        if line[0] in kinds
    ]


def _paragraphs(html: str) -> str:
    blocks = sanitise_html(html).replace("</p>", "</p>\n").replace("</h2>", "</h2>\n").replace("</li>", "</li>\n")
    blocks = blocks.replace("</h3>", "</h3>\n").replace("</h4>", "</h4>\n").replace("</blockquote>", "</blockquote>\n")
    return "\n".join(line.strip() for line in strip_tags(blocks).splitlines() if line.strip())


# --- autosave ------------------------------------------------------------------------------------


@transaction.atomic
def autosave_article(*, article: Article, by: User, opened_version: str, **fields: str) -> Article:
    """Keep the writer's text of a draft (or a piece in review) without adding a version per call.

    Raises ``EditConflict`` when someone saved after ``opened_version``,
    ``services.InvalidTransition`` when the piece is past review (its edits go
    through the Save button and the workflow), ``PermissionDenied`` as any edit would.
    """
    locked = Article.objects.select_for_update().get(pk=article.pk)
    if not permissions.can_edit(by, locked):
        raise PermissionDenied(f"You may not edit “{locked.title}”.")
    if locked.status not in AUTOSAVE_STATES:
        raise services.InvalidTransition(
            f"“{locked.title}” is {locked.get_status_display().lower()}: autosave keeps drafts and pieces in "
            "review only. Save with the button."
        )
    if opened_version != version_of(locked):
        raise EditConflict(locked)
    fields = {name: value for name, value in fields.items() if name in AUTOSAVED_FIELDS}
    changed = services.changed_fields(locked, fields)
    services.check_changes(by=by, article=locked, fields=changed)
    if not changed:
        return locked
    for name in changed:
        setattr(locked, name, fields[name])
    locked.full_clean(exclude=["hero_image"])
    latest = locked.history.order_by("-history_date", "-history_id").first()
    if latest is not None and latest.history_change_reason == AUTOSAVE_REASON and latest.history_user_id == by.pk:
        # The writer's run of autosaves goes on: bring its one version up to date.
        locked.skip_history_when_saving = True  # type: ignore[attr-defined]
        locked.save()
        del locked.skip_history_when_saving  # type: ignore[attr-defined]
        type(latest).objects.filter(history_id=latest.history_id).update(
            history_date=timezone.now(),
            updated_at=locked.updated_at,
            **{name: getattr(locked, name) for name in AUTOSAVED_FIELDS},
        )
    else:
        locked._history_user = by  # type: ignore[attr-defined]
        locked._change_reason = AUTOSAVE_REASON  # type: ignore[attr-defined]
        locked.save()
    return locked
