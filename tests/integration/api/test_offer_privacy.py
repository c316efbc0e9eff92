"""Offer privacy over real HTTP and WebSocket: an offered agent learns the alert's
type, distance and a coarse position; the exact position, the description and
the user's name come with the assignment; an agent without a pending offer or
an assignment is answered 404, as if the alert did not exist."""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from actors.alert_messages import OfferMade, OfferReceived
from actors.effects import EntityKind
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from geo.cells import haversine_m
from tests.geodesy import destination
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import (
    assert_problem,
    eventually,
    is_listed,
    make_available,
    random_point,
)
from tests.integration.api.test_ws import session
from tests.integration.reachable import agents_reachable

pytestmark = pytest.mark.integration

DOOR_CODE = "Door code 4711, flat 3B, the dog is friendly"
USER_NAME = "Ada Privacy-Test"


@pytest.fixture
async def user(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    account = await make_account(api_pool, api_settings, Role.USER)
    await api_pool.execute("UPDATE users SET full_name = $1 WHERE id = $2", USER_NAME, account.id)
    return account


async def new_agent(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.AGENT)


async def raise_alert(
    http: httpx.AsyncClient, user: Account, where: tuple[float, float]
) -> dict[str, Any]:
    body = {
        "latitude": where[0],
        "longitude": where[1],
        "accuracy_m": 9.0,
        "alert_type": "medical",
        "description": DOOR_CODE,
    }
    response = await http.post("/alerts", json=body, headers=user.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_coarse(data: dict[str, Any], where: tuple[float, float]) -> None:
    """No description, no accuracy, and a position near but not at the truth."""
    assert data.get("description") is None
    assert data.get("accuracy_m") is None
    assert data["position_precision_m"] == 600
    off = haversine_m(where[0], where[1], data["latitude"], data["longitude"])
    assert 1.0 < off <= 600.0, off
    assert DOOR_CODE not in repr(data)
    assert USER_NAME not in repr(data)


def assert_exact(data: dict[str, Any], where: tuple[float, float]) -> None:
    assert (data["latitude"], data["longitude"]) == where
    assert data["description"] == DOOR_CODE
    assert data.get("position_precision_m") is None


async def test_the_offer_is_coarse_and_the_assignment_exact(
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    gateway: Gateway,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    where = random_point()
    spot = destination(*where, 200, 45)
    agent = await new_agent(api_pool, api_settings)
    await make_available(gateway, sockets, agent, spot)
    resolution = api_settings.actors.region_resolution

    async def listed() -> bool:
        return await is_listed(api_entities, resolution, agent.id, spot)

    assert await eventually(listed)
    async with session(gateway, agent) as (agent_ws, _):
        alert = await raise_alert(http, user, where)
        path = f"/alerts/{alert['id']}"
        offer = await agent_ws.expect("alert.offer", wait_s=15, alert_id=alert["id"])
        assert_coarse(offer["data"], where)
        assert offer["data"]["alert_type"] == "medical"
        assert offer["data"]["distance_m"] == 200.0  # ~200 m, told to the 100 m

        # While the offer is pending, the alert reads as coarse as the offer.
        shown = await http.get(path, headers=agent.headers)
        assert shown.status_code == 200, shown.text
        assert_coarse(shown.json(), where)
        assert shown.json()["user_name"] is None
        assert (shown.json()["latitude"], shown.json()["longitude"]) == (
            offer["data"]["latitude"],
            offer["data"]["longitude"],
        )
        listing = (await http.get("/alerts", headers=agent.headers)).json()["items"]
        assert [a["id"] for a in listing] == [alert["id"]]
        assert_coarse(listing[0], where)
        timeline = await http.get(f"{path}/timeline", headers=agent.headers)
        assert timeline.status_code == 200, timeline.text

        await agent_ws.send("offer.accept", {"alert_id": alert["id"]}, id="acc")
        assigned = await agent_ws.expect("alert.assigned", alert_id=alert["id"])
        assert_exact(assigned["data"], where)

    full = await http.get(path, headers=agent.headers)
    assert full.status_code == 200, full.text
    assert_exact(full.json(), where)
    assert full.json()["user_name"] == USER_NAME
    listing = (await http.get("/alerts", headers=agent.headers)).json()["items"]
    assert_exact(listing[0], where)
    # The user's own view is exact, and never carries a precision.
    own = (await http.get(path, headers=user.headers)).json()
    assert_exact(own, where)


async def test_an_agent_that_declines_no_longer_sees_the_alert(
    http: httpx.AsyncClient,
    gateway: Gateway,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    agent = await new_agent(api_pool, api_settings)
    alert = await raise_alert(http, user, random_point())
    path = f"/alerts/{alert['id']}"
    async with agents_reachable(api_settings):  # the app's socket, and it has the offer
        await api_entities.ask(EntityKind.ALERT, alert["id"], OfferMade(agent.id, distance_m=300.0))
        await api_entities.ask(EntityKind.ALERT, alert["id"], OfferReceived(agent.id))
    assert (await http.get(path, headers=agent.headers)).status_code == 200

    async with session(gateway, agent) as (agent_ws, _):
        await agent_ws.send("offer.decline", {"alert_id": alert["id"]}, id="no")
        await agent_ws.expect("ack", ref="no")

    assert_problem(await http.get(path, headers=agent.headers), 404)
    assert_problem(await http.get(f"{path}/timeline", headers=agent.headers), 404)
    listing = (await http.get("/alerts", headers=agent.headers)).json()["items"]
    assert alert["id"] not in {a["id"] for a in listing}
    # The user still reads it all.
    assert (await http.get(path, headers=user.headers)).status_code == 200


async def test_an_agent_whose_offer_expired_gets_404_and_the_assignee_200(
    http: httpx.AsyncClient,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    late, taker, revoked, stranger = [await new_agent(api_pool, api_settings) for _ in range(4)]
    alert = await raise_alert(http, user, random_point())
    path = f"/alerts/{alert['id']}"
    short = OfferMade(late.id, distance_m=300.0, ttl=timedelta(seconds=1))
    async with agents_reachable(api_settings):
        await api_entities.ask(EntityKind.ALERT, alert["id"], short)
    assert (await http.get(path, headers=late.headers)).status_code == 200

    async def gone() -> bool:
        return (await http.get(path, headers=late.headers)).status_code == 404

    assert await eventually(gone, timeout_s=10)
    assert_problem(await http.get(f"{path}/timeline", headers=late.headers), 404)

    # One agent is assigned: it reads it all, after it ended too; the offer
    # still pending for another is revoked, and with it that agent's view.
    async with agents_reachable(api_settings):
        offer = OfferMade(revoked.id, distance_m=90.0)
        await api_entities.ask(EntityKind.ALERT, alert["id"], offer)
        await api_entities.ask(EntityKind.ALERT, alert["id"], OfferReceived(revoked.id))
    assert (await http.get(path, headers=revoked.headers)).status_code == 200
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    assigned = await http.post(
        f"{path}/assign", json={"agent_id": str(taker.id)}, headers=admin.headers
    )
    assert assigned.status_code == 200, assigned.text
    for status in ("en_route", "on_scene", "resolved"):
        moved = await http.put(f"{path}/status", json={"status": status}, headers=taker.headers)
        assert moved.status_code == 200, moved.text
    full = await http.get(path, headers=taker.headers)
    assert full.status_code == 200, full.text
    assert full.json()["description"] == DOOR_CODE
    assert (await http.get(f"{path}/timeline", headers=taker.headers)).status_code == 200
    for outsider in (late, revoked, stranger):
        assert_problem(await http.get(path, headers=outsider.headers), 404)
        assert_problem(await http.get(f"{path}/timeline", headers=outsider.headers), 404)
