"""URLs of the public pages, remembered: a listing links to dozens of topics, authors and
articles, and each ``reverse()`` costs about as much as rendering the link."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse


@dataclass(frozen=True)
class Link:
    """A named link: an author in a byline, a topic in a topic line or the menu."""

    name: str
    url: str


def slug_url(view_name: str, slug: str) -> str:
    """``reverse(view_name, kwargs={"slug": slug})``, remembered.

    A page links to a dozen topics, authors and articles, and each reverse()
    costs about as much as rendering the link; the answer only changes with
    the URLconf and the script prefix, which are part of the key.
    """
    return slug_url_in(view_name, slug, *url_context())


def url_context() -> tuple[Any, str]:
    """What a reversed URL depends on besides its arguments: the URLconf and the script prefix."""
    return get_urlconf() or settings.ROOT_URLCONF, get_script_prefix()


def slug_urls(context: tuple[Any, str] | None = None) -> Callable[[str, str], str]:
    """``slug_url`` for many links at once: the URLconf and script prefix are looked up
    once (each lookup reads Django's per-request state, and a listing makes 60 links),
    or given as ``url_context()`` answered them."""
    urlconf, script_prefix = context or url_context()
    return lambda view_name, slug: slug_url_in(view_name, slug, urlconf, script_prefix)


@lru_cache(maxsize=8192)
def slug_url_in(view_name: str, slug: str, urlconf: Any, script_prefix: str) -> str:
    return reverse(view_name, urlconf=urlconf, kwargs={"slug": slug})


def cached_reverse(view_name: str) -> str:
    """``reverse(view_name)`` for a URL without arguments, remembered as ``slug_url`` is."""
    return _plain_url(view_name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())


@lru_cache(maxsize=256)
def _plain_url(view_name: str, urlconf: Any, script_prefix: str) -> str:
    return reverse(view_name, urlconf=urlconf)
