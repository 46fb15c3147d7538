"""The Jinja2 environment of the public site's templates (the first engine in TEMPLATES).

The pages readers see are Jinja2 templates, in `jinja2/` and each app's `jinja2/`
folder: an uncached article page renders in about a third of the time it took as a
Django template, a listing in about half. The admin and every email stay Django
templates (`templates/`).

Besides what its view passes, a template sees:
- ``request``, ``csrf_input`` and ``csrf_token``, added by Django's Jinja2 backend;
- ``messages``, ``CSP_NONCE`` and ``nav_topics``, from the engine's context processors
  (settings.TEMPLATES), which run only when a page is rendered for a request (the 500
  page is not: it must render even when the database is what failed);
- ``static()``, ``url()`` and the ``date`` and ``html_datetime`` filters, from here.
"""

from __future__ import annotations

from datetime import date as Date
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.functional import empty
from jinja2 import Environment

from articles.links import cached_reverse


def url(view_name: str, *args: Any, **kwargs: Any) -> str:
    """``{% url %}``: ``url("newsletter:preferences", token)``.

    A name without arguments (the sign-up box's, on every page) is reversed once
    per process: a reverse() costs about as much as the rest of the box.
    """
    if args or kwargs:
        return reverse(view_name, args=args, kwargs=kwargs)
    return cached_reverse(view_name)


def static(path: str) -> str:
    """``{% static %}``: the URL of a static file, remembered per storage.

    Every page names its style sheet and icon, and the manifest storage's lookup and
    URL joining cost as much as a small template. A new storage (settings changed in
    tests) or DEBUG (which serves the names unhashed) makes a new entry.
    """
    storage = cast(Any, staticfiles_storage)._wrapped
    if storage is empty:  # set up on first use
        return staticfiles_storage.url(path)
    return _static_url(path, storage, settings.DEBUG)


@lru_cache(maxsize=256)
def _static_url(path: str, storage: Any, debug: bool) -> str:
    return str(storage.url(path))


def date(value: Date | None, format_string: str | None = None) -> str:
    """Django's ``date`` filter, in the current time zone as Django templates show datetimes."""
    if value is None:
        return ""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return formats.date_format(value, format_string)


def html_datetime(value: datetime | None) -> str:
    """A datetime as HTML's ``datetime`` attribute takes it: local time to the second.

    ``isoformat()`` and the ``c`` format write microseconds; HTML allows at most three
    digits of a fraction of a second.
    """
    if value is None:
        return ""
    if timezone.is_aware(value):
        value = timezone.localtime(value)
    return value.replace(microsecond=0).isoformat()


def environment(**options: Any) -> Environment:
    # Escaping is not left to settings: these pages show what readers and contributors typed.
    options.pop("autoescape", None)
    env = Environment(autoescape=True, **options)
    env.globals.update(static=static, url=url)
    env.filters["date"] = date
    env.filters["html_datetime"] = html_datetime
    return env
