"""Pushes to sockets over the real Redis pub/sub."""

from __future__ import annotations

import asyncio
import json
from uuid import uuid4

import pytest

from actors.effects import Audience, FrameType, Push
from config.settings import Settings
from persistence.drivers.redis import create_redis
from persistence.pushes import RedisPushSink, push_channel

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
