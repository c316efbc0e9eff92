"""Micro-batching of fire-and-forget messages, per destination shard.

Location updates arrive tens of thousands a second; one Ray call each would
cost more than the work. A :class:`Batcher` collects messages per shard and
sends them in one call when ``max_batch`` is reached or ``linger`` has passed
since the first one, whichever comes first. Order is kept per shard: ``send``
is CALLED synchronously when a batch is flushed (it must number and submit
the call before returning its awaitable), so batches, and any call made
right after :meth:`Batcher.flush_shard`, are submitted in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

Item = tuple[Any, str, object]
SendBatch = Callable[[int, Sequence[Item]], Awaitable[object]]


class Batcher:
    def __init__(self, send: SendBatch, *, linger: float, max_batch: int) -> None:
        self._send = send
        self._linger = linger
        self._max_batch = max_batch
        self._buffers: dict[int, list[Item]] = {}
        self._timers: dict[int, asyncio.TimerHandle] = {}
        self._in_flight: set[asyncio.Task[object]] = set()
        self.sent_batches = 0
        self.failed_batches = 0

    def add(self, shard: int, item: Item) -> None:
        buffer = self._buffers.setdefault(shard, [])
        buffer.append(item)
        if len(buffer) >= self._max_batch:
            self._flush_shard(shard)
        elif shard not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[shard] = loop.call_later(self._linger, self._flush_shard, shard)

    def flush_shard(self, shard: int) -> asyncio.Task[object] | None:
        """Send what is buffered for ``shard`` now (before a call that must come after it)."""
        return self._flush_shard(shard)

    async def flush(self) -> None:
        """Send every buffer and wait until every batch sent so far is answered."""
        for shard in list(self._buffers):
            self._flush_shard(shard)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _flush_shard(self, shard: int) -> asyncio.Task[object] | None:
        timer = self._timers.pop(shard, None)
        if timer is not None:
            timer.cancel()
        batch = self._buffers.pop(shard, None)
        if not batch:
            return None
        pending = self._send(shard, batch)  # submitted now, in fill order
        task = asyncio.get_running_loop().create_task(self._guarded(shard, len(batch), pending))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def _guarded(self, shard: int, size: int, pending: Awaitable[object]) -> object:
        try:
            result = await pending
            self.sent_batches += 1
            return result
        except Exception:
            self.failed_batches += 1
            log.warning("batch of %d messages to shard %d failed", size, shard, exc_info=True)
            raise
