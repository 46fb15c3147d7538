"""Whole-page cache for anonymous readers, in Redis.

Every cached page lives under a key that contains the current *generation*. Any
change to what the public pages show (an article, author, topic or the site
settings saved or deleted) moves the generation on once the transaction commits,
so the next request renders afresh; old entries simply expire. This trades a few
needless re-renders for never showing a page that is out of date.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date

GENERATION_KEY = "public-pages:generation"

View = Callable[..., HttpResponseBase]


def current_generation() -> str:
    generation = cache.get(GENERATION_KEY)
    if generation is None:
        generation = str(time.time_ns())
        # add() so two processes starting at once agree on one value.
        if not cache.add(GENERATION_KEY, generation, timeout=None):
            generation = cache.get(GENERATION_KEY, generation)
    return str(generation)


def bump_generation() -> None:
    """Make every cached public page stale, now."""
    cache.set(GENERATION_KEY, str(time.time_ns()), timeout=None)


def bump_generation_on_commit(**kwargs: Any) -> None:
    """Signal receiver: invalidate the public pages once the change is committed."""
    if kwargs.get("raw"):  # loaddata
        return
    transaction.on_commit(bump_generation)


def is_cacheable_request(request: HttpRequest) -> bool:
    # A reader with a session cookie may be staff or have flash messages waiting:
    # they get a fresh page, and their page is never stored for others.
    return (
        settings.PAGE_CACHE_ENABLED
        and request.method in ("GET", "HEAD")
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


def _with_validators(request: HttpRequest, response: HttpResponse, etag: str, last_modified: float) -> HttpResponse:
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    patch_cache_control(response, public=True, max_age=settings.PAGE_BROWSER_MAX_AGE)
    conditional = get_conditional_response(request, etag=etag, last_modified=int(last_modified), response=response)
    return conditional  # type: ignore[return-value]


def cache_public_page(view: View) -> View:
    """Serve anonymous GETs of ``view`` from Redis, with ETag and Last-Modified.

    Only plain 200 responses that set no cookie are stored, so nothing personal
    (a CSRF token, a session, a message) is ever shown to somebody else.
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_cacheable_request(request):
            response = view(request, *args, **kwargs)
            patch_cache_control(response, private=True, no_cache=True)
            return response
        key = f"public-page:{current_generation()}:{request.get_full_path()}"
        stored = cache.get(key)
        if stored is not None:
            content, content_type, etag, last_modified = stored
            response = HttpResponse(content, content_type=content_type)
            return _with_validators(request, response, etag, last_modified)
        response = view(request, *args, **kwargs)
        if isinstance(response, SimpleTemplateResponse):
            response.render()
        if not isinstance(response, HttpResponse) or response.status_code != 200 or response.cookies:
            return response
        if request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or getattr(request, "session", None) and request.session.accessed:
            # The page holds a CSRF token or read the session: it is personal.
            return response
        etag = '"' + hashlib.md5(response.content, usedforsecurity=False).hexdigest() + '"'
        last_modified = time.time()
        cache.set(key, (response.content, response["Content-Type"], etag, last_modified), settings.PAGE_CACHE_TIMEOUT)
        return _with_validators(request, response, etag, last_modified)

    return wrapper
