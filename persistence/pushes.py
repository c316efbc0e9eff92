"""Pushes to WebSocket sockets over Redis pub/sub, both halves.

Publishing (:class:`RedisPushSink`, implements ``actors.ports.PushSink``):
every frame for one audience (all sockets of one user, or of one agent) is
published on that audience's channel, ``ws:{user|agent}:{id}``. The end of a
login session is published on ``ws:session:{session_id}``
(``persistence.stores.sessions``), which that session's sockets listen to.

Subscribing (:class:`RedisPushSubscriptions`, implements the gateway's
``PushSubscription`` provider): whichever gateway replica holds those sockets
subscribes to their channels over one connection per process; the fan-out to
sockets is the gateway's (``gateway.ws.hub``).

At-most-once by design: a frame published while nobody listens is gone, and
apps resync on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from actors.effects import PRESENCE_CHANNEL, Push, push_channel
from config.settings import RedisSettings
from persistence.drivers import redis as redis_driver
from persistence.drivers.redis import create_redis

log = logging.getLogger(__name__)


def session_channel(session_id: str) -> str:
    """``ws:session:{session_id}``: where the end of one login session is announced
    to its sockets (session ids are unique across roles and accounts)."""
    return push_channel("session", session_id)


class RedisPushSink:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def push(self, pushes: Sequence[Push]) -> list[int]:
        """Publish every frame in one round trip; how many subscribed gateway
        connections each reached (0: no socket of its audience anywhere).
        Raises ``PersistenceError`` if Redis fails."""
        if not pushes:
            return []
        with redis_driver.EDGE:
            async with self._client.pipeline(transaction=False) as pipe:
                for p in pushes:
                    pipe.publish(
                        push_channel(*p.audience.as_tuple()),
                        json.dumps(p.frame(), separators=(",", ":")),
                    )
                reached = await pipe.execute()
        return [int(n) for n in reached]

    async def ask_presence(self) -> None:
        """Ask every gateway to announce its agents' live sockets again."""
        with redis_driver.EDGE:
            await self._client.publish(PRESENCE_CHANNEL, "announce")


#: Seconds a push subscription's close may take before it is given up.
CLOSE_TIMEOUT_S = 5.0


class RedisPushSubscription:
    """One pub/sub connection with its own client; closing it closes both.

    Messages are redis-py's (``{"type", "channel", "data"}``, decoded to
    ``str``): ``subscribe`` confirmations and ``message`` frames, in order.
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._pubsub: PubSub = client.pubsub()

    async def subscribe(self, *channels: str) -> None:
        with redis_driver.EDGE:
            await self._pubsub.subscribe(*channels)

    async def unsubscribe(self, *channels: str) -> None:
        with redis_driver.EDGE:
            await self._pubsub.unsubscribe(*channels)

    async def get_message(self, timeout: float | None = 0.0) -> dict[str, Any] | None:  # noqa: ASYNC109
        with redis_driver.EDGE:
            message: dict[str, Any] | None = await self._pubsub.get_message(timeout=timeout)
        return message

    async def aclose(self) -> None:
        """Close the subscription and its client; never raises, and gives up after
        :data:`CLOSE_TIMEOUT_S` each (a close waiting on a connection that Redis
        going away left mid-command must not hold a shutdown forever)."""
        for what, close in (("subscription", self._pubsub.aclose), ("client", self._client.aclose)):
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await close()
            except Exception:
                log.debug("push %s: error while closing", what, exc_info=True)


class RedisPushSubscriptions:
    """Opens :class:`RedisPushSubscription`\\ s to the Redis of ``settings`` (lazily:
    nothing connects until the first command)."""

    def __init__(self, settings: RedisSettings) -> None:
        self._settings = settings

    def open(self) -> RedisPushSubscription:
        return RedisPushSubscription(create_redis(self._settings))
