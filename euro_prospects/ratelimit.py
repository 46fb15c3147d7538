"""A small fixed-window rate limiter on Django's cache (Redis in every deployment).

    if not hit(f"write:{ip}", limit=5, window_seconds=3600):
        ... answer 429 ...

``hit`` counts one attempt under ``key`` and says whether it is still within
``limit`` attempts in the current window. Redis' INCR is atomic, so parallel
web processes share one count.
"""

from django.core.cache import cache

PREFIX = "ratelimit:"


def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count an attempt; True while at most ``limit`` attempts happened in this window."""
    cache_key = PREFIX + key
    # add() only sets a missing key, so the window starts with the first attempt.
    cache.add(cache_key, 0, timeout=window_seconds)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # the key expired between add() and incr()
        cache.set(cache_key, 1, timeout=window_seconds)
        count = 1
    return count <= limit


def reset(key: str) -> None:
    cache.delete(PREFIX + key)
