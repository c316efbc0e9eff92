"""Rate-limit counters in Redis (``gateway.ports.RateCounters``): fixed windows
under ``rate_limit:{identifier}``.

One pipeline per hit does ``INCR``, ``EXPIRE ... NX`` (the window starts with
its first request) and ``TTL``; every replica shares the counters. The
verdict is the gateway's (``gateway.ratelimit.decide``).

Failed logins (:class:`RedisLoginFailures`) are counted apart from requests,
so that only failures slow a login down (``gateway.auth.throttle``).
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from persistence.drivers import redis as redis_driver
from persistence.drivers.redis import rate_limit_key


class RedisRateCounters:
    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def hit(self, identifier: str, window_s: int) -> tuple[int, int]:
        """Count one request; ``(count, ttl)``. Not idempotent (it counts)."""
        key = rate_limit_key(identifier)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, window_s, nx=True)
                pipe.ttl(key)
                count, _, ttl = await pipe.execute()
        return int(count), int(ttl)


@dataclass(frozen=True, slots=True)
class FailureCountsRecord:
    """``gateway.ports.LoginFailureCounts``."""

    pair: int
    pair_last_at: float | None
    email: int
    email_ttl_s: int


class RedisLoginFailures:
    """Failed logins (``gateway.ports.LoginFailures``): a hash per email+address
    pair (``n``: failures, ``last``: when the last was) that expires
    ``pair_ttl_s`` after its last failure, and a fixed-window counter per email,
    both under ``rate_limit:{identifier}``."""

    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def counts(self, pair: str, email: str) -> FailureCountsRecord:
        pair_key, email_key = rate_limit_key(pair), rate_limit_key(email)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.hmget(pair_key, ["n", "last"])
                pipe.get(email_key)
                pipe.ttl(email_key)
                (n, last), email_count, ttl = await pipe.execute()
        return FailureCountsRecord(
            pair=int(n or 0),
            pair_last_at=None if last is None else float(last),
            email=int(email_count or 0),
            email_ttl_s=int(ttl),
        )

    async def record_failure(
        self, pair: str, email: str, *, at: float, pair_ttl_s: int, email_window_s: int
    ) -> None:
        pair_key, email_key = rate_limit_key(pair), rate_limit_key(email)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.hincrby(pair_key, "n", 1)
                pipe.hset(pair_key, "last", repr(at))
                pipe.expire(pair_key, pair_ttl_s)
                pipe.incr(email_key)
                pipe.expire(email_key, email_window_s, nx=True)
                await pipe.execute()

    async def clear(self, pair: str) -> None:
        with redis_driver.EDGE:
            await self._client.delete(rate_limit_key(pair))
