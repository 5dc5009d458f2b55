"""`backoff`'s bounds hold as named: no wait is shorter than `min` nor longer than `max`."""

from __future__ import annotations

import random

import pytest

from htq.delivery import Backoff

DRAWS = 2000


@pytest.mark.parametrize(
    "backoff",
    [Backoff(), Backoff(2, 300, 2), Backoff(0.05, 0.2, 2), Backoff(5, 5, 1), Backoff(1, 7, 3)],
)
def test_every_wait_is_within_min_and_max(backoff: Backoff) -> None:
    rng = random.Random(18)
    for attempt in range(1, 12):
        base = min(backoff.max, backoff.min * backoff.factor ** (attempt - 1))
        waits = [backoff.delay(attempt, rand=rng.random()) for _ in range(DRAWS)]
        assert all(backoff.min <= w <= backoff.max for w in waits), (attempt, min(waits))
        assert all(base <= w <= min(backoff.max, base * 1.5) for w in waits)


def test_the_issues_example_waits_at_least_2_seconds_each_time() -> None:
    """{"retries": 3, "backoff": {"min": 2}}: gaps of 1.1 s, 3.3 s, 4.2 s were seen before."""
    backoff = Backoff(min=2)
    for attempt, (low, high) in enumerate([(2, 3), (4, 6), (8, 12)], start=1):
        assert backoff.delay(attempt, rand=0.0) == low
        assert backoff.delay(attempt, rand=0.999999) == pytest.approx(high, rel=1e-5)
        waits = [backoff.delay(attempt) for _ in range(DRAWS)]  # the module's own random
        assert low <= min(waits) and max(waits) <= high
        assert max(waits) - min(waits) > (high - low) / 2, "the jitter spreads them"


def test_the_jitter_never_pushes_past_max() -> None:
    backoff = Backoff(min=1, max=10, factor=2)
    assert backoff.delay(4, rand=0.999999) == 10  # 8 s, plus up to half: capped at 10
    assert backoff.delay(30, rand=0.0) == 10


@pytest.mark.parametrize(("retry_after", "wait"), [(0, 2), (1, 2), (3, 3), (60, 5), (-4, 2)])
def test_retry_after_is_honoured_within_min_and_max(retry_after: float, wait: float) -> None:
    assert Backoff(min=2, max=5).delay(1, retry_after=retry_after) == wait
