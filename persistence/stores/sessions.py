"""Login sessions in Redis (``gateway.ports.Sessions``): ``session:{role}:{account_id}``
is the SET of the account's active session ids.

A login adds its session id; logout, or a refresh token's family being
revoked, removes it; suspending an agent removes them all
(``close_all_sessions``). Every request checks membership, so revocation
takes effect on the next request, on every gateway replica.

Open sockets do not make requests, so closing a session also publishes
:data:`REVOKED` on its channel (``persistence.pushes.session_channel``),
which every socket of that session listens to on whichever replica holds
it. The removal is committed before (or with) the publish, so a socket that
subscribes and then checks membership misses neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import redis.asyncio as aioredis

from persistence.drivers import redis as redis_driver
from persistence.drivers.redis import session_key
from persistence.pushes import session_channel

#: What a session's channel carries when the session ends (sockets close on any message).
REVOKED = "revoked"


class RedisSessions:
    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    def revocation_channel(self, session_id: str) -> str:
        return session_channel(session_id)

    async def open_session(self, role: str, account_id: UUID, session_id: str, ttl_s: int) -> None:
        """Add the session (again: that extends the key's lifetime). Idempotent."""
        key = session_key(role, account_id)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.sadd(key, session_id)
                pipe.expire(key, ttl_s)
                await pipe.execute()

    async def close_session(self, role: str, account_id: UUID, session_id: str) -> None:
        """Remove the session and tell its sockets, in one transaction. Idempotent
        (a session already closed is announced again: no socket of it is left)."""
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.srem(session_key(role, account_id), session_id)
                pipe.publish(session_channel(session_id), REVOKED)
                await pipe.execute()

    async def close_all_sessions(self, role: str, account_id: UUID) -> int:
        """Remove every session of the account and tell each one's sockets; the
        number removed. Idempotent. The sessions are read and removed in one
        transaction, so one opened meanwhile is either closed too or left open
        whole (it was opened after the call)."""
        key = session_key(role, account_id)
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.smembers(key)
                pipe.delete(key)
                members, _ = await pipe.execute()
            ids = sorted(str(m) for m in members)
            if ids:
                async with self._client.pipeline(transaction=False) as pipe:
                    for session_id in ids:
                        pipe.publish(session_channel(session_id), REVOKED)
                    await pipe.execute()
        return len(ids)

    async def is_active(self, role: str, account_id: UUID, session_id: str) -> bool:
        with redis_driver.EDGE:
            found = await self._client.sismember(session_key(role, account_id), session_id)
        return bool(found)

    async def are_active(self, sessions: Sequence[tuple[str, UUID, str]]) -> list[bool]:
        """Each session's :meth:`is_active`, in the order given, in one round trip."""
        if not sessions:
            return []
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=False) as pipe:
                for role, account_id, session_id in sessions:
                    pipe.sismember(session_key(role, account_id), session_id)
                found = await pipe.execute()
        return [bool(member) for member in found]
