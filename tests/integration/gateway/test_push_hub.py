"""The push hub against the real Redis: sockets attaching while it connects."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from config.settings import Settings
from gateway.ws.hub import PushHub
from persistence.drivers.redis import create_redis
from persistence.pushes import RedisPushSubscriptions

pytestmark = pytest.mark.integration


async def test_sockets_attaching_while_the_hub_connects_are_all_subscribed(
    settings: Settings,
) -> None:
    # Found by a test of 100 sockets connecting at once: a SUBSCRIBE racing the
    # hub's first one opened a second connection, whose confirmations nobody read.
    hub = PushHub(RedisPushSubscriptions(settings.redis).open, subscribe_timeout_s=2)
    runner = asyncio.create_task(hub.run())
    try:
        first = asyncio.create_task(hub.attach(f"ws:test:{uuid4()}", lambda _data: None))
        await asyncio.sleep(0)  # the hub wakes up and starts connecting

        async def late(i: int) -> None:
            await asyncio.sleep(i * 0.0005)
            await hub.attach(f"ws:test:{uuid4()}", lambda _data: None)

        results = await asyncio.gather(
            first, *(late(i) for i in range(100)), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        received: list[str] = []
        arrived = asyncio.Event()

        def sink(data: str) -> None:
            received.append(data)
            arrived.set()

        channel = f"ws:test:{uuid4()}"
        await hub.attach(channel, sink)
        publisher = create_redis(settings.redis)
        try:
            await publisher.publish(channel, '{"type":"pong"}')
        finally:
            await publisher.aclose()
        await asyncio.wait_for(arrived.wait(), 5)
        assert received == ['{"type":"pong"}']
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
