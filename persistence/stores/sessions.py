"""Login sessions in Redis (``gateway.ports.Sessions``): ``session:{role}:{account_id}``
is the SET of the account's active session ids.

A login adds its session id; logout, or a refresh token's family being
revoked, removes it; suspending an agent removes them all
(``close_all_sessions``). Every request checks membership, so revocation
takes effect on the next request, on every gateway replica.
"""

from __future__ import annotations

from uuid import UUID

import redis.asyncio as aioredis

from persistence.drivers import redis as redis_driver
from persistence.drivers.redis import session_key


class RedisSessions:
    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def open_session(self, role: str, account_id: UUID, session_id: str, ttl_s: int) -> None:
        """Add the session (again: that extends the key's lifetime). Idempotent."""
        key = session_key(role, account_id)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.sadd(key, session_id)
                pipe.expire(key, ttl_s)
                await pipe.execute()

    async def close_session(self, role: str, account_id: UUID, session_id: str) -> None:
        """Idempotent."""
        with redis_driver.EDGE:
            await self._client.srem(session_key(role, account_id), session_id)

    async def is_active(self, role: str, account_id: UUID, session_id: str) -> bool:
        with redis_driver.EDGE:
            found = await self._client.sismember(session_key(role, account_id), session_id)
        return bool(found)

    async def close_all_sessions(self, role: str, account_id: UUID) -> int:
        """End every session of the account; how many there were. Idempotent
        (``gateway.ports.SessionRevoker``).

        One transaction (SMEMBERS then DEL), so a login landing in between
        is either counted and ended or made after: never left half-revoked.
        """
        key = session_key(role, account_id)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.smembers(key)
                pipe.delete(key)
                members, _deleted = await pipe.execute()
        return len(members)
