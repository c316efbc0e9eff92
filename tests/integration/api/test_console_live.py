"""The dispatcher console's live feed (issue 18), over real sockets against the live gateway.

Admin sockets hear ``alert.created``, the admin view in ``alert.updated`` and
``fleet.agents``; users and agents hear none of it. ``GET /admin/fleet`` and
``GET /alerts/{id}/candidates`` read the same fresh positions, and admins (only)
read ``duress`` on an alert.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import httpx
import pytest

from config.settings import Settings
from gateway.auth.principal import Role
from tests.geodesy import destination
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import assert_problem, make_available, random_point
from tests.integration.api.test_ws import (
    DURESS_PIN,
    Client,
    Frame,
    cancel,
    eventually,
    raise_alert,
    session,
    with_pins,
)

pytestmark = pytest.mark.integration

#: Frames only admin sockets may ever get.
ADMIN_ONLY = ("alert.created", "fleet.agents")


def mentions(frame: Frame, agent: Account) -> dict[str, Any] | None:
    """The item of ``agent`` in a ``fleet.agents`` frame, if it is there."""
    for item in frame["data"]["agents"]:
        if item["agent_id"] == str(agent.id):
            return dict(item)
    return None


async def fleet_item(admin: Client, agent: Account, wait_s: float = 5.0) -> dict[str, Any]:
    """The first ``fleet.agents`` item of ``agent`` the admin socket gets."""
    while True:
        frame = await admin.expect("fleet.agents", wait_s=wait_s)
        item = mentions(frame, agent)
        if item is not None:
            return item


def seen_by(client: Client, frame_type: str) -> list[Frame]:
    return [f for f in client.backlog if f["type"] == frame_type]


async def test_an_admin_socket_hears_a_new_alert_and_its_assignment_and_the_user_does_not(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    console, _ = await sockets.enter_async_context(session(gateway, admin))
    app, _ = await sockets.enter_async_context(session(gateway, user))
    alert_id = await raise_alert(http, user)
    created = await console.expect("alert.created", alert_id=alert_id)
    data = created["data"]
    assert (data["id"], data["status"], data["alert_type"]) == (alert_id, "dispatching", "medical")
    assert (data["duress"], data["escalation_step"], data["user_id"]) == (False, 0, str(user.id))
    assigned = await http.post(
        f"/alerts/{alert_id}/assign", json={"agent_id": str(agent.id)}, headers=admin.headers
    )
    assert assigned.status_code == 200, assigned.text
    updated = await console.expect("alert.updated", alert_id=alert_id, status="assigned")
    data = updated["data"]
    assert data["assigned_agent_id"] == str(agent.id)
    assert data["previous_status"] == "dispatching"
    assert data["duress"] is False
    assert {"alert_type", "latitude", "longitude", "silent", "created_at", "updated_at"} <= set(
        data
    )
    assert {"escalation_step", "offered_at"} <= set(data)
    # The user hears the assignment as ever: no admin view, no alert.created.
    mine = await app.expect("alert.updated", alert_id=alert_id, status="assigned")
    assert set(mine["data"]) == {
        "alert_id",
        "status",
        "previous_status",
        "assigned_agent_id",
        "updated_at",
    }
    await app.ping()
    assert seen_by(app, "alert.created") == []


async def test_fleet_agents_brings_a_move_once_coalesced_and_only_to_admins(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    console, _ = await sockets.enter_async_context(session(gateway, admin))
    app, _ = await sockets.enter_async_context(session(gateway, user))
    where = random_point()
    field = await make_available(gateway, sockets, agent, where)
    first = await fleet_item(console, agent)
    assert (first["status"], first["available"]) == ("available", True)
    assert (first["latitude"], first["longitude"]) == pytest.approx(where)
    # Two moves inside one interval: one frame, with the second position.
    one, two = destination(*where, 100, 90), destination(*where, 200, 90)
    await field.send("location", {"latitude": one[0], "longitude": one[1], "heading": 90.0})
    await field.send(
        "location",
        {"latitude": two[0], "longitude": two[1], "heading": 91.0, "speed_mps": 2.5},
    )
    await field.ping()
    moved = await fleet_item(console, agent)
    assert (moved["latitude"], moved["longitude"]) == pytest.approx(two)
    assert (moved["heading"], moved["speed_mps"]) == (91.0, 2.5)
    # Going off duty is sent too (the console greys the agent).
    await field.send("agent.status", {"status": "offline"}, id="off")
    await field.expect("ack", ref="off", status="offline")
    offline = await fleet_item(console, agent)
    assert (offline["status"], offline["available"]) == ("offline", False)
    assert (offline["latitude"], offline["longitude"]) == pytest.approx(two)
    # Neither the agent nor a user hears of the fleet or of new alerts.
    for client in (field, app):
        await client.ping()
        for frame_type in ADMIN_ONLY:
            assert seen_by(client, frame_type) == []


async def test_admin_fleet_lists_the_fresh_position_and_is_for_admins_only(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    where = random_point()
    await make_available(gateway, sockets, agent, where)

    async def listed() -> dict[str, Any] | None:
        answer = await http.get("/admin/fleet", headers=admin.headers)
        assert answer.status_code == 200, answer.text
        items = {item["agent_id"]: item for item in answer.json()["items"]}
        return items.get(str(agent.id))

    async def located() -> bool:
        return await listed() is not None

    await eventually(located)
    item = await listed()
    assert item is not None
    assert (item["latitude"], item["longitude"]) == pytest.approx(where)
    assert (item["status"], item["available"], item["vetting"]) == ("available", True, "approved")
    assert item["full_name"]
    for who in (user, agent):
        refused = await http.get("/admin/fleet", headers=who.headers)
        assert_problem(refused, 403)


async def test_candidates_are_ranked_nearest_first_admins_only_and_404_for_an_unknown_alert(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    where = random_point()
    near = await make_account(api_pool, api_settings, Role.AGENT)
    far = await make_account(api_pool, api_settings, Role.AGENT)
    await make_available(gateway, sockets, far, destination(*where, 900, 0))
    await make_available(gateway, sockets, near, destination(*where, 150, 180))
    body = {"latitude": where[0], "longitude": where[1], "alert_type": "fire"}
    created = await http.post("/alerts", json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]

    async def ranking() -> list[str]:
        answer = await http.get(
            f"/alerts/{alert_id}/candidates", params={"limit": 2}, headers=admin.headers
        )
        assert answer.status_code == 200, answer.text
        return [item["agent_id"] for item in answer.json()["items"]]

    async def both() -> bool:
        # Preselected on agents.last_location, which the agents' snapshots fill coalesced.
        return await ranking() == [str(near.id), str(far.id)]

    await eventually(both, wait_s=api_settings.actors.flush_interval_s + 10.0)
    answer = await http.get(f"/alerts/{alert_id}/candidates", headers=admin.headers)
    first, second = answer.json()["items"][:2]
    assert first["distance_m"] == pytest.approx(150, abs=2)
    assert second["distance_m"] == pytest.approx(900, abs=2)
    assert first["full_name"]
    assert first["last_seen_at"] is not None
    refused = await http.get(f"/alerts/{alert_id}/candidates", headers=user.headers)
    assert_problem(refused, 403)
    unknown = await http.get(
        "/alerts/00000000-0000-4000-8000-000000000000/candidates", headers=admin.headers
    )
    assert_problem(unknown, 404)
    too_many = await http.get(
        f"/alerts/{alert_id}/candidates", params={"limit": 51}, headers=admin.headers
    )
    assert_problem(too_many, 422)


async def test_an_agent_just_on_duty_is_a_candidate_at_once(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    """Its first position is only in Redis until its snapshot is flushed
    (``actors.flush_interval_s``, 5 s); a dispatcher assigning right away still
    finds it (a browser test had found "No responder with a known position").
    "Right away": once the gateway's next flush of fixes (every
    ``geofence.batch_linger_ms``, 25 ms) has written the position to Redis, which
    the socket's ``pong`` does not wait for (CI once asked within that window)."""
    where = random_point()
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    await make_available(gateway, sockets, agent, destination(*where, 300, 90))
    column = await api_pool.fetchval("SELECT last_location FROM agents WHERE id = $1", agent.id)
    assert column is None, "the snapshot was flushed already: the test proves nothing"
    body = {"latitude": where[0], "longitude": where[1], "alert_type": "fire"}
    created = await http.post("/alerts", json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    firsts: list[dict[str, Any]] = []

    async def listed_first() -> bool:
        answer = await http.get(
            f"/alerts/{created.json()['id']}/candidates",
            params={"limit": 1},
            headers=admin.headers,
        )
        assert answer.status_code == 200, answer.text
        firsts[:] = answer.json()["items"]
        return bool(firsts) and firsts[0]["agent_id"] == str(agent.id)

    await eventually(listed_first, wait_s=2.0)
    assert firsts[0]["distance_m"] == pytest.approx(300, abs=2)


async def test_admins_read_duress_on_a_duress_cancelled_alert_and_its_user_does_not(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    await with_pins(http, api_pool, api_settings, user)
    console, _ = await sockets.enter_async_context(session(gateway, admin))
    alert_id = await raise_alert(http, user)
    answer = await cancel(http, user, alert_id, DURESS_PIN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    assert answer.json()["duress"] is None
    theirs = await http.get(f"/alerts/{alert_id}", headers=user.headers)
    assert theirs.json()["status"] == "cancelled"
    assert theirs.json()["duress"] is None
    truth = await http.get(f"/alerts/{alert_id}", headers=admin.headers)
    assert (truth.json()["status"], truth.json()["duress"]) == ("escalated", True)
    assert truth.json()["escalation_step"] == 0
    # And the console is pushed the truth.
    await console.expect("alert.updated", alert_id=alert_id, status="escalated", duress=True)
