"""persistence.grouping.Grouped: the pump group commit, group load and group push share."""

from __future__ import annotations

import asyncio

import pytest

from persistence.grouping import Grouped, Waiting, at_most


class FakeOwner:
    """A fake owner: records each group's items and answers each call twice its item."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def carry_out(self, group: list[Waiting[int, int]]) -> None:
        self.groups.append([item for item, _future in group])
        await self.gate.wait()
        for item, future in group:
            future.set_result(item * 2)


async def test_calls_made_in_one_turn_go_together_and_each_gets_its_answer() -> None:
    owner = FakeOwner()
    grouped = Grouped[int, int](owner.carry_out, take=at_most(10), stopped="fake stopped")
    assert await asyncio.gather(*(grouped.call(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert owner.groups == [[0, 1, 2, 3, 4]]


async def test_calls_behind_one_in_flight_wait_and_go_in_groups_of_take() -> None:
    owner = FakeOwner()
    owner.gate.clear()
    grouped = Grouped[int, int](owner.carry_out, take=at_most(2), stopped="fake stopped")
    first = asyncio.create_task(grouped.call(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    rest = [asyncio.create_task(grouped.call(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    owner.gate.set()
    assert [await first, *[await task for task in rest]] == [0, 2, 4, 6]
    assert owner.groups == [[0], [1, 2], [3]]


async def test_a_take_of_none_still_takes_the_oldest_call() -> None:
    owner = FakeOwner()
    grouped = Grouped[int, int](owner.carry_out, take=lambda waiting: 0, stopped="fake stopped")
    assert await asyncio.gather(grouped.call(1), grouped.call(2)) == [2, 4]
    assert owner.groups == [[1], [2]]


async def test_calls_left_when_the_pump_stops_fail_with_the_owners_words() -> None:
    owner = FakeOwner()
    owner.gate.clear()
    grouped = Grouped[int, int](owner.carry_out, take=at_most(1), stopped="fake stopped")
    calls = [asyncio.create_task(grouped.call(n)) for n in (1, 2)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert grouped.pump is not None
    grouped.pump.cancel()
    for call in calls:
        with pytest.raises(ConnectionError, match="fake stopped"):
            await call


def test_a_group_takes_at_least_one_call() -> None:
    with pytest.raises(ValueError, match="at least one"):
        at_most(0)
