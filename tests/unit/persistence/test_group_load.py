"""persistence.stores.group_load: loads asked together are read in one query per kind."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from actors.effects import EntityKind, Persist
from actors.ports import CommitBatch
from persistence.stores.group_load import GroupLoad
from tests.fakes.entities import FakeEntityStore

AGENT, SUBJECT = EntityKind.AGENT, EntityKind.SUBJECT


class FakeCountingStore(FakeEntityStore):
    """A fake store whose many-snapshot reads take a loop turn, are recorded, and
    fail while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: list[tuple[EntityKind, list[str]]] = []
        self.failing = False

    async def load_snapshots(
        self, kind: EntityKind, entity_ids: Sequence[str]
    ) -> Mapping[str, Mapping[str, Any]]:
        self.reads.append((kind, list(entity_ids)))
        await asyncio.sleep(0.01)
        if self.failing:
            raise ConnectionError("fake store: read failed")
        return await super().load_snapshots(kind, entity_ids)


async def stored(store: FakeEntityStore, kind: EntityKind, *ids: str) -> None:
    await store.commit(CommitBatch(snapshots=[Persist(kind, i, 1, {"id": i}) for i in ids]))


async def test_loads_asked_together_are_one_query_per_kind_each_with_its_own_answer() -> None:
    store = FakeCountingStore()
    await stored(store, SUBJECT, "user:a", "user:b")
    await stored(store, AGENT, "a1")
    group = GroupLoad(store)
    asked = [(SUBJECT, "user:a"), (AGENT, "a1"), (SUBJECT, "user:new"), (SUBJECT, "user:b")]
    answers = await asyncio.gather(*(group.load_snapshot(k, i) for k, i in asked))
    assert answers == [{"id": "user:a"}, {"id": "a1"}, None, {"id": "user:b"}]
    assert store.reads == [(SUBJECT, ["user:a", "user:new", "user:b"]), (AGENT, ["a1"])]
    assert (group.queries, group.loads) == (2, 4)


async def test_loads_asked_during_a_read_wait_and_go_together_within_max_group() -> None:
    store = FakeCountingStore()
    group = GroupLoad(store, max_group=3)
    first = asyncio.ensure_future(group.load_snapshot(SUBJECT, "user:0"))
    await asyncio.sleep(0.001)  # the first read is in flight
    later = [group.load_snapshot(SUBJECT, f"user:{n}") for n in range(1, 6)]
    assert await asyncio.gather(first, *later) == [None] * 6
    assert [ids for _kind, ids in store.reads] == [
        ["user:0"],
        ["user:1", "user:2", "user:3"],
        ["user:4", "user:5"],
    ]


async def test_a_failed_read_fails_its_own_loads_only_and_the_next_reads_again() -> None:
    store = FakeCountingStore()
    await stored(store, SUBJECT, "user:a")
    group = GroupLoad(store)
    store.failing = True
    failed = await asyncio.gather(
        group.load_snapshot(SUBJECT, "user:a"),
        group.load_snapshot(SUBJECT, "user:b"),
        return_exceptions=True,
    )
    assert [type(e) for e in failed] == [ConnectionError, ConnectionError]
    store.failing = False
    assert await group.load_snapshot(SUBJECT, "user:a") == {"id": "user:a"}
    with pytest.raises(ValueError, match="max_group"):
        GroupLoad(store, max_group=0)
