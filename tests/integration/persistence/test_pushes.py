"""Pushes to sockets over the real Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
from uuid import uuid4

import pytest
import redis.asyncio as aioredis

from actors.effects import Audience, FrameType, Push
from config.settings import Settings
from persistence.drivers.redis import create_redis
from persistence.pushes import GroupPush, RedisPushSink, push_channel

pytestmark = pytest.mark.integration


async def test_each_frame_reaches_the_subscribers_of_its_audience_only(
    settings: Settings,
) -> None:
    user, agent = uuid4(), uuid4()
    client = create_redis(settings.redis)
    pubsub = client.pubsub()
    await pubsub.subscribe(push_channel("user", str(user)), push_channel("agent", str(agent)))
    try:
        sink = RedisPushSink(client)
        await sink.push(
            [
                Push(Audience.user(user), FrameType.ALERT_UPDATED, {"status": "assigned"}),
                Push(Audience.agent(agent), FrameType.OFFER_REVOKED, {"alert_id": "a-1"}),
                Push(Audience.user(uuid4()), FrameType.ALERT_UPDATED, {"status": "noise"}),
            ]
        )
        received: dict[str, dict[str, object]] = {}
        async with asyncio.timeout(10):
            while len(received) < 2:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received[message["channel"]] = json.loads(message["data"])
        assert received == {
            f"ws:user:{user}": {"type": "alert.updated", "data": {"status": "assigned"}},
            f"ws:agent:{agent}": {"type": "offer.revoked", "data": {"alert_id": "a-1"}},
        }
    finally:
        await pubsub.aclose()
        await client.aclose()


async def test_a_burst_of_pushes_through_group_push_shares_a_connection(
    settings: Settings,
) -> None:
    # 20 entities whose commits came back together push at once (a round of the
    # geofence bench's probes): together, each told its own listener count.
    name = f"push-burst-{uuid4().hex[:8]}"
    r = settings.redis
    pool = aioredis.BlockingConnectionPool(
        host=r.host,
        port=r.port,
        db=r.db,
        password=r.password.get_secret_value() if r.password else None,
        decode_responses=True,
        client_name=name,  # to count this client's connections in CLIENT LIST
        max_connections=50,
    )
    publisher = aioredis.Redis(connection_pool=pool)
    listener = create_redis(settings.redis)
    pubsub = listener.pubsub()
    users = [uuid4() for _ in range(20)]
    await pubsub.subscribe(*(push_channel("user", str(u)) for u in users))
    try:
        sink = GroupPush(RedisPushSink(publisher))
        reached = await asyncio.gather(
            *(
                sink.push([Push(Audience.user(u), FrameType.GEOFENCE_ALERT, {"n": i})])
                for i, u in enumerate(users)
            )
        )
        assert reached == [[1]] * 20
        received: set[int] = set()
        async with asyncio.timeout(10):
            while len(received) < 20:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    received.add(json.loads(message["data"])["data"]["n"])
        assert received == set(range(20))
        # All 20 came before the first publish began: one pipeline, one connection
        # (RedisPushSink alone, one pipeline and one new connection each).
        assert sink.calls == 1
        opened = [c for c in await listener.client_list() if c.get("name") == name]
        assert len(opened) == 1
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await publisher.aclose()
