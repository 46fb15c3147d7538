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

import redis
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date

View = Callable[..., HttpResponseBase]

_client: redis.Redis | None = None


def redis_client() -> redis.Redis:
    """One Redis client per process for the page cache.

    The page cache talks to Redis directly: Django's cache API builds a new
    client object on every call, which costs more than the lookup itself.
    """
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)
    return _client


def _key(name: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:public-pages:{name}"


def current_generation() -> str:
    client = redis_client()
    generation = client.get(_key("generation"))
    if generation is None:
        # SET NX so two processes starting at once agree on one value.
        client.set(_key("generation"), str(time.time_ns()), nx=True)
        generation = client.get(_key("generation")) or b"0"
    return generation.decode() if isinstance(generation, bytes) else str(generation)


# One round trip for a cache hit: read the generation, then the page stored under it.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1])
if not generation then return false end
return {generation, redis.call('HGETALL', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""
_lookup_script: Any = None


def lookup_page(path: str) -> tuple[str, dict[bytes, bytes]]:
    """The current generation, and the page stored for ``path`` under it (empty when none)."""
    global _lookup_script
    if _lookup_script is None:
        _lookup_script = redis_client().register_script(_LOOKUP)
    found = _lookup_script(keys=[_key("generation")], args=[_key("page:"), path])
    if not found:
        return current_generation(), {}
    generation, flat = found
    return generation.decode(), dict(zip(flat[::2], flat[1::2], strict=True))


def bump_generation() -> None:
    """Make every cached public page stale, now."""
    redis_client().set(_key("generation"), str(time.time_ns()))


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
        path = request.get_full_path()
        generation, stored = lookup_page(path)
        if stored:
            response = HttpResponse(stored[b"content"], content_type=stored[b"content_type"].decode())
            return _with_validators(request, response, stored[b"etag"].decode(), float(stored[b"last_modified"]))
        response = view(request, *args, **kwargs)
        if isinstance(response, SimpleTemplateResponse):
            response.render()
        if not isinstance(response, HttpResponse) or response.status_code != 200 or response.cookies:
            return response
        if request.META.get("CSRF_COOKIE_NEEDS_UPDATE") or (
            getattr(request, "session", None) and request.session.accessed
        ):
            # The page holds a CSRF token or read the session: it is personal.
            return response
        etag = '"' + hashlib.md5(response.content, usedforsecurity=False).hexdigest() + '"'
        last_modified = time.time()
        key = _key(f"page:{generation}:{path}")
        entry = {
            "content": response.content,
            "content_type": response["Content-Type"],
            "etag": etag,
            "last_modified": repr(last_modified),
        }
        with redis_client().pipeline() as pipe:
            pipe.hset(key, mapping=entry)  # type: ignore[arg-type]
            pipe.expire(key, settings.PAGE_CACHE_TIMEOUT)
            pipe.execute()
        return _with_validators(request, response, etag, last_modified)

    return wrapper
