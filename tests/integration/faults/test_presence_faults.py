"""Presence across a killed shard: the region index is rebuilt from the live sockets.

The index of available agents that dispatch ranks from is soft state, held
by region entities in memory and lost with their shard. Before, it was
refilled only by each agent's next report, so an agent that was connected
and available but sent nothing was never offered an alert raised next to it
(observed: none within 10 s). Now a shard that (re)starts asks every
gateway to announce its agents' live sockets again (``gateway.ws.presence``),
and the agents refresh their region entries at once.
"""

from __future__ import annotations

import json
import random

import asyncpg
import httpx
import pytest
import ray

from actors.effects import EntityKind
from config.settings import Settings
from gateway.auth.principal import Role
from geo.cells import cell_of
from tests.geodesy import destination
from tests.integration.api.accounts import make_account
from tests.integration.api.conftest import serving
from tests.integration.api.test_alerts import is_listed
from tests.integration.api.test_ws import Client, eventually, session
from tests.integration.faults.conftest import FaultCluster, wait_for_restart
from tests.scratch import on_database

pytestmark = pytest.mark.integration


async def test_after_a_shard_is_killed_a_silent_available_agent_is_offered_within_3s(
    fault_cluster: FaultCluster, fault_pool: asyncpg.Pool, settings: Settings
) -> None:
    env = fault_cluster
    on_db = on_database(settings, env.database)
    resolution = on_db.actors.region_resolution
    # A spot whose region cell lives on shard 0, the one to be killed.
    victim = 0
    while True:
        where = (round(random.uniform(-50, 50), 6), round(random.uniform(-160, 160), 6))
        spot = destination(*where, 250, 30)
        cell = cell_of(*spot, resolution)
        if env.client.shard_of(EntityKind.REGION, cell) == victim:
            break
    # The agent's own entity there too: restored from its snapshot, whose newest
    # position (written coalesced, every few seconds) dies with the shard.
    agent = await make_account(fault_pool, on_db, Role.AGENT)
    while env.client.shard_of(EntityKind.AGENT, str(agent.id)) != victim:
        agent = await make_account(fault_pool, on_db, Role.AGENT)
    user = await make_account(fault_pool, on_db, Role.USER)

    async def listed() -> bool:
        return await is_listed(env.client, resolution, agent.id, spot)

    async with serving(on_db, env.client) as gateway, session(gateway, agent) as (app, _):
        await app.send("agent.status", {"status": "available"}, id="on")
        await app.expect("ack", ref="on", status="available")
        await app.send("location", {"latitude": spot[0], "longitude": spot[1]})
        await app.ping()
        await eventually(listed, 15.0)

        # The shard holding the agent's region dies; the app sends nothing from here on.
        old_pid = (await env.shards[victim].stats.remote())["pid"]
        ray.kill(env.shards[victim], no_restart=False)
        await wait_for_restart(env.shards[victim], old_pid)
        # Listed again from its live socket, though it said nothing (before: never).
        await eventually(listed, 5.0)

        async with httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as http:
            body = {"latitude": where[0], "longitude": where[1], "alert_type": "panic"}
            created = await http.post("/alerts", json=body, headers=user.headers)
            assert created.status_code == 201, created.text
            alert_id = created.json()["id"]
            offer = await app.expect("alert.offer", wait_s=3.0, alert_id=alert_id)
        assert offer["data"]["alert_id"] == alert_id
        assert_quiet_app(app)


def assert_quiet_app(app: Client) -> None:
    """Nothing the app was sent asked it to act (no error frames)."""
    assert all(f["type"] != "error" for f in app.backlog), json.dumps(app.backlog)
