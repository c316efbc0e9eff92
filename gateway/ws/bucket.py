"""A token bucket: at most ``burst`` at once, ``rate`` per second on average. Pure.

Each ``/ws`` socket has one for its client frames
(``gateway.ws.protocol.SessionProtocol``): every frame takes a token; a frame
finding the bucket empty is over the limit. The clock is passed in (the
caller's monotonic seconds), so the bucket is tested without waiting.
"""

from __future__ import annotations

_EPSILON = 1e-9


class TokenBucket:
    """Starts full. Not thread-safe; one socket's task drives it."""

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        """Take one token at ``now``: True if there was one, False when empty
        (nothing is taken then). A clock that goes backwards refills nothing."""
        if now > self._updated:
            self._tokens = min(self._burst, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
        # The epsilon keeps a client sending at exactly the rate from being refused
        # by rounding (20 refills of 0.05 sum to 0.9999...).
        if self._tokens >= 1.0 - _EPSILON:
            self._tokens -= 1.0
            return True
        return False

    @property
    def tokens(self) -> float:
        """Tokens left at the last :meth:`take` (for tests and metrics)."""
        return self._tokens
