"""cluster.batching.CallBatcher: tells and asks to a shard share one buffer.

``send`` is a fake (a recording function standing in for the Ray call); the
batching, ordering and error handling are the logic under test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cluster.batching import CallBatcher, Item

#: A linger no test waits out: a batch that goes out did so for another reason.
LONG_LINGER = 30.0


def item(n: int) -> Item:
    return ("agent", f"a{n}", n)


class FakeSend:
    """Records each call when made; answers each asked item with ``("ok", n)``
    once ``release`` is set, or raises ``fail``."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[Item], list[int]]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    def __call__(
        self, shard: int, batch: Sequence[Item], asked: Sequence[int]
    ) -> asyncio.Future[Sequence[object]]:
        self.calls.append((shard, list(batch), list(asked)))
        return asyncio.ensure_future(self._answer(batch, asked))

    async def _answer(self, batch: Sequence[Item], asked: Sequence[int]) -> Sequence[object]:
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [("ok", batch[i][2]) for i in asked]


async def test_asks_of_one_turn_go_in_one_call_per_shard_and_each_gets_its_answer() -> None:
    fake = FakeSend()
    calls = CallBatcher(fake, linger=LONG_LINGER, max_batch=100)
    futures = [calls.ask(n % 2, item(n)) for n in range(5)]
    assert fake.calls == []  # gathered until the loop turns
    await asyncio.sleep(0)
    assert fake.calls == [
        (0, [item(0), item(2), item(4)], [0, 1, 2]),
        (1, [item(1), item(3)], [0, 1]),
    ]
    fake.release.set()
    assert await asyncio.gather(*futures) == [("ok", n) for n in range(5)]
    assert calls.calls == 2


async def test_tells_and_asks_keep_the_order_they_were_made_in_in_one_call() -> None:
    fake = FakeSend()
    calls = CallBatcher(fake, linger=LONG_LINGER, max_batch=100)
    calls.tell(0, item(1))
    asked = calls.ask(0, item(2))
    calls.tell(0, item(3))
    await asyncio.sleep(0)  # an ask does not wait for the tells' linger
    assert fake.calls == [(0, [item(1), item(2), item(3)], [1])]
    fake.release.set()
    assert await asked == ("ok", 2)


async def test_tells_alone_wait_for_the_linger_or_a_flush() -> None:
    fake = FakeSend()
    calls = CallBatcher(fake, linger=LONG_LINGER, max_batch=100)
    calls.tell(0, item(1))
    await asyncio.sleep(0)
    assert fake.calls == []
    calls.flush_shard(0)
    assert fake.calls == [(0, [item(1)], [])]
    calls.flush_shard(0)  # nothing left: no empty call
    assert len(fake.calls) == 1
    fake.release.set()
    await calls.flush()


async def test_a_full_batch_goes_at_once() -> None:
    fake = FakeSend()
    calls = CallBatcher(fake, linger=LONG_LINGER, max_batch=2)
    calls.tell(0, item(1))
    calls.ask(0, item(2))
    assert fake.calls == [(0, [item(1), item(2)], [1])]
    calls.ask(0, item(3))
    await asyncio.sleep(0)
    assert fake.calls[1] == (0, [item(3)], [0])
    fake.release.set()
    await calls.flush()


async def test_a_failed_call_fails_every_ask_in_it_and_no_other() -> None:
    fake = FakeSend()
    calls = CallBatcher(fake, linger=LONG_LINGER, max_batch=100)
    failing = [calls.ask(0, item(1)), calls.ask(0, item(2))]
    await asyncio.sleep(0)
    fake.fail = ConnectionError("shard gone")
    fake.release.set()
    for future in failing:
        with pytest.raises(ConnectionError):
            await future
    assert calls.failed_calls == 1
    fake.fail = None
    assert await calls.ask(0, item(3)) == ("ok", 3)


async def test_an_asker_that_gave_up_does_not_break_the_others() -> None:
    fake = FakeSend()
    calls = CallBatcher(fake, linger=LONG_LINGER, max_batch=100)
    gave_up = calls.ask(0, item(1))
    kept = calls.ask(0, item(2))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gave_up, 0.01)
    fake.release.set()
    assert await kept == ("ok", 2)


async def test_send_raising_at_once_fails_the_asks() -> None:
    def broken(
        shard: int, batch: Sequence[Item], asked: Sequence[int]
    ) -> asyncio.Future[Sequence[object]]:
        raise RuntimeError("no handle")

    calls = CallBatcher(broken, linger=LONG_LINGER, max_batch=100)
    future = calls.ask(0, item(1))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError):
        await future
    assert calls.failed_calls == 1
