"""Reconnect back-off (full jitter, 0.5 s doubling to 30 s) and ping intervals."""

from __future__ import annotations

import random

import pytest

from panic_alert_client import Backoff
from panic_alert_client.backoff import ping_interval


def test_the_ceiling_doubles_from_half_a_second_to_thirty() -> None:
    backoff = Backoff()
    assert [backoff.ceiling(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.ceiling(10_000) == 30  # a long outage neither overflows nor grows


@pytest.mark.parametrize("failures", [0, 3, 9])
def test_each_wait_is_drawn_from_zero_to_the_ceiling(failures: int) -> None:
    backoff, rng = Backoff(), random.Random(7)
    waits = [backoff.delay(failures, rng) for _ in range(2000)]
    ceiling = backoff.ceiling(failures)
    assert all(0 <= w <= ceiling for w in waits)
    # Full jitter: spread over the whole range, not bunched near the ceiling.
    assert min(waits) < ceiling * 0.05
    assert max(waits) > ceiling * 0.95


def test_pings_go_every_third_of_the_heartbeat_timeout_within_ten_percent() -> None:
    rng = random.Random(3)
    intervals = [ping_interval(60.0, rng) for _ in range(2000)]
    assert all(18.0 <= i <= 22.0 for i in intervals)
    assert min(intervals) < 18.2
    assert max(intervals) > 21.8
