"""Login sessions in the real Redis (persistence.stores.sessions): closing one
removes it and announces it on its channel, for the sockets of that session."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from persistence.pushes import session_channel
from persistence.stores.sessions import REVOKED, RedisSessions

pytestmark = pytest.mark.integration

TTL_S = 60


async def announced(pubsub: PubSub, count: int) -> list[tuple[str, str]]:
    """The next ``count`` messages, as ``(channel, data)``; then nothing more for a while."""
    got: list[tuple[str, str]] = []
    async with asyncio.timeout(10):
        while len(got) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                got.append((message["channel"], message["data"]))
    assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    return got


async def test_closing_a_session_removes_it_and_announces_it_on_its_channel_only(
    redis_client: aioredis.Redis,
) -> None:
    sessions = RedisSessions(redis_client)
    account, mine, other = uuid4(), uuid4().hex, uuid4().hex
    await sessions.open_session("user", account, mine, TTL_S)
    await sessions.open_session("user", account, other, TTL_S)
    assert sessions.revocation_channel(mine) == session_channel(mine) == f"ws:session:{mine}"
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(session_channel(mine), session_channel(other))
    try:
        await sessions.close_session("user", account, mine)
        assert await announced(pubsub, 1) == [(session_channel(mine), REVOKED)]
        assert not await sessions.is_active("user", account, mine)
        assert await sessions.is_active("user", account, other)
    finally:
        await pubsub.aclose()


async def test_closing_every_session_of_an_account_announces_each_and_counts_them(
    redis_client: aioredis.Redis,
) -> None:
    sessions = RedisSessions(redis_client)
    account, bystander = uuid4(), uuid4()
    ids = sorted(uuid4().hex for _ in range(3))
    for session_id in ids:
        await sessions.open_session("agent", account, session_id, TTL_S)
    # The same account id under another role, and another account: untouched.
    await sessions.open_session("user", account, "as-user", TTL_S)
    await sessions.open_session("agent", bystander, "bystander", TTL_S)
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(
        *(session_channel(s) for s in [*ids, "as-user", "bystander"]),
    )
    try:
        assert await sessions.close_all_sessions("agent", account) == 3
        got = await announced(pubsub, 3)
        assert sorted(got) == [(session_channel(s), REVOKED) for s in ids]
        for session_id in ids:
            assert not await sessions.is_active("agent", account, session_id)
        assert await sessions.is_active("user", account, "as-user")
        assert await sessions.is_active("agent", bystander, "bystander")
        # Idempotent: nothing left to close, nothing announced.
        assert await sessions.close_all_sessions("agent", account) == 0
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.aclose()
        await sessions.close_session("user", account, "as-user")
        await sessions.close_session("agent", bystander, "bystander")


async def test_sessions_checked_together_are_answered_each_in_the_order_given(
    redis_client: aioredis.Redis,
) -> None:
    sessions = RedisSessions(redis_client)
    account, other = uuid4(), uuid4()
    open_, closed = uuid4().hex, uuid4().hex
    await sessions.open_session("agent", account, open_, TTL_S)
    await sessions.open_session("agent", account, closed, TTL_S)
    await sessions.close_session("agent", account, closed)

    found = await sessions.are_active(
        [
            ("agent", account, closed),
            ("agent", account, open_),
            ("user", account, open_),  # the same id under another role
            ("agent", other, open_),
        ]
    )

    assert found == [False, True, False, False]
    assert await sessions.are_active([]) == []
