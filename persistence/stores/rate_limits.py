"""Rate-limit counters in Redis (``gateway.ports.RateCounters``): fixed windows
under ``rate_limit:{identifier}``.

One pipeline per hit does ``INCR``, ``EXPIRE ... NX`` (the window starts with
its first request) and ``TTL``; every replica shares the counters. The
verdict is the gateway's (``gateway.ratelimit.decide``).
"""

from __future__ import annotations

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
