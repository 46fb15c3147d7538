import time
import uuid

from euro_prospects.ratelimit import hit


def test_it_allows_hits_up_to_the_limit_then_refuses():
    key = f"test:{uuid.uuid4()}"
    assert [hit(key, 3, 60) for _ in range(5)] == [True, True, True, False, False]


def test_keys_are_counted_separately():
    first, second = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    assert hit(first, 1, 60)
    assert not hit(first, 1, 60)
    assert hit(second, 1, 60)


def test_a_new_window_starts_when_the_old_one_expires():
    key = f"test:{uuid.uuid4()}"
    assert hit(key, 1, 1)
    assert not hit(key, 1, 1)
    # Redis expires the counter itself: wait for it rather than faking time.
    time.sleep(1.2)
    assert hit(key, 1, 1)
