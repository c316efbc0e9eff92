"""Faults on a two-node Ray cluster: a killed shard, a removed node.

Alerts are open with offer timers pending, some due while the shard is gone.
After the fault every alert is back with the same status and timeline, every
timer fires exactly once, and every event reaches Kafka and MongoDB (Kafka
may repeat one, at-least-once; consumers dedupe by id; MongoDB holds one
document per event).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import ray

from actors.alert import AlertType, CreateAlert, OfferMade, OfferReceived
from actors.alert_messages import OFFER_EXPIRED_TIMER, SEARCH_AGAIN_TIMER
from actors.effects import EntityKind
from config.settings import Settings
from tests.integration.faults.conftest import (
    FaultCluster,
    check_events_delivered,
    wait_for_restart,
)
from tests.integration.reachable import agents_reachable
from tests.scratch import make_user

pytestmark = pytest.mark.integration

ALERT = EntityKind.ALERT
SHORT = timedelta(seconds=1.5)  # due while the shard is down or restarting
LONG = timedelta(seconds=6)  # due after it is back
ALERT_TOPICS = ("panic-alerts", "alert-responses", "alert-status-updates")


async def open_alerts(
    env: FaultCluster, pool: asyncpg.Pool, settings: Settings, shard: int, count: int
) -> list[UUID]:
    """``count`` open alerts hosted by ``shard``, each with a short and a long offer pending."""
    user = await make_user(pool)
    alerts: list[UUID] = []
    async with agents_reachable(settings):
        await _open_alerts(env, user, shard, count, alerts)
    return alerts


async def _open_alerts(
    env: FaultCluster, user: UUID, shard: int, count: int, alerts: list[UUID]
) -> None:
    while len(alerts) < count:
        alert_id = uuid4()
        if env.client.shard_of(ALERT, str(alert_id)) != shard:
            continue
        await env.client.ask(
            ALERT, str(alert_id), CreateAlert(alert_id, user, AlertType.PANIC, 52.52, 13.40)
        )
        for ttl in (LONG, SHORT):
            # Offered to an app that has it on screen: only the ttl ends it.
            agent_id = uuid4()
            await env.client.ask(ALERT, str(alert_id), OfferMade(agent_id, ttl=ttl))
            await env.client.ask(ALERT, str(alert_id), OfferReceived(agent_id))
        alerts.append(alert_id)


async def snapshots(pool: asyncpg.Pool, alerts: list[UUID]) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT entity_id, state FROM entity_snapshots "
        "WHERE kind = 'alert' AND entity_id = ANY($1)",
        [str(a) for a in alerts],
    )
    return {r["entity_id"]: r["state"] for r in rows}


async def pending_timers(
    pool: asyncpg.Pool, alerts: list[UUID], name: str = OFFER_EXPIRED_TIMER
) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM entity_timers "
        "WHERE kind = 'alert' AND entity_id = ANY($1) AND name = $2",
        [str(a) for a in alerts],
        name,
    )
    return count


async def wait_until_timers_fired(
    pool: asyncpg.Pool, alerts: list[UUID], deadline_s: float
) -> None:
    began = time.monotonic()
    left = -1
    while time.monotonic() - began < deadline_s:
        left = await pending_timers(pool, alerts)
        if left == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{left} timers still pending after {deadline_s}s")


async def check_recovered(
    env: FaultCluster, pool: asyncpg.Pool, alerts: list[UUID], before: dict[str, dict[str, Any]]
) -> None:
    await wait_until_timers_fired(pool, alerts, deadline_s=45)
    after = await snapshots(pool, alerts)
    for alert_id in map(str, alerts):
        old, new = before[alert_id], after[alert_id]
        assert new["status"] == old["status"] == "dispatching"
        # The timeline is intact, and holds exactly one expiry per offer made.
        assert new["timeline"][: len(old["timeline"])] == old["timeline"]
        kinds = Counter(e["type"] for e in new["timeline"])
        assert kinds == {"created": 1, "offered": 2, "offer_received": 2, "offer_expired": 2}, kinds
        assert new["offered_to"] == []
        # And the live entity agrees with what was committed (but for the soft
        # search counter: searching again does not write a snapshot).
        live = await env.shards[env.client.shard_of(ALERT, alert_id)].inspect.remote(
            ALERT, alert_id
        )
        assert live is not None
        assert {**live.to_snapshot(), "search_tag": 0} == {**new, "search_tag": 0}
    # With every offer expired, each alert goes on searching: one timer each.
    assert await pending_timers(pool, alerts, SEARCH_AGAIN_TIMER) == len(alerts)

    expired = await pool.fetch(
        "SELECT key, data->>'agent_id' AS agent FROM outbox "
        "WHERE type = 'alert.offer_expired' AND key = ANY($1)",
        [str(a) for a in alerts],
    )
    per_offer = Counter((r["key"], r["agent"]) for r in expired)
    assert len(per_offer) == 2 * len(alerts)
    assert set(per_offer.values()) == {1}, "a timer fired more than once"


async def test_killed_shard_comes_back_with_its_alerts_and_timers(
    fault_cluster: FaultCluster, fault_pool: asyncpg.Pool, settings: Settings
) -> None:
    env = fault_cluster
    victim = 0
    alerts = await open_alerts(env, fault_pool, settings, victim, count=8)
    before = await snapshots(fault_pool, alerts)
    assert await pending_timers(fault_pool, alerts) >= len(alerts)  # the long ones at least
    old_pid = (await env.shards[victim].stats.remote())["pid"]

    ray.kill(env.shards[victim], no_restart=False)
    recovery_s = await wait_for_restart(env.shards[victim], old_pid)
    report = await env.shards[victim].ready.remote()
    assert report["alerts"] >= len(alerts)
    assert report["timers"] >= 1  # long offers at least; short ones may already be due
    assert recovery_s < 30

    await check_recovered(env, fault_pool, alerts, before)
    await check_events_delivered(
        settings, fault_pool, [str(a) for a in alerts], ALERT_TOPICS, "alert_events"
    )


async def test_removed_node_moves_its_shard_and_loses_nothing(
    fault_cluster: FaultCluster, fault_pool: asyncpg.Pool, settings: Settings
) -> None:
    env = fault_cluster
    victim = 1
    stats = await env.shards[victim].stats.remote()
    assert stats["node_id"] == env.worker.node_id, "shard 1 should start on the worker node"
    alerts = await open_alerts(env, fault_pool, settings, victim, count=8)
    before = await snapshots(fault_pool, alerts)
    assert await pending_timers(fault_pool, alerts) >= len(alerts)

    env.release_head_slot()
    env.cluster.remove_node(env.worker)
    await wait_for_restart(env.shards[victim], stats["pid"], deadline_s=90)
    moved = await env.shards[victim].stats.remote()
    assert moved["node_id"] == env.cluster.head_node.node_id

    await check_recovered(env, fault_pool, alerts, before)
    await check_events_delivered(
        settings, fault_pool, [str(a) for a in alerts], ALERT_TOPICS, "alert_events"
    )
