"""The panic button's lock per user in Redis (``gateway.ports.PressMutex``).

``press:{user_id}`` holds a random token for at most the TTL (``SET NX PX``),
so a lock whose holder died frees itself; it is released only by the token
that took it (a compare-and-delete script), never by a press that waited past
the TTL of another's.
"""

from __future__ import annotations

import secrets
from uuid import UUID

import redis.asyncio as aioredis

from persistence.drivers import redis as redis_driver

#: Deletes KEYS[1] only while it holds ARGV[1].
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def press_key(user_id: UUID) -> str:
    """``press:{user_id}``."""
    return f"press:{user_id}"


class RedisPressMutex:
    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def acquire(self, user_id: UUID, ttl_s: float) -> str | None:
        token = secrets.token_hex(16)
        with redis_driver.EDGE:
            taken = await self._client.set(
                press_key(user_id), token, nx=True, px=max(1, int(ttl_s * 1000))
            )
        return token if taken else None

    async def release(self, user_id: UUID, token: str) -> None:
        with redis_driver.EDGE:
            await self._client.eval(_RELEASE, 1, press_key(user_id), token)
