"""The one rate limiter: fixed windows counted in Django's cache (Redis in every deployment).

    if not hit(f"write:{ip}", limit=5, window_seconds=3600):
        ... answer 429 ...

``hit`` counts one attempt under ``key`` and says whether it is still within
``limit`` attempts in the current window. Redis' INCR is atomic, so parallel
web and worker processes share one count. ``take_turn`` paces a sender to a
provider's limits per second and per hour.
"""

import logging
import time

from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("euro_prospects.ratelimit")

PREFIX = "ratelimit:"


def hit(key: str, limit: int, window_seconds: int) -> bool:
    """Count an attempt; True while at most ``limit`` attempts happened in this window.

    With Redis unreachable (a restart, say) the attempt is let through and logged
    (``event=ratelimit_unavailable``): readers keep signing up while the counts are gone.
    """
    cache_key = PREFIX + key
    try:
        # add() only sets a missing key, so the window starts with the first attempt.
        cache.add(cache_key, 0, timeout=window_seconds)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the key expired between add() and incr()
            cache.set(cache_key, 1, timeout=window_seconds)
            count = 1
    except (RedisConnectionError, RedisTimeoutError) as exc:
        logger.warning("event=ratelimit_unavailable key=%s error=%r", key.split(":", 1)[0], exc)
        return True
    return count <= limit


def reset(key: str) -> None:
    cache.delete(PREFIX + key)


def take_turn(name: str, *, per_second: int, per_hour: int) -> float:
    """Take one turn under limits per clock second and per clock hour (0: no limit).

    Sleeps while this second's allowance is spent. When this hour's is spent, returns
    the seconds until the next hour (the caller stops until then); else 0.0.
    """
    if per_hour and not hit(f"{name}:3600:{int(time.time() // 3600)}", per_hour, 3600 + 1):
        return 3600 - time.time() % 3600
    while per_second and not hit(f"{name}:1:{int(time.time())}", per_second, 1 + 1):
        time.sleep(1 - time.time() % 1 + 0.001)
    return 0.0
