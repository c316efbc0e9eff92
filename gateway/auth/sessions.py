"""Login sessions in Redis: ``session:{role}:{account_id}`` is the SET of the
account's active session ids.

A login adds its session id; logout, or a refresh token's family being
revoked, removes it. Every request checks membership, so revocation takes
effect on the next request, on every gateway replica.
"""

from __future__ import annotations

from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.auth.principal import Principal, Role
from persistence.drivers.redis import session_key, translate_error


async def open_session(
    client: aioredis.Redis, role: Role, account_id: UUID, session_id: str, ttl_s: int
) -> None:
    key = session_key(role.value, account_id)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.sadd(key, session_id)
            pipe.expire(key, ttl_s)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        raise translate_error(exc) from exc


async def close_session(
    client: aioredis.Redis, role: Role, account_id: UUID, session_id: str
) -> None:
    try:
        await client.srem(session_key(role.value, account_id), session_id)
    except (RedisError, OSError) as exc:
        raise translate_error(exc) from exc


async def is_active(client: aioredis.Redis, principal: Principal) -> bool:
    try:
        found = await client.sismember(
            session_key(principal.role.value, principal.id), principal.session_id
        )
    except (RedisError, OSError) as exc:
        raise translate_error(exc) from exc
    return bool(found)
