"""persistence.pushes.GroupPush: pushes queued behind a publish share its next call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import uuid4

import pytest

from actors.effects import Audience, FrameType, Push
from persistence.pushes import GroupPush


def push(n: int) -> Push:
    return Push(Audience.user(uuid4()), FrameType.GEOFENCE_ALERT, {"n": n})


class FakeSink:
    """A fake ``PushSink``: records each call's pushes (their ``n``); a call
    answers once ``release`` is set, each push reaching ``n`` listeners, or
    raises ``fail`` as it was when the call was made."""

    def __init__(self) -> None:
        self.calls: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail: Exception | None = None
        self.presence_asked = 0

    async def push(self, pushes: Sequence[Push]) -> list[int]:
        numbers = [int(p.data["n"]) for p in pushes]
        self.calls.append(numbers)
        fail = self.fail
        await self.release.wait()
        if fail is not None:
            raise fail
        return numbers

    async def ask_presence(self) -> None:
        self.presence_asked += 1


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def held_publish(
    first: int = 1, **options: int
) -> tuple[FakeSink, GroupPush, asyncio.Task[list[int]]]:
    """A group whose first publish (of push ``first``) is in flight, held by the
    fake sink until its ``release`` is set: calls made now queue behind it."""
    sink = FakeSink()
    sink.release.clear()
    group = GroupPush(sink, **options)
    publishing = asyncio.create_task(group.push([push(first)]))
    await settle()
    return sink, group, publishing


async def test_a_lone_push_is_published_alone_with_its_counts() -> None:
    sink = FakeSink()
    group = GroupPush(sink)
    assert await group.push([push(1), push(2)]) == [1, 2]
    assert sink.calls == [[1, 2]]
    assert await group.push([]) == []  # nothing to publish: no call
    assert group.calls == 1


async def test_pushes_that_queue_behind_a_publish_go_together_each_caller_its_counts() -> None:
    sink, group, first = await held_publish()  # 1 is being published; the rest queue behind it
    rest = [asyncio.create_task(group.push([push(n), push(n + 100)])) for n in (2, 3, 4)]
    await settle()
    assert sink.calls == [[1]]
    sink.release.set()
    assert await first == [1]
    assert [await task for task in rest] == [[2, 102], [3, 103], [4, 104]]
    # One call for all three callers, their pushes in the order they came.
    assert sink.calls == [[1], [2, 102, 3, 103, 4, 104]]
    assert (group.calls, group.carried) == (2, 4)


async def test_a_call_carries_at_most_max_pushes_and_never_splits_a_caller() -> None:
    sink, group, first = await held_publish(0, max_pushes=3)
    queued = [
        asyncio.create_task(group.push([push(n) for n in numbers]))
        for numbers in ([1, 2], [3, 4], [5, 6, 7, 8], [9])
    ]
    await settle()
    sink.release.set()
    await first
    results = [await task for task in queued]
    assert results == [[1, 2], [3, 4], [5, 6, 7, 8], [9]]
    # [3, 4] would overfill [1, 2]'s call; a caller over the limit goes alone.
    assert sink.calls == [[0], [1, 2], [3, 4], [5, 6, 7, 8], [9]]


async def test_a_failed_call_fails_each_caller_it_carried_and_the_next_call_goes_on() -> None:
    sink, group, first = await held_publish()
    sink.fail = ConnectionError("fake redis down")
    carried = [asyncio.create_task(group.push([push(n)])) for n in (2, 3)]
    await settle()
    sink.release.set()
    assert await first == [1]  # its call was made before the failure
    for task in carried:
        with pytest.raises(ConnectionError, match="fake redis down"):
            await task
    sink.fail = None
    assert await group.push([push(4)]) == [4]


async def test_a_cancelled_caller_leaves_the_others_their_counts() -> None:
    sink, group, first = await held_publish()
    gone = asyncio.create_task(group.push([push(2)]))
    kept = asyncio.create_task(group.push([push(3)]))
    await settle()
    gone.cancel()
    sink.release.set()
    assert await first == [1]
    assert await kept == [3]
    assert gone.cancelled()
    # The cancelled caller's push was published anyway (at-most-once, not unsaid).
    assert sink.calls == [[1], [2, 3]]


async def test_callers_waiting_when_the_publisher_stops_are_not_left_waiting() -> None:
    _sink, group, first = await held_publish()
    queued = asyncio.create_task(group.push([push(2)]))
    await settle()
    publisher = group._calls.pump
    assert publisher is not None
    publisher.cancel()
    with pytest.raises(ConnectionError, match="pushes stopped"):
        await first
    with pytest.raises(ConnectionError, match="pushes stopped"):
        await queued


async def test_presence_is_asked_of_the_wrapped_sink() -> None:
    sink = FakeSink()
    await GroupPush(sink).ask_presence()
    assert sink.presence_asked == 1


def test_a_group_must_carry_at_least_one_push() -> None:
    with pytest.raises(ValueError, match="max_pushes"):
        GroupPush(FakeSink(), max_pushes=0)
