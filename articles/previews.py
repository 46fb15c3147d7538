"""Shared preview links: an unpublished article's page for someone without an account.

A link is a row (``PreviewLink``) and a URL ``/preview/<token>/``. The token is signed
(``django.core.signing``, its own salt) and names the row and a random key whose hash
the row keeps: a forged or altered token fails the signature, a guessed row id fails
the key, and the row alone says whether the link still works, so an editor's revoke
or the expiry (``PREVIEW_LINK_DAYS``, default 7) ends it at once.

Each opening is recorded with its time and a coarse description of the browser;
no address is kept.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from articles import permissions, services
from articles.models import Article, PreviewLink, PreviewLinkOpen

if TYPE_CHECKING:
    from articles.services import User

SALT = "articles.preview-link"
# Opens recorded per link: enough to see who read it, not a log anyone can fill.
MAX_RECORDED_OPENS = 200


class LinkNotValid(Exception):
    """The token is not one we made (404)."""


class LinkEnded(Exception):
    """The link was ours but is revoked or expired (410); ``reason`` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def may_share(user: User | None, article: Article) -> bool:
    """Editors, and the piece's own authors, may make and revoke its preview links."""
    return permissions.is_editor(user) or permissions.is_own_article(user, article)


@transaction.atomic
def create_preview_link(*, article: Article, by: User | None, label: str = "", days: int | None = None) -> str:
    """Make a preview link for ``article``; return its path (``/preview/<token>/``).

    The token is shown once: only a hash of its key is stored.
    """
    if by is not None and not may_share(by, article):
        raise PermissionDenied(f"You may not share “{article.title}”.")
    days = settings.PREVIEW_LINK_DAYS if days is None else days
    if days < 1:
        raise ValueError("A preview link lasts at least one day.")
    key = secrets.token_urlsafe(18)
    link = PreviewLink(
        article=article,
        label=" ".join(label.split())[:120],
        key_hash=_hash(key),
        created_by=services.user_or_none(by),
        expires_at=timezone.now() + timedelta(days=days),
    )
    link.full_clean()
    link.save()
    return preview_path(link, key)


def preview_path(link: PreviewLink, key: str) -> str:
    token = signing.dumps([link.pk, key], salt=SALT, compress=False)
    return reverse("articles:shared_preview", kwargs={"token": token})


@transaction.atomic
def revoke_preview_link(*, link: PreviewLink, by: User | None) -> PreviewLink:
    """End ``link`` now; revoking one already revoked changes nothing."""
    locked = PreviewLink.objects.select_for_update().select_related("article").get(pk=link.pk)
    if by is not None and not may_share(by, locked.article):
        raise PermissionDenied(f"You may not revoke links to “{locked.article.title}”.")
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.revoked_by = services.user_or_none(by)
        locked.save(update_fields=["revoked_at", "revoked_by"])
    return locked


def link_for_token(token: str) -> PreviewLink:
    """The live link ``token`` names; ``LinkNotValid`` or ``LinkEnded`` otherwise."""
    try:
        link_id, key = signing.loads(token, salt=SALT)
    except (signing.BadSignature, ValueError, TypeError):
        raise LinkNotValid from None
    if not isinstance(link_id, int) or not isinstance(key, str):
        raise LinkNotValid
    link = PreviewLink.objects.select_related("article").filter(pk=link_id).first()
    if link is None or not secrets.compare_digest(link.key_hash, _hash(key)):
        raise LinkNotValid
    if link.is_revoked():
        raise LinkEnded("revoked")
    if link.is_expired():
        raise LinkEnded("expired")
    return link


def record_open(*, link: PreviewLink, user_agent: str) -> None:
    """Count the opening; keep its time and browser (the first ``MAX_RECORDED_OPENS``)."""
    PreviewLink.objects.filter(pk=link.pk).update(opens=F("opens") + 1)
    if link.opens < MAX_RECORDED_OPENS:
        PreviewLinkOpen.objects.create(link=link, browser=coarse_browser(user_agent))


_BROWSERS = [  # the first that matches names it; order matters (Edge and Opera say "Chrome" too)
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/|Chromium/")),
    ("Safari", re.compile(r"Safari/")),
]
_SYSTEMS = [
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux|X11")),
]
_BOTS = re.compile(r"bot|crawl|spider|preview|fetch|curl|wget|python|slack|whatsapp|headless", re.IGNORECASE)


def coarse_browser(user_agent: str) -> str:
    """“Firefox on Windows”, “Link preview or robot”, “Unknown browser”: no version, nothing finer."""
    if not user_agent:
        return "Unknown browser"
    if _BOTS.search(user_agent):
        return "Link preview or robot"
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), "Other browser")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), "")
    return f"{browser} on {system}" if system else browser


def link_rows(article: Article) -> list[dict[str, Any]]:
    """The article's links for the admin: state, who made it, and its latest openings."""
    rows = []
    for link in article.preview_links.select_related("created_by").prefetch_related("visits"):
        state = "revoked" if link.is_revoked() else "expired" if link.is_expired() else "active"
        rows.append({"link": link, "state": state, "visits": list(link.visits.all()[:20])})
    return rows
