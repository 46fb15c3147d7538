"""A fixed-window rate limiter on Django's cache (Redis), shared by every process."""

from django.core.cache import cache


def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count one hit on ``key``; True while the hits in this window stay within ``limit``.

    The first hit creates the counter with the window as its lifetime (``cache.add``
    does nothing if it exists), later hits increment it atomically in Redis.
    """
    cache_key = f"ratelimit:{key}"
    if cache.add(cache_key, 1, timeout=window_seconds):
        return limit >= 1
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # The counter expired between add and incr: this hit starts a new window.
        cache.add(cache_key, 1, timeout=window_seconds)
        return limit >= 1
    return count <= limit
