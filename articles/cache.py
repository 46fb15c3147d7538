"""Whole-page cache for anonymous readers, in Redis.

Every cached page lives under a key that contains the current *generation*. Any
change to what the public pages show (an article, author, topic or the site
settings saved or deleted) moves the generation on once the transaction commits,
so the next request renders afresh; old entries simply expire. This trades a few
needless re-renders for never showing a page that is out of date.

Each process also keeps the pages it served last in memory, and learns of a new
generation by Redis pub/sub (GenerationWatcher), so a hit usually costs no round
trip at all; without the subscription it falls back to one round trip per hit.

One request renders a page per change, whatever the traffic (single flight): a
request that misses takes a short Redis lock on (generation, page) and renders; the
others meanwhile get the previous version of the page (stale-while-revalidate), or,
when there is none yet, wait for the renderer (at most PAGE_RENDER_WAIT seconds,
then render themselves). A page entry keeps the generation it was rendered for, so
the previous version is whatever the entry held before the change.

A page is stored under its path and the query parameters its view reads (``page``),
with their values in one canonical spelling; any other query string is ignored, so
``/?junk=1`` … ``/?junk=N`` share the entry of ``/`` instead of filling Redis. The
pages live in ``CACHE_REDIS_URL`` (by default the broker's Redis).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import wraps
from typing import Any, overload
from urllib.parse import urlencode

import redis
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.utils.cache import get_conditional_response, patch_cache_control
from django.utils.http import http_date

from euro_prospects.redis_clients import redis_client as shared_redis_client

View = Callable[..., HttpResponseBase]
logger = logging.getLogger(__name__)


def redis_client() -> redis.Redis:
    """The page cache's Redis, on CACHE_REDIS_URL (euro_prospects.redis_clients)."""
    return shared_redis_client(settings.CACHE_REDIS_URL)


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


class GenerationWatcher:
    """This process's copy of the generation, kept fresh by Redis pub/sub.

    While a background thread is subscribed to the "changed" channel, a page
    already held in this process is served without asking Redis at all; every
    bump publishes on the channel and the copy is dropped. When the
    subscription is down, ``known()`` answers None and each request reads the
    generation from Redis, as if there were no watcher.
    """

    def __init__(self) -> None:
        self.generation: str | None = None
        self.listening = False
        self.changes = 0  # counts drops, so a slow reader cannot store a value read before a drop
        self.pid = 0
        self.lock = threading.Lock()

    def known(self) -> tuple[str | None, int]:
        if self.pid != os.getpid():
            self.start()
        return (self.generation if self.listening else None), self.changes

    def remember(self, generation: str, changes_seen: int) -> None:
        with self.lock:
            if self.listening and self.changes == changes_seen:
                self.generation = generation

    def forget(self) -> None:
        with self.lock:
            self.changes += 1
            self.generation = None

    def start(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid, self.listening, self.generation = os.getpid(), False, None
        threading.Thread(target=self.listen, name="page-cache-watcher", daemon=True).start()

    def listen(self) -> None:
        while True:
            try:
                pubsub = redis.Redis.from_url(settings.CACHE_REDIS_URL).pubsub()
                pubsub.subscribe(_key("changed"))
                while (pubsub.get_message(timeout=5) or {}).get("type") != "subscribe":
                    pass
                self.forget()
                self.listening = True
                for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.forget()
            except Exception:
                logger.warning("page cache: lost the Redis subscription; reading the generation per request")
            self.listening = False
            self.forget()
            time.sleep(1)


watcher = GenerationWatcher()
_local_pages: OrderedDict[str, tuple[str, dict[bytes, bytes]]] = OrderedDict()
LOCAL_PAGES = 256


def _remember_locally(path: str, generation: str, stored: dict[bytes, bytes]) -> None:
    _local_pages[path] = (generation, stored)
    _local_pages.move_to_end(path)
    while len(_local_pages) > LOCAL_PAGES:
        _local_pages.popitem(last=False)


# One round trip for a cache hit: read the generation and the page's entry.
_LOOKUP = """
local generation = redis.call('GET', KEYS[1])
if not generation then return false end
return {generation, redis.call('HGETALL', KEYS[2])}
"""
_lookup_script: Any = None
# A renderer holds its lock at most this long (a process killed mid-render frees it so).
RENDER_LOCK_SECONDS = 10
RENDER_WAIT_INTERVAL = 0.02


def _page_key(path: str) -> str:
    return _key(f"page:{path}")


def is_fresh(stored: dict[bytes, bytes], generation: str) -> bool:
    return bool(stored) and stored.get(b"generation", b"").decode() == generation


def lookup_page(path: str) -> tuple[str, dict[bytes, bytes]]:
    """The current generation, and the entry stored for ``path`` (empty when none).

    The entry may be of an older generation (``is_fresh`` tells): the previous
    version, served while one request renders the new one. No round trip to Redis
    when this process holds the current page and the watcher vouches for the
    generation; one otherwise.
    """
    global _lookup_script
    stored: dict[bytes, bytes]
    generation, changes_seen = watcher.known()
    if generation is not None:
        local = _local_pages.get(path)
        if local is not None and local[0] == generation:
            return local
        stored = redis_client().hgetall(_page_key(path))  # type: ignore[assignment]
    else:
        if _lookup_script is None:
            _lookup_script = redis_client().register_script(_LOOKUP)
        found = _lookup_script(keys=[_key("generation"), _page_key(path)])
        if not found:
            return current_generation(), {}
        raw_generation, flat = found
        generation = str(raw_generation.decode())
        stored = dict(zip(flat[::2], flat[1::2], strict=True))
        watcher.remember(generation, changes_seen)
    if is_fresh(stored, generation):
        _remember_locally(path, generation, stored)
    return generation, stored


def claim_render(generation: str, path: str) -> bool:
    """True for the one request that renders ``path`` for ``generation`` (single flight)."""
    lock = _key(f"rendering:{generation}:{path}")
    return bool(redis_client().set(lock, b"1", nx=True, ex=RENDER_LOCK_SECONDS))


def release_render(generation: str, path: str) -> None:
    with contextlib.suppress(redis.RedisError):  # the lock expires by itself
        redis_client().delete(_key(f"rendering:{generation}:{path}"))


def forget_page(path: str) -> None:
    """Drop ``path``'s entry: its page is no longer one to share (gone, moved, personal)."""
    _local_pages.pop(path, None)
    try:
        redis_client().delete(_page_key(path))
    except redis.RedisError:
        logger.warning("page cache: could not drop %s", path, exc_info=True)


def wait_for_render(generation: str, path: str) -> dict[bytes, bytes]:
    """The entry another request is rendering for ``generation``; empty if it takes too long."""
    deadline = time.monotonic() + settings.PAGE_RENDER_WAIT
    while time.monotonic() < deadline:
        time.sleep(RENDER_WAIT_INTERVAL)
        stored: dict[bytes, bytes] = redis_client().hgetall(_page_key(path))  # type: ignore[assignment]
        if is_fresh(stored, generation):
            return stored
        if not redis_client().exists(_key(f"rendering:{generation}:{path}")):
            break  # the renderer gave up (an error, a page that is not stored): render here
    return {}


def bump_generation() -> None:
    """Make every cached public page stale, now, in every process."""
    client = redis_client()
    client.set(_key("generation"), str(time.time_ns()))
    watcher.forget()
    client.publish(_key("changed"), "1")


def bump_generation_on_commit(**kwargs: Any) -> None:
    """Signal receiver: invalidate the public pages once the change is committed."""
    if kwargs.get("raw"):  # loaddata
        return
    # robust: the change is committed already; a Redis hiccup must not turn the save into an error.
    transaction.on_commit(bump_generation, robust=True)


def is_cacheable_request(request: HttpRequest) -> bool:
    # A reader with a session cookie may be staff or have flash messages waiting:
    # they get a fresh page, and their page is never stored for others.
    return (
        settings.PAGE_CACHE_ENABLED
        and request.method in ("GET", "HEAD")
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
    )


# The request headers that make a GET conditional (RFC 9110, section 13.1).
CONDITIONAL_HEADERS = ("HTTP_IF_MATCH", "HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE")


def _with_validators(
    request: HttpRequest, response: HttpResponse, etag: str, last_modified: float, last_modified_http: str
) -> HttpResponse:
    """``response`` with its validators and a public Cache-Control; 304 or 412 when the request's
    preconditions say so. Every cache hit comes here, so the common case parses nothing."""
    response["ETag"] = etag
    response["Last-Modified"] = last_modified_http
    if response.has_header("Cache-Control"):  # the view set its own: merge
        patch_cache_control(response, public=True, max_age=settings.PAGE_BROWSER_MAX_AGE)
    else:  # what patch_cache_control writes on a response without one
        response["Cache-Control"] = f"public, max-age={settings.PAGE_BROWSER_MAX_AGE}"
    if not any(header in request.META for header in CONDITIONAL_HEADERS):
        return response
    conditional = get_conditional_response(request, etag=etag, last_modified=int(last_modified), response=response)
    return conditional  # type: ignore[return-value]


PAGE_NUMBER = re.compile(r"[0-9]{1,9}")


def page_cache_path(request: HttpRequest, query_params: tuple[str, ...]) -> str | None:
    """The name ``request``'s page is stored under, or None when it must not be stored.

    Only ``query_params`` (page numbers) tell pages apart, each in its one canonical
    spelling (``?page=02`` is ``?page=2``; ``?page=1`` stays apart from no parameter,
    as the home page shows its featured piece only without one); other parameters are
    ignored, as the view ignores them. A page number that is not one (the view
    answers 404) is not looked up at all.
    """
    if not request.META.get("QUERY_STRING"):
        return request.path
    kept: list[tuple[str, str]] = []
    for name in query_params:
        value = request.GET.get(name)  # the view reads the last value, as this does
        if value is None:
            continue
        if not PAGE_NUMBER.fullmatch(value):
            return None
        kept.append((name, str(int(value))))
    return f"{request.path}?{urlencode(kept)}" if kept else request.path


@overload
def cache_public_page(view: View, *, query_params: tuple[str, ...] = ...) -> View: ...
@overload
def cache_public_page(view: None = None, *, query_params: tuple[str, ...] = ...) -> Callable[[View], View]: ...
def cache_public_page(
    view: View | None = None, *, query_params: tuple[str, ...] = ("page",)
) -> View | Callable[[View], View]:
    """Serve anonymous GETs of ``view`` from Redis, with ETag and Last-Modified.

    Only plain 200 responses that set no cookie are stored, so nothing personal
    (a CSRF token, a session, a message) is ever shown to somebody else.
    ``query_params``: the page-number parameters the view reads (see page_cache_path).
    ``@cache_public_page`` or ``cache_public_page(view, query_params=("p",))``.
    """
    if view is None:
        return lambda wrapped: cache_public_page(wrapped, query_params=query_params)

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not is_cacheable_request(request):
            response = view(request, *args, **kwargs)
            patch_cache_control(response, private=True, no_cache=True)
            return response
        path = page_cache_path(request, query_params)
        if path is None:
            return view(request, *args, **kwargs)
        try:
            generation, stored = lookup_page(path)
            if not is_fresh(stored, generation):
                if claim_render(generation, path):
                    try:
                        # The renderer before us may have stored it between our lookup and our claim.
                        stored = redis_client().hgetall(_page_key(path))  # type: ignore[assignment]
                        if not is_fresh(stored, generation):
                            return render_and_store(request, path, generation, view, *args, **kwargs)
                    finally:
                        release_render(generation, path)
                # Another request is rendering this page: the previous version meanwhile.
                stored = stored or wait_for_render(generation, path)
        except redis.RedisError:
            logger.warning("page cache: Redis unavailable, serving %s uncached", path, exc_info=True)
            return view(request, *args, **kwargs)
        if stored:
            return serve_stored(request, stored)
        return render_and_store(request, path, generation, view, *args, **kwargs)

    return wrapper


def serve_stored(request: HttpRequest, stored: dict[bytes, bytes]) -> HttpResponse:
    response = HttpResponse(stored[b"content"], content_type=stored[b"content_type"].decode())
    last_modified = float(stored[b"last_modified"])
    # An entry stored before the HTTP date was kept with it has only the timestamp.
    http_date_stored = stored.get(b"last_modified_http")
    last_modified_http = http_date_stored.decode() if http_date_stored else http_date(last_modified)
    return _with_validators(request, response, stored[b"etag"].decode(), last_modified, last_modified_http)


def render_and_store(
    request: HttpRequest, path: str, generation: str, view: View, *args: Any, **kwargs: Any
) -> HttpResponseBase:
    """Render the page and, when it may be shared, store it as ``path``'s entry for ``generation``."""
    try:
        response = view(request, *args, **kwargs)
        if isinstance(response, SimpleTemplateResponse):
            response.render()
    except Exception:
        forget_page(path)  # e.g. 404 now: nobody gets the previous version of a page that is gone
        raise
    if (
        not isinstance(response, HttpResponse)
        or response.status_code != 200
        or response.cookies
        # The page holds a CSRF token or read the session: it is personal.
        or request.META.get("CSRF_COOKIE_NEEDS_UPDATE")
        or (getattr(request, "session", None) and request.session.accessed)
    ):
        forget_page(path)
        return response
    etag = '"' + hashlib.md5(response.content, usedforsecurity=False).hexdigest() + '"'
    last_modified = time.time()
    last_modified_http = http_date(last_modified)
    key = _page_key(path)
    entry = {
        b"content": response.content,
        b"content_type": response["Content-Type"].encode(),
        b"etag": etag.encode(),
        b"last_modified": repr(last_modified).encode(),
        b"last_modified_http": last_modified_http.encode(),
        b"generation": generation.encode(),
    }
    try:
        with redis_client().pipeline() as pipe:
            pipe.hset(key, mapping=entry)  # type: ignore[arg-type]
            pipe.expire(key, settings.PAGE_CACHE_TIMEOUT)
            pipe.execute()
    except redis.RedisError:
        logger.warning("page cache: could not store %s", path, exc_info=True)
    _remember_locally(path, generation, entry)
    return _with_validators(request, response, etag, last_modified, last_modified_http)


_memo: dict[str, tuple[str, Any]] = {}


def per_generation(name: str, load: Callable[[], Any]) -> Any:
    """``load()``, remembered in this process until the public pages change.

    For the small site-wide reads every page repeats (site settings, the topic
    menu), also on a server without the page cache and for signed-in readers.
    Only used while the watcher vouches for the generation; otherwise ``load()``
    runs every time.
    """
    generation, changes_seen = watcher.known()
    if generation is None and watcher.listening:
        try:
            generation = current_generation()
        except redis.RedisError:
            return load()
        watcher.remember(generation, changes_seen)
    if generation is None:
        return load()
    remembered = _memo.get(name)
    if remembered is not None and remembered[0] == generation:
        return remembered[1]
    value = load()
    _memo[name] = (generation, value)
    return value
