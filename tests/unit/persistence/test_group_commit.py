"""persistence.outbox.group_commit: queued commits share a statement; failures stay their own."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest

from actors.effects import EntityKind, Persist
from actors.ports import CommitBatch
from persistence.outbox.group_commit import GroupCommit, merged
from tests.fakes.entities import FakeEntityStore


def snapshot_batch(entity_id: str, version: int = 1) -> CommitBatch:
    persist = Persist(EntityKind.AGENT, entity_id, version, {"v": version})
    return CommitBatch(snapshots=[persist])


class FakeSlowStore(FakeEntityStore):
    """A fake store whose commits take a loop turn or two, and may refuse one entity."""

    def __init__(self, refuse: str | None = None) -> None:
        super().__init__()
        self.refuse = refuse

    async def commit(self, batch: CommitBatch) -> None:
        await asyncio.sleep(0.01)
        if self.refuse and any(str(p.entity_id) == self.refuse for p in batch.snapshots):
            raise ValueError(f"fake store: {self.refuse} refused")
        await super().commit(batch)


async def test_commits_that_queue_behind_a_write_go_together() -> None:
    store = FakeSlowStore()
    group = GroupCommit(store)
    ids = [str(uuid4()) for _ in range(50)]
    await asyncio.gather(*(group.commit(snapshot_batch(i)) for i in ids))
    assert {key[1] for key in store.snapshots} == set(ids)  # every batch written
    assert group.batches == 50
    assert group.statements == len(store.commits) < 50  # fewer statements than batches
    assert sum(len(c.snapshots) for c in store.commits) == 50


async def test_a_lone_commit_is_written_alone_and_returns_after_it() -> None:
    store = FakeSlowStore()
    group = GroupCommit(store)
    await group.commit(snapshot_batch("a"))
    assert "a" in {key[1] for key in store.snapshots}
    assert group.statements == 1
    await group.commit(CommitBatch())  # nothing to write: no statement
    assert group.statements == 1


async def test_one_refused_batch_fails_only_its_caller() -> None:
    store = FakeSlowStore(refuse="bad")
    group = GroupCommit(store)
    first = asyncio.create_task(group.commit(snapshot_batch("first")))
    await asyncio.sleep(0)  # "first" is being written; the rest queue behind it
    others = [group.commit(snapshot_batch(name)) for name in ("x", "bad", "y")]
    results = await asyncio.gather(*others, return_exceptions=True)
    await first
    assert isinstance(results[1], ValueError)
    assert results[0] is None
    assert results[2] is None
    assert {key[1] for key in store.snapshots} == {"first", "x", "y"}


async def test_a_stopped_writer_answers_every_waiter() -> None:
    store = FakeSlowStore()
    group = GroupCommit(store)
    waiting = [asyncio.create_task(group.commit(snapshot_batch(str(n)))) for n in range(5)]
    await asyncio.sleep(0.001)
    assert group._calls.pump is not None
    group._calls.pump.cancel()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)


def test_merged_keeps_every_item_in_order() -> None:
    a, b = snapshot_batch("a"), snapshot_batch("b", 2)
    a.cancelled.append((EntityKind.AGENT, "a", "t"))
    out = merged([a, b])
    assert [p.entity_id for p in out.snapshots] == ["a", "b"]
    assert out.cancelled == [(EntityKind.AGENT, "a", "t")]


def test_max_group_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_group"):
        GroupCommit(FakeEntityStore(), max_group=0)
