"""The pure login throttle (gateway.auth.throttle): who waits, how long, keyed on what."""

from __future__ import annotations

import pytest

from config.settings import LoginThrottleSettings, RateRule
from gateway.auth.throttle import (
    FailureCounts,
    decide_login,
    delay_s,
    email_identifier,
    pair_identifier,
)

LIMITS = LoginThrottleSettings(
    free_failures=3,
    base_delay_s=2,
    max_delay_s=60,
    memory_s=3600,
    per_email_ceiling=RateRule(limit=100, window_s=3600),
)
NOW = 1_000_000.0


def counts(
    pair: int, *, ago: float = 0.0, email: int | None = None, ttl: int = 1800
) -> FailureCounts:
    return FailureCounts(
        pair=pair,
        pair_last_at=None if pair == 0 else NOW - ago,
        email=pair if email is None else email,
        email_ttl_s=ttl,
    )


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 0), (1, 0), (2, 0), (3, 2), (4, 4), (5, 8), (7, 32), (8, 60), (500, 60), (10**9, 60)],
)
def test_the_delay_is_free_then_doubles_up_to_the_cap(failures: int, wait: int) -> None:
    assert delay_s(failures, LIMITS) == wait


@pytest.mark.parametrize("failures", [0, 1, 2])
def test_the_first_failures_cost_no_wait(failures: int) -> None:
    assert decide_login(counts(failures), NOW, LIMITS).allowed


def test_past_the_free_failures_a_try_inside_the_wait_is_refused_with_retry_after() -> None:
    verdict = decide_login(counts(4, ago=1.5), NOW, LIMITS)
    assert not verdict.allowed
    assert verdict.retry_after_s == 3  # 4 s owed, 1.5 s spent: ceil(2.5)


def test_once_the_wait_has_passed_the_next_try_is_allowed() -> None:
    assert decide_login(counts(4, ago=4.0), NOW, LIMITS).allowed
    assert decide_login(counts(4, ago=3.99), NOW, LIMITS).retry_after_s == 1


def test_the_email_ceiling_refuses_even_a_pair_without_failures() -> None:
    verdict = decide_login(counts(0, email=100, ttl=1234), NOW, LIMITS)
    assert not verdict.allowed
    assert verdict.retry_after_s == 1234
    assert decide_login(counts(0, email=99), NOW, LIMITS).allowed


@pytest.mark.parametrize("ttl", [-2, -1, 0, 999_999])
def test_an_odd_ceiling_ttl_counts_as_the_whole_window(ttl: int) -> None:
    assert decide_login(counts(0, email=100, ttl=ttl), NOW, LIMITS).retry_after_s == 3600


def test_finding_anyone_can_lock_anyone_out_is_keyed_on_email_and_address() -> None:
    """A stranger's failures on the owner's email are counted for the stranger's
    address: the owner's pair from their own address is another counter."""
    email = "owner@example.org"
    stranger = pair_identifier("", email, "203.0.113.9")
    owner = pair_identifier("", email, "198.51.100.7")
    assert stranger != owner
    assert pair_identifier("", email, "203.0.113.9") == stranger
    assert pair_identifier("", "other@example.org", "203.0.113.9") != stranger
    # Ten failures from the stranger leave the owner's pair (no failures) free,
    # while the email's total (10) is far below the ceiling.
    assert not decide_login(counts(10, ago=1.0), NOW, LIMITS).allowed
    assert decide_login(counts(0, email=10), NOW, LIMITS).allowed


def test_identifiers_hide_the_email_and_carry_the_prefix() -> None:
    pair = pair_identifier("t1:", "owner@example.org", "127.0.0.1")
    email = email_identifier("t1:", "owner@example.org")
    assert pair.startswith("t1:auth:login-failures:pair:")
    assert email.startswith("t1:auth:login-failures:email:")
    assert "owner" not in pair + email
    # No separator trick: the email and address are hashed as one NUL-joined pair.
    assert pair_identifier("", "a:b", "c") != pair_identifier("", "a", "b:c")
