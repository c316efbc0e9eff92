"""When to reconnect and when to ping. Pure: the randomness is passed in.

Reconnects use exponential back-off with "full jitter" (AWS architecture
blog): after the n-th failed attempt in a row the socket waits
``uniform(0, min(cap, base * 2**n))``, so sockets dropped together (a
gateway restart) come back spread out instead of in one storm. Pings go every
third of ``auth.ok``'s ``heartbeat_timeout_s``, ±10 %, so a late or lost ping
still leaves two more before the server's idle close (4408).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Pings per ``heartbeat_timeout_s``.
PINGS_PER_HEARTBEAT = 3
#: Each ping interval is the nominal one times uniform(1 - j, 1 + j).
PING_JITTER = 0.10


@dataclass(frozen=True, slots=True)
class Backoff:
    """Full-jitter exponential back-off: 0.5 s doubling to 30 s by default."""

    base_s: float = 0.5
    cap_s: float = 30.0

    def ceiling(self, failures: int) -> float:
        """The longest wait after ``failures`` failed attempts in a row (0: the first retry)."""
        # min() first on the exponent too, so a long outage never overflows a float.
        return min(self.cap_s, self.base_s * 2.0 ** min(failures, 64))

    def delay(self, failures: int, rng: random.Random) -> float:
        """A wait drawn uniformly from ``[0, ceiling(failures)]``."""
        return rng.uniform(0.0, self.ceiling(failures))


def ping_interval(heartbeat_timeout_s: float, rng: random.Random) -> float:
    """Seconds to the next ping: a third of the heartbeat timeout, ±10 %."""
    nominal = heartbeat_timeout_s / PINGS_PER_HEARTBEAT
    return nominal * rng.uniform(1 - PING_JITTER, 1 + PING_JITTER)
