"""Login throttling that cannot lock the owner out (issue 16, item 5).

Only *failures* count, and they are counted per email **and** client
address: a stranger guessing someone's password slows down only their own
address. After ``free_failures`` failures of one pair, each further try
waits ``base_delay_s``, doubled per failure up to ``max_delay_s``, counted
from the pair's last failure; a try inside the wait is answered 429 with
``Retry-After`` *before* the password is checked (so it costs no argon2 and
is not a failure itself). A success clears the pair. Above all pairs, a
ceiling on the failures of one email from every address together
(``per_email_ceiling``, high) stops a guesser spread over many addresses;
that ceiling alone can reach the owner, and only after that many failures.

The decision is :func:`decide_login`, a pure function of the counts and the
clock; the counts live in Redis (``gateway.ports.LoginFailures``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from config.settings import LoginThrottleSettings

SCOPE = "auth:login-failures"


@dataclass(frozen=True, slots=True)
class FailureCounts:
    """What the store knows of one login's email+address pair and its email."""

    #: Failures of this email from this address, since the last success.
    pair: int
    #: When the pair's last failure was (Unix seconds); None if it has none.
    pair_last_at: float | None
    #: Failures of this email from every address in the ceiling's window.
    email: int
    #: Seconds left in that window (Redis ``TTL``: -1/-2 count as a whole window).
    email_ttl_s: int


@dataclass(frozen=True, slots=True)
class LoginVerdict:
    allowed: bool
    #: Seconds to wait when refused (>= 1); 0 when allowed.
    retry_after_s: int


ALLOWED = LoginVerdict(True, 0)


def delay_s(failures: int, settings: LoginThrottleSettings) -> int:
    """The wait owed after ``failures`` failures of one pair: none for the first
    ``free_failures``, then ``base_delay_s`` doubling per failure, capped."""
    extra = failures - settings.free_failures
    if extra < 0:
        return 0
    # The exponent is capped so a huge count makes no huge integer.
    doubled: int = settings.base_delay_s << min(extra, 32)
    return min(settings.max_delay_s, doubled)


def decide_login(
    counts: FailureCounts, now: float, settings: LoginThrottleSettings
) -> LoginVerdict:
    """Whether a login may be tried now (before its password is checked)."""
    ceiling = settings.per_email_ceiling
    if counts.email >= ceiling.limit:
        ttl = counts.email_ttl_s
        return LoginVerdict(False, ttl if 0 < ttl <= ceiling.window_s else ceiling.window_s)
    wait = delay_s(counts.pair, settings)
    if wait == 0 or counts.pair_last_at is None:
        return ALLOWED
    left = counts.pair_last_at + wait - now
    if left <= 0:
        return ALLOWED
    return LoginVerdict(False, max(1, math.ceil(left)))


def _digest(*parts: str) -> str:
    joined = "\x00".join(parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()


def pair_identifier(prefix: str, email: str, ip: str) -> str:
    """The counter of one email from one address (both hashed: no raw email in Redis)."""
    return f"{prefix}{SCOPE}:pair:{_digest(email, ip)}"


def email_identifier(prefix: str, email: str) -> str:
    """The counter of one email from every address."""
    return f"{prefix}{SCOPE}:email:{_digest(email)}"
