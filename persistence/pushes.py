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

A shard publishes through :class:`GroupPush`: pushes that queue behind a
publish go to Redis together, in the next pipeline. Without it, entities whose
commits came back together (``persistence.outbox.group_commit``) each took a
connection of their own for their pipeline, and the client opened new ones
for a burst (issue 20: the first round of 20 probes' alerts after the warm-up
waited 72-299 ms between their commits and the gateway, p50 10 ms over all
rounds).

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
from actors.ports import PushSink
from config.settings import RedisSettings
from persistence.drivers import redis as redis_driver
from persistence.drivers.redis import create_redis
from persistence.grouping import Grouped, Waiting, fail_each

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


#: Pushes published together at most (bounds one pipeline).
MAX_GROUP_PUSHES = 256

_Waiting = Waiting[Sequence[Push], list[int]]


class GroupPush:
    """A ``PushSink`` that publishes the pushes queued behind a publish together.

    A push that finds no publish in flight goes at once (next loop turn: no
    added wait); pushes that arrive meanwhile wait for it, then go together in
    one call of the wrapped sink (one pipeline, one connection), up to
    ``max_pushes`` a call. Each caller still gets its own listener counts, in
    order, or the error of the call that carried its pushes; one entity's
    pushes keep their order (the host awaits each before its next message).
    """

    def __init__(self, sink: PushSink, *, max_pushes: int = MAX_GROUP_PUSHES) -> None:
        if max_pushes < 1:
            raise ValueError("max_pushes must be >= 1")
        self._sink = sink
        self._max = max_pushes
        self._calls = Grouped[Sequence[Push], list[int]](
            self._publish, take=self._fitting, stopped="pushes stopped"
        )
        #: Calls of the wrapped sink, and the callers' push lists they carried.
        self.calls = 0
        self.carried = 0

    async def push(self, pushes: Sequence[Push]) -> list[int]:
        if not pushes:
            return []
        return await self._calls.call(pushes)

    async def ask_presence(self) -> None:
        await self._sink.ask_presence()

    def _fitting(self, waiting: Sequence[_Waiting]) -> int:
        """How many of the oldest callers' pushes fit in one call (the first's always do)."""
        taken, count = 0, 0
        for pushes, _future in waiting:
            if taken and count + len(pushes) > self._max:
                break
            taken += 1
            count += len(pushes)
        return taken

    async def _publish(self, group: list[_Waiting]) -> None:
        try:
            reached = list(await self._sink.push([p for pushes, _f in group for p in pushes]))
        except Exception as exc:
            fail_each(group, exc)
            return
        self.calls += 1
        self.carried += len(group)
        start = 0
        for pushes, future in group:
            end = start + len(pushes)
            if not future.done():  # a caller cancelled meanwhile
                future.set_result(reached[start:end])
            start = end


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
