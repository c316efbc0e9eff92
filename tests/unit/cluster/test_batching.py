"""The per-shard micro-batching of fire-and-forget messages by cluster.batching.Batcher.

A batch goes out when ``max_batch`` messages are buffered for a shard or
``linger`` after its first message; ``send`` is called synchronously at the
flush (so batches, and a call made right after ``flush_shard``, keep their
order); ``send_buffered`` sends everything at once, and ``flush`` also waits
for every batch; answered and failed batches are counted. (Coalescer has its
own tests in test_coalescer.py.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from cluster.batching import Batcher, Item

#: A linger no test waits out: a batch that goes out did so for another reason.
LONG_LINGER = 30.0
SHORT_LINGER = 0.01


def item(n: int) -> Item:
    return ("subject", f"s{n}", n)


class FakeSend:
    """A recording ``send``: notes each batch when CALLED (as the real client
    numbers and submits it then); the call's answer waits until ``release``.

    Answers ``(shard, batch size)``, or raises ``fail`` as it was when the
    batch was sent.
    """

    def __init__(self, log: list[object] | None = None) -> None:
        self.calls: list[tuple[int, list[Item]]] = []
        self.log = log if log is not None else []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    def __call__(self, shard: int, batch: Sequence[Item]) -> asyncio.Future[object]:
        self.calls.append((shard, list(batch)))
        self.log.append(("batch", shard))
        return asyncio.ensure_future(self._answer(shard, len(batch), self.fail))

    async def _answer(self, shard: int, size: int, fail: Exception | None) -> object:
        await self.release.wait()
        if fail is not None:
            raise fail
        return (shard, size)

    def sent(self, shard: int) -> list[list[object]]:
        """The messages' numbers of each batch sent to ``shard``, in sending order."""
        return [[msg for _kind, _id, msg in batch] for s, batch in self.calls if s == shard]


class FakeTimers:
    """Wraps the running loop's ``call_later`` (still scheduling for real) to
    record the linger timers a Batcher starts, so a test can see how many were
    started, with which delay, and whether each was cancelled."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started: list[tuple[float, asyncio.TimerHandle]] = []
        loop = asyncio.get_running_loop()
        real_call_later = loop.call_later

        def call_later(delay: float, callback: Callable[..., object], *args: Any) -> Any:
            handle = real_call_later(delay, callback, *args)
            if isinstance(getattr(callback, "__self__", None), Batcher):
                self.started.append((delay, handle))
            return handle

        monkeypatch.setattr(loop, "call_later", call_later)


@pytest.fixture
async def timers(monkeypatch: pytest.MonkeyPatch) -> FakeTimers:
    return FakeTimers(monkeypatch)


async def settle() -> None:
    """Let every callback that is ready run (a few loop turns), without time passing."""
    for _ in range(5):
        await asyncio.sleep(0)


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``condition`` holds (a timer has fired); fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            pytest.fail("condition never held")
        await asyncio.sleep(0.005)


async def test_a_full_buffer_is_sent_in_the_add_that_fills_it() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=3)
    batcher.add(0, item(1))
    batcher.add(0, item(2))
    assert fake.calls == []
    batcher.add(0, item(3))
    # No await in between: send was called inside add, with the items in fill order.
    assert fake.sent(0) == [[1, 2, 3]]
    await batcher.flush()
    assert batcher.sent_batches == 1
    assert batcher.failed_batches == 0


async def test_a_partial_buffer_is_held_until_linger() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=10)
    batcher.add(0, item(1))
    batcher.add(0, item(2))
    await asyncio.sleep(0.02)  # far less than linger: nothing may go out yet
    assert fake.calls == []
    await batcher.flush()  # and leaves no timer behind on the shared loop
    assert fake.sent(0) == [[1, 2]]


async def test_a_partial_buffer_is_sent_once_linger_has_passed() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=SHORT_LINGER, max_batch=10)
    for n in (1, 2, 3):
        batcher.add(0, item(n))
    await eventually(lambda: batcher.sent_batches == 1)
    assert fake.sent(0) == [[1, 2, 3]]  # one call, in fill order


async def test_batches_of_a_shard_go_out_in_fill_order() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=2)
    for n in range(1, 6):
        batcher.add(0, item(n))
    assert fake.sent(0) == [[1, 2], [3, 4]]
    await batcher.flush()
    assert fake.sent(0) == [[1, 2], [3, 4], [5]]
    assert batcher.sent_batches == 3


async def test_shards_are_buffered_and_counted_apart() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=2)
    batcher.add(0, item(1))
    batcher.add(1, item(2))  # shard 1's message does not fill shard 0's batch
    assert fake.calls == []
    batcher.add(0, item(3))
    assert fake.calls == [(0, [item(1), item(3)])]
    await batcher.flush()
    assert fake.calls == [(0, [item(1), item(3)]), (1, [item(2)])]


async def test_flush_shard_sends_before_a_call_made_right_after_it() -> None:
    # An ask flushes its shard's buffered tells first, so they reach the shard
    # (numbered) before it: send must be called inside flush_shard, not later.
    log: list[object] = []
    fake = FakeSend(log)
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=10)
    batcher.add(0, item(1))
    batcher.add(1, item(2))
    task = batcher.flush_shard(0)
    log.append("ask")
    assert log == [("batch", 0), "ask"]
    assert fake.calls == [(0, [item(1)])]  # only that shard
    assert task is not None
    fake.release.set()
    assert await task == (0, 1)  # the task answers what send answered
    await batcher.flush()


async def test_flush_shard_of_an_empty_shard_sends_nothing() -> None:
    fake = FakeSend()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=10)
    assert batcher.flush_shard(3) is None
    batcher.add(3, item(1))
    fake.release.set()
    assert batcher.flush_shard(3) is not None
    assert batcher.flush_shard(3) is None  # already sent: no empty batch
    await batcher.flush()
    assert fake.sent(3) == [[1]]


async def test_a_message_after_a_flush_shard_gets_its_own_linger() -> None:
    # flush_shard must drop the shard's timer, or a later message would find
    # a (cancelled) timer, start none, and stay buffered forever.
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=SHORT_LINGER, max_batch=10)
    batcher.add(0, item(1))
    batcher.flush_shard(0)
    batcher.add(0, item(2))
    await eventually(lambda: len(fake.calls) == 2)
    assert fake.sent(0) == [[1], [2]]


async def test_a_message_after_a_full_batch_gets_its_own_linger() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=SHORT_LINGER, max_batch=2)
    batcher.add(0, item(1))  # starts the linger timer
    batcher.add(0, item(2))  # full: sent, and the timer must go with it
    batcher.add(0, item(3))
    await eventually(lambda: len(fake.calls) == 2)
    assert fake.sent(0) == [[1, 2], [3]]


async def test_one_linger_timer_per_batch_started_by_its_first_message(
    timers: FakeTimers,
) -> None:
    # "linger after the first message": later messages must not push it back.
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=10)
    for n in range(3):
        batcher.add(0, item(n))
    batcher.add(1, item(9))  # another shard has a timer of its own
    assert [delay for delay, _handle in timers.started] == [LONG_LINGER, LONG_LINGER]
    await batcher.flush()
    # flush sent both buffers, so neither timer may fire later.
    assert all(handle.cancelled() for _delay, handle in timers.started)


async def test_a_batch_sent_early_cancels_its_linger_timer(timers: FakeTimers) -> None:
    # A stale timer left running would later cut the next batch's linger short.
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=2)
    batcher.add(0, item(1))
    batcher.add(0, item(2))  # full
    batcher.add(0, item(3))
    batcher.flush_shard(0)
    batcher.add(0, item(4))
    assert len(timers.started) == 3  # for [1, 2], [3] and [4]
    first, second, third = (handle for _delay, handle in timers.started)
    assert first.cancelled()  # by the full batch
    assert second.cancelled()  # by flush_shard
    assert not third.cancelled()  # [4] is still lingering
    await batcher.flush()
    assert fake.sent(0) == [[1, 2], [3], [4]]


async def test_flush_sends_every_buffer_and_waits_for_every_batch() -> None:
    fake = FakeSend()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=2)
    batcher.add(0, item(1))
    batcher.add(0, item(2))  # full: already sent, answer pending
    batcher.add(1, item(3))  # still buffered
    flushing = asyncio.ensure_future(batcher.flush())
    await settle()
    assert fake.calls == [(0, [item(1), item(2)]), (1, [item(3)])]
    assert not flushing.done()  # neither batch is answered yet
    fake.release.set()
    await asyncio.wait_for(flushing, 5)
    assert batcher.sent_batches == 2


async def test_send_buffered_sends_every_buffer_at_once_without_waiting(
    timers: FakeTimers,
) -> None:
    # The gateway's location ingest has gathered its batch over a linger of its
    # own: the client's linger would only add its wait to every fix.
    fake = FakeSend()  # never released: send_buffered must not wait for answers
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=10)
    batcher.add(0, item(1))
    batcher.add(1, item(2))
    batcher.add(0, item(3))
    batcher.send_buffered()
    # Sent inside the call, each shard's messages in fill order, and no linger
    # timer is left to cut the next batch's linger short.
    assert fake.calls == [(0, [item(1), item(3)]), (1, [item(2)])]
    assert [handle.cancelled() for _delay, handle in timers.started] == [True, True]
    batcher.send_buffered()  # nothing buffered: nothing sent
    assert len(fake.calls) == 2
    fake.release.set()
    await batcher.flush()
    assert batcher.sent_batches == 2


async def test_a_failed_batch_is_counted_and_does_not_fail_flush() -> None:
    fake = FakeSend()
    fake.release.set()
    batcher = Batcher(fake, linger=LONG_LINGER, max_batch=10)
    batcher.add(0, item(1))
    batcher.add(1, item(2))
    batcher.add(2, item(3))
    fake.fail = ConnectionError("shard away")
    failing = batcher.flush_shard(0)
    batcher.flush_shard(1)
    fake.fail = None
    await batcher.flush()  # fire-and-forget: a failure is counted, not raised
    assert batcher.failed_batches == 2
    assert batcher.sent_batches == 1
    assert failing is not None
    with pytest.raises(ConnectionError):
        await failing  # who flushed a shard explicitly can still see it failed


async def test_a_failed_batch_sent_by_the_linger_timer_is_counted() -> None:
    fake = FakeSend()
    fake.release.set()
    fake.fail = ConnectionError("shard away")
    batcher = Batcher(fake, linger=SHORT_LINGER, max_batch=10)
    batcher.add(0, item(1))
    await eventually(lambda: batcher.failed_batches == 1)
    assert batcher.sent_batches == 0
    fake.fail = None
    batcher.add(0, item(2))  # the shard is usable again
    await batcher.flush()
    assert batcher.sent_batches == 1
    assert fake.sent(0) == [[1], [2]]


async def test_wait_below_holds_the_sender_while_a_shard_has_too_many_batches_unanswered() -> None:
    send = FakeSend()
    batcher = Batcher(send, linger=LONG_LINGER, max_batch=1)
    for n in range(3):
        batcher.add(0, item(n))  # three batches to shard 0, none answered yet
    batcher.add(1, item(9))
    waiting = asyncio.create_task(batcher.wait_below(2))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # shard 0 has 3 > 2
    await batcher.wait_below(3)  # at or under the limit: returns at once
    send.release.set()
    await asyncio.wait_for(waiting, 1)
    await batcher.flush()
    await batcher.wait_below(0)  # nothing unanswered anywhere


async def test_a_failed_batch_is_no_longer_unanswered() -> None:
    send = FakeSend()
    send.fail = RuntimeError("shard away")
    batcher = Batcher(send, linger=LONG_LINGER, max_batch=1)
    batcher.add(0, item(1))
    batcher.add(0, item(2))
    send.release.set()
    await asyncio.wait_for(batcher.wait_below(0), 1)
    assert batcher.failed_batches == 2


async def test_a_lingered_batch_that_cannot_be_sent_is_counted_not_raised() -> None:
    def unsendable(shard: int, batch: Sequence[Item]) -> asyncio.Future[object]:
        raise RuntimeError("no shard to send to")

    batcher = Batcher(unsendable, linger=SHORT_LINGER, max_batch=100)
    batcher.add(0, item(1))
    await asyncio.sleep(SHORT_LINGER * 5)  # the timer fired; nothing escaped to the loop
    assert batcher.failed_batches == 1
    batcher.add(0, item(2))  # the shard's buffer starts again
    await asyncio.sleep(SHORT_LINGER * 5)
    assert batcher.failed_batches == 2


async def test_a_batch_that_cannot_be_sent_at_once_is_counted_not_raised() -> None:
    """Sent by ``send_buffered`` or by the ``add`` that fills it, as by the timer:
    its caller (a gateway's location flush) goes on to the next batch."""

    def unsendable(shard: int, batch: Sequence[Item]) -> asyncio.Future[object]:
        raise RuntimeError("no shard to send to")

    batcher = Batcher(unsendable, linger=LONG_LINGER, max_batch=2)
    batcher.add(0, item(1))
    batcher.add(1, item(2))
    batcher.send_buffered()
    assert batcher.failed_batches == 2
    batcher.add(0, item(3))
    batcher.add(0, item(4))  # fills the batch: sent, and failed, here
    assert batcher.failed_batches == 3
    assert batcher.flush_shard(0) is None  # nothing left to send
    await batcher.flush()
    assert batcher.sent_batches == 0
