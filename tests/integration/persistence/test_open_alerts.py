"""The resync read of an agent's open alerts, against the real PostgreSQL.

``PostgresOpenAlerts.for_agents`` runs for the agent sockets (re)connecting
at once (``gateway.ws.reads`` gathers them). It must find, for each agent,
exactly the open alerts that offer to it or are assigned to it, and it must
find them through the indexes of migration 0015: without them, each read
decoded every open alert's snapshot, and a reconnect storm with 1,000 alerts
open kept PostgreSQL busy for half a minute, even before the table's
statistics know of the alerts.
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
from persistence.stores.open_alerts import _FOR_AGENTS, PostgresOpenAlerts

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


async def test_agents_read_together_each_get_their_own_alerts_in_the_order_asked(
    own_pool: asyncpg.Pool,
) -> None:
    first, second, idle = uuid4(), uuid4(), uuid4()
    both = alert(AlertStatus.DISPATCHING, offered=(first, second))
    mine = alert(AlertStatus.ASSIGNED, assigned=second)
    await store(own_pool, [both, mine])

    found = await PostgresOpenAlerts(own_pool).for_agents([second, idle, first, second])

    assert [sorted(s["id"] for s in alerts) for alerts in found] == [
        sorted([str(both.id), str(mine.id)]),
        [],
        [str(both.id)],
        sorted([str(both.id), str(mine.id)]),
    ]
    assert await PostgresOpenAlerts(own_pool).for_agents([]) == []


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
        # One agent, and a storm's worth read together.
        for asked in ([agents[3]], agents[4:504]):
            plan = await own_pool.fetchval(
                f"EXPLAIN (FORMAT JSON) {_FOR_AGENTS}", [str(a) for a in asked]
            )
            if isinstance(plan, str):
                plan = json.loads(plan)
            scans = [n for n in _nodes(plan[0]["Plan"]) if "Scan" in n["Node Type"]]
            assert {n.get("Index Name") for n in scans if "Index Name" in n} == {
                "entity_snapshots_offers_idx",
                "entity_snapshots_open_assignee_idx",
            }, (statistics, scans)
            assert all("Index Cond" in n for n in scans if "Index Name" in n), (statistics, scans)
            # Beside them only the agents' array and the heap fetches of bitmap scans.
            assert {n["Node Type"] for n in scans if "Index Name" not in n} <= {
                "Function Scan",
                "Bitmap Heap Scan",
            }, (statistics, scans)
        found = await PostgresOpenAlerts(own_pool).for_agents([agents[3], agents[4]])
        assert [[s["id"] for s in alerts] for alerts in found] == [
            [str(alerts[1].id)],
            [str(alerts[2].id)],
        ]


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
