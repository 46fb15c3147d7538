import uuid

import redis
from django.core.cache import cache

from euro_prospects.ratelimit import PREFIX, hit
from tests.support.workers import wait_until


def test_it_allows_hits_up_to_the_limit_then_refuses():
    key = f"test:{uuid.uuid4()}"
    assert [hit(key, 3, 60) for _ in range(5)] == [True, True, True, False, False]


def test_keys_are_counted_separately():
    first, second = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    assert hit(first, 1, 60)
    assert not hit(first, 1, 60)
    assert hit(second, 1, 60)


def test_a_new_window_starts_when_the_old_one_expires(settings):
    key = f"test:{uuid.uuid4()}"
    stored = cache.make_key(PREFIX + key)
    client = redis.Redis.from_url(settings.REDIS_URL)
    assert hit(key, 1, 60)
    assert not hit(key, 1, 60)
    # Redis ends the window itself: the counter lives as long as the window...
    assert 0 < client.ttl(stored) <= 60
    # ...and once Redis has dropped it, the next attempt opens a new window.
    client.pexpire(stored, 1)
    wait_until(lambda: not client.exists(stored), timeout=5, interval=0.01)
    assert hit(key, 1, 60)
    assert not hit(key, 1, 60)
