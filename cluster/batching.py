"""Batching of calls to shards: fire-and-forget messages and asks.

:class:`Batcher` micro-batches fire-and-forget messages per destination
shard; :class:`CallBatcher` batches tells and asks together, each ask with
its own answer; :class:`Coalescer` (at the end) batches asks adaptively.

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
        #: Batches sent to each shard and not yet answered.
        self._unanswered: dict[int, int] = {}
        self._answered = asyncio.Event()
        self.sent_batches = 0
        self.failed_batches = 0

    async def wait_below(self, limit: int) -> None:
        """Return once no shard has more than ``limit`` batches unanswered: the
        sender's backpressure (a shard that falls behind would otherwise queue
        batches without bound, out of the sender's sight)."""
        while any(n > limit for n in self._unanswered.values()):
            self._answered.clear()
            await self._answered.wait()

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

    def send_buffered(self) -> None:
        """Send every buffer now, without its linger and without waiting for answers
        (a caller that has gathered its batch already: the linger would only add
        its wait)."""
        for shard in list(self._buffers):
            self._flush_shard(shard)

    async def flush(self) -> None:
        """Send every buffer and wait until every batch sent so far is answered."""
        self.send_buffered()
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    def _flush_shard(self, shard: int) -> asyncio.Task[object] | None:
        """Send ``shard``'s buffer. A batch that cannot even be sent (no shard, no
        Ray) is counted and logged here, never raised: the messages are best
        effort, and whoever buffered them (a gateway's location flush, a linger
        timer) must go on with the other shards and the next batch."""
        timer = self._timers.pop(shard, None)
        if timer is not None:
            timer.cancel()
        batch = self._buffers.pop(shard, None)
        if not batch:
            return None
        try:
            pending = self._send(shard, batch)  # submitted now, in fill order
        except Exception as exc:
            self.failed_batches += 1
            log.warning("a batch to shard %d could not be sent (%s)", shard, exc)
            return None
        self._unanswered[shard] = self._unanswered.get(shard, 0) + 1
        task = asyncio.get_running_loop().create_task(self._guarded(shard, len(batch), pending))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return task

    async def _guarded(self, shard: int, size: int, pending: Awaitable[object]) -> object:
        try:
            return await self._answer_of(shard, size, pending)
        finally:
            left = self._unanswered[shard] - 1
            if left:
                self._unanswered[shard] = left
            else:
                del self._unanswered[shard]
            self._answered.set()

    async def _answer_of(self, shard: int, size: int, pending: Awaitable[object]) -> object:
        try:
            result = await pending
            self.sent_batches += 1
            return result
        except Exception:
            self.failed_batches += 1
            log.warning("batch of %d messages to shard %d failed", size, shard, exc_info=True)
            raise


SendCalls = Callable[[int, Sequence[Item], Sequence[int]], Awaitable[Sequence[object]]]


class CallBatcher:
    """Tells and asks to each shard, gathered in one buffer in the order made
    and sent in one call.

    A buffer of tells only goes out ``linger`` after its first (or at
    ``max_batch``), like :class:`Batcher`'s; one holding an ask goes out at
    the next turn of the event loop, so an ask waits for no timer. Tells and
    asks share the buffer so they keep their order without cutting each
    other's batches short: a fleet of sockets reconnecting at once (a tell,
    an ask and a tell each) costs a few calls instead of three per socket,
    and each Ray call costs both sides about as much as a few hundred small
    messages.

    ``send(shard, items, asked)`` is called synchronously at the flush (so it
    numbers and submits its call in order) and returns an awaitable of the
    answers of the items at the indexes ``asked``, in order. A batch is not
    held for a later one (unlike :class:`Coalescer`), so a slow answer delays
    only the asks sent in the same call.
    """

    def __init__(self, send: SendCalls, *, linger: float, max_batch: int) -> None:
        self._send = send
        self._linger = linger
        self._max_batch = max_batch
        self._buffers: dict[int, list[Item]] = {}
        self._askers: dict[int, list[tuple[int, asyncio.Future[object]]]] = {}
        self._timers: dict[int, asyncio.Handle] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self.calls = 0
        self.failed_calls = 0

    def tell(self, shard: int, item: Item) -> None:
        """Fire-and-forget (a failed call is logged and counted)."""
        buffer = self._buffers.setdefault(shard, [])
        buffer.append(item)
        if len(buffer) >= self._max_batch:
            self.flush_shard(shard)
        elif shard not in self._timers:
            loop = asyncio.get_running_loop()
            self._timers[shard] = loop.call_later(self._linger, self.flush_shard, shard)

    def ask(self, shard: int, item: Item) -> asyncio.Future[object]:
        """The future of ``item``'s answer; it fails with what the call raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        buffer = self._buffers.setdefault(shard, [])
        buffer.append(item)
        askers = self._askers.setdefault(shard, [])
        askers.append((len(buffer) - 1, future))
        if len(buffer) >= self._max_batch:
            self.flush_shard(shard)
        elif len(askers) == 1:
            timer = self._timers.pop(shard, None)
            if timer is not None:
                timer.cancel()
            self._timers[shard] = loop.call_soon(self.flush_shard, shard)
        return future

    def flush_shard(self, shard: int) -> None:
        """Send what is gathered for ``shard`` now (before a call that must come after it)."""
        timer = self._timers.pop(shard, None)
        if timer is not None:
            timer.cancel()
        batch = self._buffers.pop(shard, None)
        askers = self._askers.pop(shard, [])
        if not batch:
            return
        self.calls += 1
        try:
            pending = self._send(shard, batch, [index for index, _future in askers])
        except Exception as exc:
            self._failed(shard, len(batch), askers, exc)
            return
        task = asyncio.get_running_loop().create_task(
            self._answer(shard, len(batch), askers, pending)
        )
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def flush(self) -> None:
        """Send every buffer and wait until every call sent so far is answered."""
        for shard in list(self._buffers):
            self.flush_shard(shard)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _answer(
        self,
        shard: int,
        size: int,
        askers: list[tuple[int, asyncio.Future[object]]],
        pending: Awaitable[Sequence[object]],
    ) -> None:
        try:
            answers = await pending
        except Exception as exc:
            self._failed(shard, size, askers, exc)
            return
        for (_index, future), answer in zip(askers, answers, strict=True):
            if not future.done():  # an asker that gave up cancelled it
                future.set_result(answer)

    def _failed(
        self,
        shard: int,
        size: int,
        askers: list[tuple[int, asyncio.Future[object]]],
        exc: Exception,
    ) -> None:
        self.failed_calls += 1
        if not askers:  # else the askers hear of it
            log.warning("batch of %d messages to shard %d failed", size, shard, exc_info=exc)
        for _index, future in askers:
            if not future.done():
                future.set_exception(exc)


class Coalescer:
    """Adaptive batching of asks to one destination: no waiting when idle.

    A request is sent at once when no call to its destination is in flight;
    otherwise it waits for that call to return and goes with everything else
    queued meanwhile, in one call. So an idle system pays no linger, and a
    busy one sends fewer, larger calls (each Ray call costs about as much as
    a few hundred small messages).

    ``send(destination, items)`` must return one answer per item, in order.
    """

    def __init__(
        self, send: Callable[[int, Sequence[Any]], Awaitable[Sequence[object]]], max_batch: int
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._queues: dict[int, list[tuple[Sequence[Any], asyncio.Future[Sequence[object]]]]] = {}
        self._pumps: dict[int, asyncio.Task[None]] = {}
        self.calls = 0

    async def ask(self, destination: int, items: Sequence[Any]) -> Sequence[object]:
        """The answers to ``items`` (sent alone or with others); raises what the call raised."""
        future: asyncio.Future[Sequence[object]] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(destination, []).append((items, future))
        if destination not in self._pumps:
            self._pumps[destination] = asyncio.get_running_loop().create_task(
                self._pump(destination)
            )
        return await future

    async def _pump(self, destination: int) -> None:
        try:
            while queue := self._queues.get(destination):
                taken: list[tuple[Sequence[Any], asyncio.Future[Sequence[object]]]] = []
                size = 0
                while queue and (not taken or size + len(queue[0][0]) <= self._max_batch):
                    request = queue.pop(0)
                    taken.append(request)
                    size += len(request[0])
                batch = [item for items, _future in taken for item in items]
                self.calls += 1
                try:
                    answers = await self._send(destination, batch)
                except BaseException as exc:  # cancelled too: no asker is left waiting
                    for _items, future in taken:
                        if future.done():
                            continue
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        else:
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                start = 0
                for items, future in taken:
                    if not future.done():
                        future.set_result(answers[start : start + len(items)])
                    start += len(items)
        finally:
            del self._pumps[destination]
            for _items, future in self._queues.pop(destination, []):  # only when cancelled
                if not future.done():
                    future.set_exception(RuntimeError("coalescer stopped"))
