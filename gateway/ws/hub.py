"""One pub/sub connection per gateway process, fanning pushes out to its sockets.

Entities publish each push on its audience's channel (``ws:{user|agent}:{id}``,
``persistence.pushes``); the connection is a ``gateway.ports.PushSubscription``
(Redis, ``persistence.pushes.RedisPushSubscription``). A socket
:meth:`PushHub.attach`\\ es a sink to its channel; the first sink of a
channel subscribes it, the last one to :meth:`PushHub.detach` unsubscribes
it, so a replica listens exactly to the audiences whose sockets it holds,
over one connection.

Guarantees: at-most-once, like the channel itself. ``attach`` returns once
Redis has confirmed the subscription, so anything published after that is
delivered (while the connection lives). Frames are handed to sinks as the
JSON text published, unparsed, in the order received. When the connection
drops, :meth:`run` reconnects and resubscribes every channel that still has
sinks; frames published in between are lost (apps resync on reconnect).

The connection is opened lazily, when the first socket attaches, so a
process with no sockets never talks to Redis from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from actors.store_errors import ServiceUnavailable
from gateway.ports import PushSubscription

log = logging.getLogger(__name__)

#: Receives one pushed frame (JSON text). Must not block or raise.
Sink = Callable[[str], None]


class PushHub:
    def __init__(
        self,
        connect: Callable[[], PushSubscription],
        *,
        subscribe_timeout_s: float = 5.0,
        retry_delay_s: float = 0.5,
    ) -> None:
        self._connect = connect
        self._subscribe_timeout_s = subscribe_timeout_s
        self._retry_delay_s = retry_delay_s
        self._sinks: dict[str, set[Sink]] = {}
        self._confirmed: set[str] = set()
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._pubsub: PushSubscription | None = None
        self._wanted = asyncio.Event()
        # Channels whose subscription may need changing: SUBSCRIBE/UNSUBSCRIBE go
        # out for all of them at once, each channel re-checked when its turn comes.
        self._pending: set[str] = set()
        self._flusher: asyncio.Task[None] | None = None
        self._command_lock = asyncio.Lock()
        #: Frames handed to sinks (for metrics and tests).
        self.delivered = 0

    @property
    def channels(self) -> frozenset[str]:
        """The channels that have at least one sink in this process."""
        return frozenset(self._sinks)

    @property
    def subscribed(self) -> frozenset[str]:
        """The channels Redis has confirmed on the current connection."""
        return frozenset(self._confirmed)

    async def attach(self, channel: str, sink: Sink) -> None:
        """Deliver the frames of ``channel`` to ``sink`` once subscribed.

        Raises ``ServiceUnavailable("redis")`` (and attaches nothing) when
        Redis does not confirm the subscription in time.
        """
        sinks = self._sinks.setdefault(channel, set())
        first = not sinks
        sinks.add(sink)
        self._wanted.set()
        if channel in self._confirmed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        try:
            if first:
                self._reconcile(channel)
            async with asyncio.timeout(self._subscribe_timeout_s):
                await waiter
        except TimeoutError:
            self.detach(channel, sink)
            raise ServiceUnavailable("redis", "push subscription not confirmed in time") from None
        except BaseException:
            self.detach(channel, sink)
            raise
        finally:
            waiting = self._waiters.get(channel, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                self._waiters.pop(channel, None)

    def detach(self, channel: str, sink: Sink) -> None:
        """Stop delivering to ``sink``; unsubscribes the channel with its last sink."""
        sinks = self._sinks.get(channel)
        if sinks is None or sink not in sinks:
            return
        sinks.discard(sink)
        if sinks:
            return
        del self._sinks[channel]
        self._confirmed.discard(channel)
        self._reconcile(channel)

    async def run(self) -> None:
        """Keep the connection for the life of the process (a background task)."""
        while True:
            await self._wanted.wait()
            try:
                await self._serve()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("push hub: connection lost (%s); reconnecting", exc)
            await asyncio.sleep(self._retry_delay_s)

    async def _serve(self) -> None:
        pubsub = self._connect()
        try:
            # Under the command lock: a SUBSCRIBE of a socket attaching meanwhile
            # would otherwise race this first one to open the connection, and
            # the loser's confirmations would arrive on a connection nobody reads.
            async with self._command_lock:
                self._pubsub = pubsub
                channels = list(self._sinks)
                if not channels:
                    self._wanted.clear()
                    return
                await pubsub.subscribe(*channels)
            log.info("push hub: connected, %d channels", len(channels))
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    self._handle(message)
        finally:
            self._pubsub = None
            self._confirmed.clear()
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if not isinstance(channel, str):
            return
        if kind == "message":
            data = message.get("data")
            if not isinstance(data, str):
                return
            for sink in tuple(self._sinks.get(channel, ())):
                try:
                    sink(data)
                except Exception:
                    log.exception("push hub: a sink of %s failed", channel)
                else:
                    self.delivered += 1
        elif kind == "subscribe" and channel in self._sinks:
            self._confirmed.add(channel)
            for waiter in self._waiters.pop(channel, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _reconcile(self, channel: str) -> None:
        """Bring ``channel``'s subscription in line with its sinks soon, together
        with every other channel changed meanwhile (one SUBSCRIBE and one
        UNSUBSCRIBE for a fleet of sockets opening or closing at once)."""
        self._pending.add(channel)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_pending())

    async def _flush_pending(self) -> None:
        async with self._command_lock:
            while self._pending:
                channels, self._pending = self._pending, set()
                pubsub = self._pubsub
                if pubsub is None:
                    return  # connecting subscribes every channel that has sinks
                # A detach and a quick re-attach may have crossed: send only what
                # the channels' sinks still call for.
                wanted = [c for c in channels if c in self._sinks and c not in self._confirmed]
                unwanted = [c for c in channels if c not in self._sinks]
                try:
                    if wanted:
                        await pubsub.subscribe(*wanted)
                    if unwanted:
                        await pubsub.unsubscribe(*unwanted)
                except Exception as exc:
                    # The reader sees the broken connection too, reconnects and
                    # resubscribes every channel that still has sinks.
                    log.warning(
                        "push hub: (un)subscribing %d channels failed (%s)", len(channels), exc
                    )
