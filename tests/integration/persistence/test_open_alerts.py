"""The resync read of an agent's open alerts, against the real PostgreSQL.

``PostgresOpenAlerts.for_agent`` runs on every agent socket's (re)connect.
It must find exactly the open alerts that offer to the agent or are
assigned to it, and it must find them through the indexes of migration
0015: without them, each read decoded every open alert's snapshot, and a
reconnect storm with 1,000 alerts open kept PostgreSQL busy for half a
minute, even before the table's statistics know of the alerts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from actors.alert_state import AlertState, AlertStatus, AlertType, Offer
from config.settings import Settings
from persistence.drivers.postgres import create_pool
from persistence.migrations import apply_migrations
from persistence.stores.open_alerts import _FOR_AGENT, PostgresOpenAlerts

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
async def own_pool(settings: Settings, empty_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A database of this test's own: its row counts steer the planner."""
    pool = await create_pool(settings.postgres, database=empty_database)
    await apply_migrations(pool)
    try:
        yield pool
    finally:
        await pool.close()


def alert(
    status: AlertStatus, *, offered: tuple[UUID, ...] = (), assigned: UUID | None = None
) -> AlertState:
    return AlertState(
        id=uuid4(),
        user_id=uuid4(),
        alert_type=AlertType.PANIC,
        status=status,
        latitude=52.52,
        longitude=13.405,
        accuracy_m=None,
        description="door code 4711",
        silent=False,
        created_at=NOW,
        updated_at=NOW,
        assigned_agent_id=assigned,
        offered_to=tuple(Offer(a, NOW, NOW + timedelta(seconds=30), 100.0) for a in offered),
    )


async def store(pool: asyncpg.Pool, alerts: list[AlertState]) -> None:
    rows: list[tuple[str, str, Any, bool]] = [
        ("alert", str(a.id), a.to_snapshot(), not a.is_terminal) for a in alerts
    ]
    await pool.executemany(
        "INSERT INTO entity_snapshots (kind, entity_id, version, state, open)"
        " VALUES ($1, $2, 1, $3, $4)",
        rows,
    )


async def test_an_agent_is_resynced_exactly_its_open_offers_and_assignments(
    own_pool: asyncpg.Pool,
) -> None:
    agent, other = uuid4(), uuid4()
    offering = alert(AlertStatus.DISPATCHING, offered=(other, agent))
    assigned = alert(AlertStatus.EN_ROUTE, assigned=agent)
    elsewhere = [
        alert(AlertStatus.DISPATCHING, offered=(other,)),
        alert(AlertStatus.ASSIGNED, assigned=other),
        alert(AlertStatus.RESOLVED, assigned=agent),  # closed: not told again
    ]
    await store(own_pool, [offering, assigned, *elsewhere])

    found = await PostgresOpenAlerts(own_pool).for_agent(agent)

    assert sorted(s["id"] for s in found) == sorted([str(offering.id), str(assigned.id)])
    assert await PostgresOpenAlerts(own_pool).for_agent(uuid4()) == []


async def test_the_agent_resync_reads_through_its_indexes_not_every_open_alert(
    own_pool: asyncpg.Pool,
) -> None:
    # The statistics first know only agents (as after a fleet signed on), then
    # 1,000 alerts come faster than autovacuum analyses the table: the plan
    # must not walk every open alert then, nor after the statistics catch up.
    await own_pool.executemany(
        "INSERT INTO entity_snapshots (kind, entity_id, version, state)"
        " VALUES ('agent', $1, 1, $2)",
        [(str(uuid4()), {"availability": "available"}) for _ in range(5_000)],
    )
    await own_pool.execute("ANALYZE entity_snapshots")
    agents = [uuid4() for _ in range(2_000)]
    alerts = [
        alert(AlertStatus.DISPATCHING, offered=(agents[2 * n], agents[2 * n + 1]))
        if n % 2
        else alert(AlertStatus.ASSIGNED, assigned=agents[2 * n])
        for n in range(1_000)
    ]
    await store(own_pool, alerts)

    for statistics in ("stale", "fresh"):
        if statistics == "fresh":
            await own_pool.execute("ANALYZE entity_snapshots")
        for agent, expected in ((agents[3], alerts[1]), (agents[4], alerts[2])):
            plan = await own_pool.fetchval(f"EXPLAIN (FORMAT JSON) {_FOR_AGENT}", str(agent))
            if isinstance(plan, str):
                plan = json.loads(plan)
            scans = [n for n in _nodes(plan[0]["Plan"]) if "Scan" in n["Node Type"]]
            assert {n.get("Index Name") for n in scans if "Index Name" in n} == {
                "entity_snapshots_offers_idx",
                "entity_snapshots_open_assignee_idx",
            }, (statistics, scans)
            assert all("Index Cond" in n for n in scans if "Index Name" in n), (statistics, scans)
            assert not [n for n in scans if n["Node Type"] == "Seq Scan"], (statistics, scans)
            found = await PostgresOpenAlerts(own_pool).for_agent(agent)
            assert [s["id"] for s in found] == [str(expected.id)]


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
