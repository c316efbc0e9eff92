"""The pure parts of gateway.ratelimit: window arithmetic, identifiers, configuration."""

from __future__ import annotations

import pytest

from config.settings import RateLimitSettings, RateRule
from gateway.ratelimit import decide, identifier, rate_limit, rule_named

RULE = RateRule(limit=3, window_s=60)


@pytest.mark.parametrize(("count", "remaining"), [(1, 2), (2, 1), (3, 0)])
def test_requests_up_to_the_limit_pass(count: int, remaining: int) -> None:
    decision = decide(count, 42, RULE)
    assert decision.allowed
    assert decision.remaining == remaining
    assert decision.retry_after_s == 42


@pytest.mark.parametrize("count", [4, 5, 1000])
def test_requests_beyond_the_limit_are_refused_until_the_window_ends(count: int) -> None:
    decision = decide(count, 17, RULE)
    assert not decision.allowed
    assert decision.remaining == 0
    assert decision.retry_after_s == 17


@pytest.mark.parametrize("ttl", [-1, -2, 0, 61, 10_000])
def test_retry_after_falls_back_to_the_whole_window_on_odd_ttls(ttl: int) -> None:
    assert decide(4, ttl, RULE).retry_after_s == 60


def test_retry_after_is_never_zero_within_the_window() -> None:
    assert decide(4, 1, RULE).retry_after_s == 1


def test_identifier_layout_and_prefix() -> None:
    assert identifier("", "auth:login", "ip", "127.0.0.1") == "auth:login:ip:127.0.0.1"
    assert identifier("t1:", "users", "principal", "abc") == "t1:users:principal:abc"


def test_emails_and_long_values_are_hashed() -> None:
    email_id = identifier("", "auth:login", "email", "a@example.org")
    assert "a@example.org" not in email_id
    assert email_id == identifier("", "auth:login", "email", "a@example.org")
    assert email_id != identifier("", "auth:login", "email", "b@example.org")
    long_id = identifier("", "s", "ip", "x" * 500)
    assert len(long_id) < 100


def test_rules_are_found_by_name_or_given_inline() -> None:
    settings = RateLimitSettings()
    assert rule_named(settings, "login_per_ip") == settings.login_per_ip
    assert rule_named(settings, RULE) is RULE
    with pytest.raises(ValueError, match="no rule"):
        rule_named(settings, "enabled")


def test_the_factory_refuses_misconfiguration_at_import_time() -> None:
    with pytest.raises(ValueError, match="no rule"):
        rate_limit("x", rule="login_per_typo")
    with pytest.raises(ValueError, match="limit and window_s"):
        rate_limit("x", limit=5)
    assert callable(rate_limit("x", key="principal", limit=5, window_s=10))
