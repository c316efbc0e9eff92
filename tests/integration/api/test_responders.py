"""Responders people can trust (issue 15), over real sockets against the live gateway.

Each test is one of the ways dispatch used to fail a person in danger: an
alert offered first to an agent whose phone had dropped its socket (and
stuck there for the 30 s offer), an offer nobody's app acknowledged, a
suspended agent keeping the victim's alert, an admin unable to reassign, and
an assigned agent never leaving. (Vetting: test_agent_vetting.py; offer
privacy: test_offer_privacy.py; revoked sessions: test_ws_revocation.py;
a killed shard: faults/test_presence_faults.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from actors.alert_messages import OfferMade
from actors.effects import EntityKind
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from tests.geodesy import destination
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import assert_problem, make_available, random_point
from tests.integration.api.test_alerts import is_listed as listed_at
from tests.integration.api.test_ws import Client, close_code, eventually, session, socket

pytestmark = pytest.mark.integration

#: The api package's offer_ack_timeout_s (the default) and a margin for a busy machine.
ACK_TIMEOUT_S = 3.0


async def agents(api_pool: asyncpg.Pool, api_settings: Settings, n: int) -> list[Account]:
    return [await make_account(api_pool, api_settings, Role.AGENT) for _ in range(n)]


async def is_listed(
    entities: EntityClient, settings: Settings, agent: Account, at: tuple[float, float]
) -> bool:
    return await listed_at(entities, settings.actors.region_resolution, agent.id, at)


async def raise_alert(
    http: httpx.AsyncClient, user: Account, where: tuple[float, float], alert_type: str = "panic"
) -> str:
    body = {"latitude": where[0], "longitude": where[1], "alert_type": alert_type}
    created = await http.post("/alerts", json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    alert_id: str = created.json()["id"]
    return alert_id


async def timeline(http: httpx.AsyncClient, reader: Account, alert_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/alerts/{alert_id}/timeline", headers=reader.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@asynccontextmanager
async def acking_app(gateway: Gateway, agent: Account) -> AsyncIterator[Client]:
    """An agent app that acknowledges offers itself (``acks_offers``)."""
    async with socket(gateway) as ws:
        client = Client(ws)
        await client.send("auth", {"token": agent.token, "acks_offers": True})
        ok = await client.recv()
        assert ok["type"] == "auth.ok", ok
        yield client


async def on_duty(client: Client, at: tuple[float, float]) -> None:
    await client.send("agent.status", {"status": "available"}, id="on")
    await client.expect("ack", ref="on", status="available")
    await client.send("location", {"latitude": at[0], "longitude": at[1]})
    await client.ping()


async def near_and_far(
    gateway: Gateway,
    sockets: AsyncExitStack,
    entities: EntityClient,
    settings: Settings,
    where: tuple[float, float],
    far: Account,
) -> tuple[Client, tuple[float, float]]:
    """``far`` on duty 1.2 km from ``where`` (listed), and a spot 150 m from it."""
    far_spot = destination(*where, 1200, 180)
    far_app = await make_available(gateway, sockets, far, far_spot)
    await eventually(lambda: is_listed(entities, settings, far, far_spot))
    return far_app, destination(*where, 150, 0)


# --- presence -------------------------------------------------------------------------


async def test_with_a_disconnected_agent_nearer_the_connected_one_is_offered_within_1s(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    where = random_point()
    near_spot, far_spot = destination(*where, 150, 90), destination(*where, 1500, 270)
    near, far = await agents(api_pool, api_settings, 2)
    async with session(gateway, near) as (near_app, _):
        await on_duty(near_app, near_spot)
        await eventually(lambda: is_listed(api_entities, api_settings, near, near_spot), 10.0)
    # The nearer phone lost its socket (it said nothing more). It is unlisted at once.
    await eventually(lambda: _not(is_listed(api_entities, api_settings, near, near_spot)), 1.0)
    far_app = await make_available(gateway, sockets, far, far_spot)
    await eventually(lambda: is_listed(api_entities, api_settings, far, far_spot), 10.0)

    alert_id = await raise_alert(http, user, where)
    offer = await far_app.expect("alert.offer", wait_s=1.0, alert_id=alert_id)
    assert offer["data"]["alert_id"] == alert_id
    offered = [e for e in await timeline(http, user, alert_id) if e["type"] == "offered"]
    assert [e["data"]["agent_id"] for e in offered] == [str(far.id)]


async def _not(check: Any) -> bool:
    return not await check


async def test_an_offer_the_app_does_not_acknowledge_moves_on_after_the_ack_timeout(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    where = random_point()
    near, far = await agents(api_pool, api_settings, 2)
    far_app, near_spot = await near_and_far(
        gateway, sockets, api_entities, api_settings, where, far
    )
    async with acking_app(gateway, near) as near_app:
        await on_duty(near_app, near_spot)
        await eventually(lambda: is_listed(api_entities, api_settings, near, near_spot))

        alert_id = await raise_alert(http, user, where)
        # The nearer app got it but never says so (a frozen app, a half-dead socket).
        await near_app.expect("alert.offer", wait_s=2.0, alert_id=alert_id)
        # Well before the 30 s offer would run out, it moves on.
        await far_app.expect("alert.offer", wait_s=ACK_TIMEOUT_S + 3.0, alert_id=alert_id)
        revoked = await near_app.expect("offer.revoked", wait_s=2.0, alert_id=alert_id)
        assert revoked["data"]["reason"] == "unacknowledged"
    steps = [(e["type"], e["data"].get("reason")) for e in await timeline(http, user, alert_id)]
    assert ("offer_withdrawn", "unacknowledged") in steps


async def test_an_acknowledged_offer_stays_with_its_agent(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    where = random_point()
    near, far = await agents(api_pool, api_settings, 2)
    far_app, near_spot = await near_and_far(
        gateway, sockets, api_entities, api_settings, where, far
    )
    async with acking_app(gateway, near) as near_app:
        await on_duty(near_app, near_spot)
        await eventually(lambda: is_listed(api_entities, api_settings, near, near_spot))
        alert_id = await raise_alert(http, user, where)
        await near_app.expect("alert.offer", wait_s=2.0, alert_id=alert_id)
        await near_app.send("offer.received", {"alert_id": alert_id})
        await far_app.nothing_for(ACK_TIMEOUT_S + 1.0)
        received = [
            e for e in await timeline(http, user, alert_id) if e["type"] == "offer_received"
        ]
        assert [e["actor_id"] for e in received] == [str(near.id)]


async def test_an_offer_that_finds_no_socket_moves_on_at_once(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    where = random_point()
    (gone,) = await agents(api_pool, api_settings, 1)
    alert_id = await raise_alert(http, user, where)
    state = await api_entities.ask(EntityKind.ALERT, alert_id, OfferMade(gone.id))
    assert getattr(state, "offered_to", None)  # made: nobody was listening for it

    async def withdrawn() -> bool:
        steps = [(e["type"], e["data"].get("reason")) for e in await timeline(http, user, alert_id)]
        return ("offer_withdrawn", "unreachable") in steps

    await eventually(withdrawn, 1.0)


# --- suspension, reassignment, the en-route deadline ------------------------------------


async def test_suspension_closes_the_socket_and_returns_the_held_alert_to_dispatching(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    where = random_point()
    spot = destination(*where, 200, 45)
    (stalker,) = await agents(api_pool, api_settings, 1)
    async with session(gateway, stalker) as (app, _):
        await on_duty(app, spot)
        await eventually(lambda: is_listed(api_entities, api_settings, stalker, spot), 10.0)
        held = await raise_alert(http, user, where)
        await app.expect("alert.offer", wait_s=5.0, alert_id=held)
        await app.send("offer.accept", {"alert_id": held}, id="take")
        await app.expect("ack", ref="take", status="assigned")
        # And an offer of another alert pending on its screen (made directly), of
        # another user (one open alert per user: the same user's press returns `held`).
        someone = await make_account(api_pool, api_settings, Role.USER)
        other = await raise_alert(http, someone, random_point())
        await api_entities.ask(EntityKind.ALERT, other, OfferMade(stalker.id))
        await app.expect("alert.offer", wait_s=5.0, alert_id=other)

        stop = await http.post(
            f"/admin/agents/{stalker.id}/suspend",
            json={"reason": "reported for harassment"},
            headers=admin.headers,
        )
        assert stop.status_code == 200, stop.text
        assert await close_code(app.ws, wait_s=1.0) == 4401

    async def back_to_dispatching() -> bool:
        got = await http.get(f"/alerts/{held}", headers=admin.headers)
        body = got.json()
        return bool(body["status"] == "dispatching" and body["assigned_agent_id"] is None)

    await eventually(back_to_dispatching, 1.0)
    steps = await timeline(http, admin, held)
    (unassigned,) = [e for e in steps if e["type"] == "unassigned"]
    assert unassigned["data"]["agent_id"] == str(stalker.id)
    assert unassigned["data"]["reason"].startswith("agent suspended")

    async def offer_withdrawn() -> bool:
        items = await timeline(http, admin, other)
        return any(e["type"] == "offer_withdrawn" for e in items)

    await eventually(offer_withdrawn, 1.0)
    # The agent is offline and unlisted; it cannot go on duty or sign in again.
    assert not await is_listed(api_entities, api_settings, stalker, spot)
    assert_problem(await http.get(f"/alerts/{held}", headers=stalker.headers), 401)


async def test_an_admin_reassigns_an_assigned_alert(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    first, second = await agents(api_pool, api_settings, 2)
    alert_id = await raise_alert(http, user, random_point())
    path = f"/alerts/{alert_id}"
    async with session(gateway, first) as (first_app, _), session(gateway, second) as (app, _):
        assigned = await http.post(
            f"{path}/assign", json={"agent_id": str(first.id)}, headers=admin.headers
        )
        assert assigned.status_code == 200, assigned.text
        await first_app.expect("alert.assigned", alert_id=alert_id)
        moved = await http.put(f"{path}/status", json={"status": "en_route"}, headers=first.headers)
        assert moved.status_code == 200, moved.text

        again = await http.post(
            f"{path}/assign", json={"agent_id": str(second.id)}, headers=admin.headers
        )
        assert again.status_code == 200, again.text
        assert (again.json()["status"], again.json()["assigned_agent_id"]) == (
            "assigned",
            str(second.id),
        )
        revoked = await first_app.expect("assignment.revoked", alert_id=alert_id)
        assert revoked["data"]["reason"] == "reassigned"
        await app.expect("alert.assigned", alert_id=alert_id)

    steps = [(e["type"], e["data"].get("agent_id")) for e in await timeline(http, admin, alert_id)]
    assert steps[-2:] == [("unassigned", str(first.id)), ("assigned", str(second.id))]
    # The new agent is on it; the one taken off may no longer move it along.
    refused = await http.put(f"{path}/status", json={"status": "on_scene"}, headers=first.headers)
    assert refused.status_code in (403, 404), refused.text


async def test_an_assigned_agent_not_en_route_by_the_deadline_calls_the_admins_in(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    # FAST_EN_ROUTE (conftest): an "other" alert's agent has 1.5 s to be on its way.
    (slow,) = await agents(api_pool, api_settings, 1)
    alert_id = await raise_alert(http, user, random_point(), alert_type="other")
    async with session(gateway, admin) as (portal, _):
        assigned = await http.post(
            f"/alerts/{alert_id}/assign", json={"agent_id": str(slow.id)}, headers=admin.headers
        )
        assert assigned.status_code == 200, assigned.text
        notice = await portal.expect("alert.escalated", wait_s=6.0, alert_id=alert_id)
    assert notice["data"]["reason"] == "en_route_overdue"
    assert notice["data"]["status"] == "assigned"  # still the agent's: the admins decide
    steps = [e["type"] for e in await timeline(http, admin, alert_id)]
    assert steps[-2:] == ["assigned", "en_route_overdue"]
    overdue = (await timeline(http, admin, alert_id))[-1]
    assert UUID(overdue["data"]["agent_id"]) == slow.id
