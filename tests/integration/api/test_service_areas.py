"""Service areas restrict dispatch: an alert raised inside one is offered only to
its agents, even when another agent is nearer (real gateway, shards and zones)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from actors.effects import EntityKind
from actors.region import QueryNearest, QueryZones
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from geo.cells import cell_of
from tests.geodesy import destination
from tests.integration.api.accounts import make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import (
    alert_body,
    create,
    eventually,
    make_available,
    random_point,
)

pytestmark = pytest.mark.integration


async def test_an_alert_inside_a_service_area_goes_only_to_its_agents(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    resolution = api_settings.actors.region_resolution
    where = random_point()
    near_spot, far_spot = destination(*where, 300, 90), destination(*where, 900, 270)
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    user = await make_account(api_pool, api_settings, Role.USER)
    near = await make_account(api_pool, api_settings, Role.AGENT)
    far = await make_account(api_pool, api_settings, Role.AGENT)
    area = {
        "name": "contracted patrol area",
        "kind": "service_area",
        "geometry": {"type": "Point", "coordinates": [where[1], where[0]]},
        "radius_m": 2000,
        "rules": {"agent_ids": [str(far.id)]},
    }
    made = await http.post("/geofencing/zones", json=area, headers=admin.headers)
    assert made.status_code == 201, made.text
    zone_id = made.json()["id"]
    for agent, spot in ((near, near_spot), (far, far_spot)):
        await make_available(gateway, sockets, agent, spot)

    async def ready() -> bool:
        """Both agents listed in their regions, and the zone known to the shards."""
        for agent, spot in ((near, near_spot), (far, far_spot)):
            found = await api_entities.ask(
                EntityKind.REGION, cell_of(*spot, resolution), QueryNearest(*spot, k=50)
            )
            assert isinstance(found, tuple)
            if agent.id not in {c.agent_id for c in found}:
                return False
        return await zone_known(api_entities, zone_id, cell_of(*where, resolution))

    assert await eventually(ready)
    alert = await create(http, user, alert_body(latitude=where[0], longitude=where[1]))

    async def offered() -> list[dict[str, Any]]:
        timeline = await http.get(f"/alerts/{alert['id']}/timeline", headers=user.headers)
        return [i for i in timeline.json()["items"] if i["type"] == "offered"]

    offers = await eventually(offered)
    assert [o["data"]["agent_id"] for o in offers] == [str(far.id)]  # not the nearer one


async def zone_known(entities: EntityClient, zone_id: str, cell: str) -> bool:
    zones = await entities.ask(EntityKind.REGION, cell, QueryZones())
    return isinstance(zones, frozenset) and UUID(zone_id) in zones
