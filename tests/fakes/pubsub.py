"""An in-memory Redis pub/sub broker for unit tests of ``gateway.ws.hub``.

``FakeBroker.open()`` stands in for ``RedisPushSubscriptions.open``: it answers a
``gateway.ports.PushSubscription`` (subscribe, unsubscribe, get_message,
aclose), with confirmations like Redis sends them.
"""

from __future__ import annotations

import asyncio
from typing import Any


class ConnectionLost(ConnectionError):
    pass


class FakePubSub:
    def __init__(self, broker: FakeBroker) -> None:
        self.broker = broker
        self.channels: set[str] = set()
        self.inbox: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self.closed = False

    async def subscribe(self, *channels: str) -> None:
        self.broker.commands.append(("subscribe", channels))
        for channel in channels:
            self.channels.add(channel)
            if self.broker.confirm:
                self.inbox.put_nowait({"type": "subscribe", "channel": channel, "data": 1})

    async def unsubscribe(self, *channels: str) -> None:
        self.broker.commands.append(("unsubscribe", channels))
        for channel in channels:
            self.channels.discard(channel)
            self.inbox.put_nowait({"type": "unsubscribe", "channel": channel, "data": 0})

    # The hub calls it as redis-py's: get_message(timeout=None).
    async def get_message(self, timeout: float | None = 0.0) -> dict[str, Any] | None:  # noqa: ASYNC109
        item = await self.inbox.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True
        self.channels.clear()


class FakeBroker:
    def __init__(self) -> None:
        self.pubsubs: list[FakePubSub] = []
        self.commands: list[tuple[str, tuple[str, ...]]] = []
        self.connects = 0
        #: False: swallow subscribe confirmations (a Redis that does not answer).
        self.confirm = True

    def open(self) -> FakePubSub:
        self.connects += 1
        pubsub = FakePubSub(self)
        self.pubsubs.append(pubsub)
        return pubsub

    def publish(self, channel: str, data: str) -> int:
        receivers = [p for p in self.pubsubs if not p.closed and channel in p.channels]
        for pubsub in receivers:
            pubsub.inbox.put_nowait({"type": "message", "channel": channel, "data": data})
        return len(receivers)

    def drop_connections(self) -> None:
        for pubsub in self.pubsubs:
            if not pubsub.closed:
                pubsub.inbox.put_nowait(ConnectionLost("connection reset"))

    def subscribers(self, channel: str) -> int:
        return sum(1 for p in self.pubsubs if not p.closed and channel in p.channels)
