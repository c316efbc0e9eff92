"""The entity store's commit against the real PostgreSQL: one statement, all or nothing.

``PostgresEntityStore.commit`` writes a whole batch (timers removed and
written, snapshots, projections, outbox events) as one statement; these
tests check what lands in each table, the cases where one batch touches the
same timer twice, and that a failing batch leaves nothing behind.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest

from actors.effects import Emit, EntityKind, EventType, Persist, Topic
from actors.ports import CommitBatch, StoredTimer
from persistence.errors import PersistenceError
from persistence.stores.entities import PostgresEntityStore

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ALERT = EntityKind.ALERT


def timer(entity_id: str, timer_id: str, due_in_s: float, **payload: str) -> StoredTimer:
    return StoredTimer(
        ALERT, entity_id, timer_id, "offer_expired", NOW + timedelta(seconds=due_in_s), payload
    )


def alert_snapshot(alert_id: UUID, user_id: UUID, version: int, status: str) -> Persist:
    snapshot = {
        "schema": 1,
        "kind": "alert",
        "id": str(alert_id),
        "user_id": str(user_id),
        "alert_type": "panic",
        "status": status,
        "latitude": 52.5,
        "longitude": 13.4,
        "accuracy_m": None,
        "description": None,
        "silent": False,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "assigned_agent_id": None,
        "version": version,
    }
    return Persist(ALERT, alert_id, version, snapshot)


def event(alert_id: UUID) -> Emit:
    key = str(alert_id)
    return Emit(Topic.PANIC_ALERTS, EventType.ALERT_CREATED, key, key, {"id": key, "n": 1}, NOW)


async def timers_of(pool: asyncpg.Pool, entity_id: str) -> dict[str, datetime]:
    rows = await pool.fetch(
        "SELECT timer_id, due_at FROM entity_timers WHERE entity_id = $1", entity_id
    )
    return {r["timer_id"]: r["due_at"] for r in rows}


async def new_user(pool: asyncpg.Pool) -> UUID:
    user_id: UUID = await pool.fetchval(
        "INSERT INTO users (email, password_hash, full_name, role) "
        "VALUES ($1, 'x', 'Store Test', 'user') RETURNING id",
        f"{uuid4().hex}@example.org",
    )
    return user_id


async def test_one_batch_writes_snapshot_projection_timers_and_events(pool: asyncpg.Pool) -> None:
    store = PostgresEntityStore(pool, source="test")
    alert_id, user_id = uuid4(), await new_user(pool)
    key = str(alert_id)
    batch = CommitBatch(
        snapshots=[alert_snapshot(alert_id, user_id, 1, "dispatching")],
        events=[event(alert_id), event(alert_id)],
        timers=[timer(key, "a", 30), timer(key, "b", 60)],
    )
    await store.commit(batch)

    version, state = await pool.fetchrow(
        "SELECT version, state FROM entity_snapshots WHERE kind = 'alert' AND entity_id = $1", key
    )
    assert (version, state["status"]) == (1, "dispatching")
    projected = await pool.fetchrow("SELECT status, version FROM alerts WHERE id = $1", alert_id)
    assert tuple(projected) == ("dispatching", 1)
    assert await timers_of(pool, key) == {
        "a": NOW + timedelta(seconds=30),
        "b": NOW + timedelta(seconds=60),
    }
    outbox = await pool.fetch("SELECT topic, key, source FROM outbox WHERE key = $1", key)
    assert [tuple(r) for r in outbox] == [("panic-alerts", key, "test")] * 2

    # An older snapshot never replaces a newer one, in the row or its projection.
    await store.commit(CommitBatch(snapshots=[alert_snapshot(alert_id, user_id, 3, "escalated")]))
    await store.commit(CommitBatch(snapshots=[alert_snapshot(alert_id, user_id, 2, "cancelled")]))
    projected = await pool.fetchrow("SELECT status, version FROM alerts WHERE id = $1", alert_id)
    assert tuple(projected) == ("escalated", 3)


async def test_a_timer_removed_and_written_in_one_batch_ends_up_written(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresEntityStore(pool, source="test")
    key = str(uuid4())
    first = timer(key, "again", 10)
    await store.commit(CommitBatch(timers=[first, timer(key, "offer", 30)]))

    # The timer fired and its transition armed it again: the new due time stays.
    rearmed = timer(key, "again", 20)
    await store.commit(CommitBatch(fired=[first], timers=[rearmed]))
    assert await timers_of(pool, key) == {
        "again": rearmed.due_at,
        "offer": NOW + timedelta(seconds=30),
    }

    # Cancelled and scheduled again in one transition: scheduled wins.
    moved = timer(key, "offer", 45)
    await store.commit(CommitBatch(cancelled=[(ALERT, key, "offer")], timers=[moved]))
    assert (await timers_of(pool, key))["offer"] == moved.due_at

    # A fired timer re-armed meanwhile (another due time) is not removed.
    await store.commit(CommitBatch(fired=[first]))
    assert (await timers_of(pool, key))["again"] == rearmed.due_at
    await store.commit(CommitBatch(fired=[rearmed], cancelled=[(ALERT, key, "offer")]))
    assert await timers_of(pool, key) == {}


async def test_a_failing_batch_writes_nothing(pool: asyncpg.Pool) -> None:
    # The same event id twice violates the outbox's unique key: the statement fails.
    event_id = uuid4()
    store = PostgresEntityStore(pool, source="test", new_event_id=lambda: event_id)
    alert_id, user_id = uuid4(), await new_user(pool)
    key = str(alert_id)
    batch = CommitBatch(
        snapshots=[alert_snapshot(alert_id, user_id, 1, "dispatching")],
        events=[event(alert_id), event(alert_id)],
        timers=[timer(key, "a", 30)],
    )
    with pytest.raises(PersistenceError):
        await store.commit(batch)
    assert (
        await pool.fetchval("SELECT count(*) FROM entity_snapshots WHERE entity_id = $1", key) == 0
    )
    assert await pool.fetchval("SELECT count(*) FROM alerts WHERE id = $1", alert_id) == 0
    assert await timers_of(pool, key) == {}
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE key = $1", key) == 0


async def test_many_snapshots_are_read_in_one_query_each_by_its_id(pool: asyncpg.Pool) -> None:
    """``load_snapshots`` (the shard's group load): the stored ones of the ids asked,
    newest version, none of another kind, and none for an id never stored."""
    store = PostgresEntityStore(pool, source="test")
    user_id = await new_user(pool)
    first, second, never = uuid4(), uuid4(), uuid4()
    await store.commit(
        CommitBatch(
            snapshots=[
                alert_snapshot(first, user_id, 1, "dispatching"),
                alert_snapshot(second, user_id, 1, "dispatching"),
            ]
        )
    )
    await store.commit(CommitBatch(snapshots=[alert_snapshot(second, user_id, 2, "escalated")]))
    asked = [str(first), str(second), str(never)]
    found = await store.load_snapshots(ALERT, asked)
    assert {key: state["status"] for key, state in found.items()} == {
        str(first): "dispatching",
        str(second): "escalated",
    }
    assert found[str(first)] == await store.load_snapshot(ALERT, str(first))
    assert await store.load_snapshots(EntityKind.AGENT, asked) == {}
