"""The adaptive ask batching of cluster.batching.Coalescer, with a fake destination."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from cluster.batching import Coalescer


class FakeDestination:
    """Answers each item with ``(destination, item)``; a call waits until released."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[int]]] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def send(self, destination: int, items: Sequence[int]) -> list[object]:
        self.calls.append((destination, list(items)))
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [(destination, item) for item in items]


async def test_an_idle_destination_is_called_at_once() -> None:
    fake = FakeDestination()
    fake.release.set()
    coalescer = Coalescer(fake.send, max_batch=100)
    assert await coalescer.ask(1, [10, 11]) == [(1, 10), (1, 11)]
    assert fake.calls == [(1, [10, 11])]


async def test_asks_made_while_a_call_is_in_flight_share_the_next_call() -> None:
    fake = FakeDestination()
    coalescer = Coalescer(fake.send, max_batch=100)
    first = asyncio.create_task(coalescer.ask(0, [1]))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(coalescer.ask(0, [n, n + 100])) for n in (2, 3, 4)]
    other = asyncio.create_task(coalescer.ask(5, [9]))  # another destination is not held up
    await asyncio.sleep(0.01)
    assert fake.calls == [(0, [1]), (5, [9])]
    fake.release.set()
    assert await first == [(0, 1)]
    assert [await w for w in waiting] == [[(0, n), (0, n + 100)] for n in (2, 3, 4)]
    assert await other == [(5, 9)]
    assert fake.calls == [(0, [1]), (5, [9]), (0, [2, 102, 3, 103, 4, 104])]
    assert coalescer.calls == 3


async def test_a_batch_never_exceeds_max_batch_unless_one_ask_does() -> None:
    fake = FakeDestination()
    coalescer = Coalescer(fake.send, max_batch=3)
    first = asyncio.create_task(coalescer.ask(0, [0]))
    await asyncio.sleep(0)
    rest = [
        asyncio.create_task(coalescer.ask(0, items)) for items in ([1, 2], [3, 4], [5, 6, 7, 8])
    ]
    await asyncio.sleep(0)
    fake.release.set()
    await asyncio.gather(first, *rest)
    assert [items for _, items in fake.calls] == [[0], [1, 2], [3, 4], [5, 6, 7, 8]]


async def test_a_failed_call_fails_every_ask_it_carried_and_the_next_call_goes_out() -> None:
    fake = FakeDestination()
    coalescer = Coalescer(fake.send, max_batch=100)
    fake.fail = ConnectionError("peer away")
    first = asyncio.create_task(coalescer.ask(0, [1]))
    await asyncio.sleep(0)
    second = asyncio.create_task(coalescer.ask(0, [2]))
    fake.release.set()
    with pytest.raises(ConnectionError):
        await first
    with pytest.raises(ConnectionError):
        await second
    fake.fail = None
    assert await coalescer.ask(0, [3]) == [(0, 3)]


async def test_asks_in_flight_when_the_coalescer_stops_are_cancelled_not_left_waiting() -> None:
    fake = FakeDestination()
    coalescer = Coalescer(fake.send, max_batch=100)
    in_flight = asyncio.create_task(coalescer.ask(0, [1]))
    await asyncio.sleep(0)
    queued = asyncio.create_task(coalescer.ask(0, [2]))
    await asyncio.sleep(0)
    coalescer._pumps[0].cancel()  # e.g. the shard shutting down
    for task in (in_flight, queued):
        with pytest.raises((asyncio.CancelledError, RuntimeError)):
            await asyncio.wait_for(task, 1)
