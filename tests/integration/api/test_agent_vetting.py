"""Agent vetting over real HTTP and WebSocket (issue 15): a self-registered agent is
pending and is never offered an alert; an admin approves or suspends it, or
issues an invite with which an agent registers approved; every decision is in
the outbox on ``audit-logs``."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import PASSWORD, ROOMY, gateway_with, register, unique_email
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import is_listed
from tests.integration.api.test_ws import Client, eventually, session

pytestmark = pytest.mark.integration

AUDIT = "audit-logs"


@pytest.fixture(scope="module")
async def vetting_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(vetting_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=vetting_gateway.base_url, timeout=20) as client:
        yield client


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def agent_login(http: httpx.AsyncClient, email: str) -> Account:
    """The agent's session as a login leaves it (an ``Account`` the socket helpers take)."""
    response = await http.post("/auth/login/agent", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    me = await http.get(
        "/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    return Account(UUID(me.json()["id"]), Role.AGENT, response.json()["access_token"])


async def audit_rows(pool: asyncpg.Pool, key: UUID | str, event_type: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT type, key, data FROM outbox WHERE topic = $1 AND key = $2 AND type = $3",
        AUDIT,
        str(key),
        event_type,
    )
    return rows


async def roster(
    http: httpx.AsyncClient, admin: Account, status: str | None
) -> list[dict[str, Any]]:
    """Every agent of the roster (all pages), optionally of one vetting status."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100}
        if status is not None:
            params["status"] = status
        if cursor is not None:
            params["cursor"] = cursor
        page = await http.get("/admin/agents", params=params, headers=admin.headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


async def roster_entry(http: httpx.AsyncClient, admin: Account, agent_id: UUID) -> dict[str, Any]:
    [entry] = [a for a in await roster(http, admin, None) if a["id"] == str(agent_id)]
    return entry


def random_spot() -> tuple[float, float]:
    # Far from every other test's agents, so dispatch here meets only ours.
    return round(random.uniform(-50, 50), 6), round(random.uniform(-160, 160), 6)


async def on_duty_at(
    client: Client, agent: Account, spot: tuple[float, float], entities: EntityClient, res: int
) -> None:
    """The agent goes available at ``spot`` and is listed in the region there."""
    await client.send("agent.status", {"status": "available"}, id="on")
    await client.expect("ack", ref="on", status="available")
    await client.send("location", {"latitude": spot[0], "longitude": spot[1]})
    await client.ping()
    await entities.flush()

    async def listed() -> bool:
        return await is_listed(entities, res, agent.id, spot)

    await eventually(listed, 15.0)


async def raise_alert(http: httpx.AsyncClient, user: Account, spot: tuple[float, float]) -> str:
    body = {"latitude": spot[0], "longitude": spot[1], "alert_type": "fire"}
    created = await http.post("/alerts", json=body, headers=user.headers)
    assert created.status_code == 201, created.text
    alert_id: str = created.json()["id"]
    return alert_id


# --- pending agents are never offered an alert ------------------------------------------


async def test_a_pending_agent_cannot_go_on_duty_until_approved(
    http: httpx.AsyncClient,
    vetting_gateway: Gateway,
    admin: Account,
    user: Account,
    api_entities: EntityClient,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    email, registered = await register(http, "agent")
    assert registered["vetting"] == "pending"
    agent = await agent_login(http, email)  # a pending agent may sign in
    resolution = api_settings.actors.region_resolution
    near_first = random_spot()
    async with session(vetting_gateway, agent) as (client, _):
        for status in ("available", "busy", "on_break"):
            await client.send("agent.status", {"status": status}, id=status)
            refused = await client.expect("error", ref=status)
            assert refused["data"]["code"] == "forbidden"
            assert "pending approval by an administrator" in refused["data"]["message"]
        await client.send("agent.status", {"status": "offline"}, id="off")
        await client.expect("ack", ref="off", status="offline")  # going off duty is fine
        await client.send("location", {"latitude": near_first[0], "longitude": near_first[1]})
        await client.ping()
        await api_entities.flush()

        first = await raise_alert(http, user, near_first)
        with pytest.raises(AssertionError, match=r"no alert\.offer"):
            await client.expect("alert.offer", wait_s=4.0, alert_id=first)
        entry = await roster_entry(http, admin, agent.id)
        assert (entry["vetting"], entry["availability"]) == ("pending", "offline")

        approved = await http.post(
            f"/admin/agents/{agent.id}/approve",
            json={"reason": "badge checked"},
            headers=admin.headers,
        )
        assert approved.status_code == 200, approved.text
        assert approved.json()["vetting"] == "approved"
        assert approved.json()["changed"] is True
        assert approved.json()["vetted_by"] == str(admin.id)
        again = await http.post(f"/admin/agents/{agent.id}/approve", headers=admin.headers)
        assert again.status_code == 200, again.text
        assert again.json()["changed"] is False  # idempotent: nothing new recorded
        assert again.json()["vetting_reason"] == "badge checked"

        # One open alert per user: the first is closed before the second press.
        closed = await http.put(
            f"/alerts/{first}/status", json={"status": "cancelled"}, headers=user.headers
        )
        assert closed.status_code == 200, closed.text
        # Same socket, no reconnect: the vetting is read per frame.
        near_second = random_spot()
        await on_duty_at(client, agent, near_second, api_entities, resolution)
        second = await raise_alert(http, user, near_second)
        offered = await client.expect("alert.offer", wait_s=15.0, alert_id=second)
        assert offered["data"]["alert_type"] == "fire"

    [row] = await audit_rows(api_pool, agent.id, "agent.approved")  # once, not per repeat
    data = row["data"]
    assert (data["agent_id"], data["admin_id"]) == (str(agent.id), str(admin.id))
    assert (data["reason"], data["previous"]) == ("badge checked", "pending")
    assert data["at"]

    async def located() -> bool:  # the socket closed: offline, where it was last seen
        entry = await roster_entry(http, admin, agent.id)
        position = entry["last_position"] or {}
        return entry["availability"] == "offline" and position.get("latitude") == (
            pytest.approx(near_second[0])
        )

    await eventually(located, 15.0)
    entry = await roster_entry(http, admin, agent.id)
    assert entry["last_position"]["longitude"] == pytest.approx(near_second[1])
    assert entry["last_seen_at"] is not None


# --- invites ----------------------------------------------------------------------------


async def test_an_invite_registers_an_approved_agent_once(
    http: httpx.AsyncClient,
    vetting_gateway: Gateway,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
) -> None:
    is_problem(await http.post("/admin/agent-invites", headers=user.headers), 403)
    issued = await http.post("/admin/agent-invites", json={}, headers=admin.headers)
    assert issued.status_code == 201, issued.text
    code, invite_id = issued.json()["code"], issued.json()["id"]
    assert len(code) >= 22
    stored = await api_pool.fetchrow(
        "SELECT code_hash = sha256(convert_to($2, 'UTF8')) AS hashed, "
        "expires_at - created_at AS ttl FROM agent_invites WHERE id = $1",
        UUID(invite_id),
        code,
    )
    assert stored is not None
    assert stored["hashed"] is True  # only the hash is kept
    assert stored["ttl"].days == 7

    email, registered = await register(http, "agent", invite_code=code)
    assert registered["vetting"] == "approved"
    agent = await agent_login(http, email)
    async with session(vetting_gateway, agent) as (client, _):
        await client.send("agent.status", {"status": "available"}, id="on")
        await client.expect("ack", ref="on", status="available")
        await client.send("agent.status", {"status": "offline"}, id="off")
        await client.expect("ack", ref="off", status="offline")
    used = await api_pool.fetchrow(
        "SELECT used_by, used_at FROM agent_invites WHERE id = $1", UUID(invite_id)
    )
    assert used is not None
    assert used["used_by"] == agent.id

    reuse_email = unique_email()
    again = await http.post(
        "/auth/register/agent",
        json={
            "email": reuse_email,
            "password": PASSWORD,
            "full_name": "Again",
            "invite_code": code,
        },
    )
    body = is_problem(again, 422)
    assert body["errors"][0]["loc"] == ["body", "invite_code"]
    for bad in ("not-a-code", code + "x"):
        bad_email = unique_email()
        refused = await http.post(
            "/auth/register/agent",
            json={"email": bad_email, "password": PASSWORD, "full_name": "Bad", "invite_code": bad},
        )
        is_problem(refused, 422)
        count = await api_pool.fetchval("SELECT count(*) FROM users WHERE email = $1", bad_email)
        assert count == 0
    assert await api_pool.fetchval("SELECT count(*) FROM users WHERE email = $1", reuse_email) == 0

    [issued_row] = await audit_rows(api_pool, invite_id, "agent.invite_issued")
    [used_row] = await audit_rows(api_pool, agent.id, "agent.invite_used")
    assert issued_row["data"]["admin_id"] == str(admin.id)
    assert used_row["data"]["admin_id"] == str(admin.id)
    assert used_row["data"]["invite_id"] == invite_id
    for row in (issued_row, used_row):
        assert code not in json.dumps(row["data"])  # never the code itself


async def test_an_expired_invite_creates_no_account(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool
) -> None:
    issued = await http.post(
        "/admin/agent-invites", json={"expires_in_s": 3600}, headers=admin.headers
    )
    assert issued.status_code == 201, issued.text
    await api_pool.execute(
        "UPDATE agent_invites SET created_at = now() - interval '2 hours', "
        "expires_at = now() - interval '1 hour' WHERE id = $1",
        UUID(issued.json()["id"]),
    )
    email = unique_email()
    body = {"email": email, "password": PASSWORD, "full_name": "Late"}
    late = await http.post(
        "/auth/register/agent", json={**body, "invite_code": issued.json()["code"]}
    )
    is_problem(late, 422)
    assert await api_pool.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


@pytest.mark.parametrize("body", [{"expires_in_s": 0}, {"expires_in_s": 10**9}, {"code": "x"}])
async def test_invite_bounds(http: httpx.AsyncClient, admin: Account, body: dict[str, Any]) -> None:
    is_problem(await http.post("/admin/agent-invites", json=body, headers=admin.headers), 422)


# --- roster -----------------------------------------------------------------------------


async def test_the_roster_lists_agents_by_vetting_for_admins_only(
    http: httpx.AsyncClient,
    admin: Account,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    badge = f"B-{uuid.uuid4().hex[:8]}"
    pending_email, pending = await register(http, "agent", badge_number=badge)
    approved = await make_account(api_pool, api_settings, Role.AGENT)
    suspended_email, suspended = await register(http, "agent")
    stop = await http.post(
        f"/admin/agents/{suspended['id']}/suspend", json={"reason": "x"}, headers=admin.headers
    )
    assert stop.status_code == 200, stop.text
    # The approved agent holds an alert: the roster says which.
    alert = await http.post(
        "/alerts",
        json={"latitude": random_spot()[0], "longitude": random_spot()[1], "alert_type": "other"},
        headers=user.headers,
    )
    assert alert.status_code == 201, alert.text
    alert_id = alert.json()["id"]
    assign = await http.post(
        f"/alerts/{alert_id}/assign", json={"agent_id": str(approved.id)}, headers=admin.headers
    )
    assert assign.status_code == 200, assign.text

    by_status = {
        s: {a["id"] for a in await roster(http, admin, s)}
        for s in ("pending", "approved", "suspended")
    }
    assert pending["id"] in by_status["pending"]
    assert str(approved.id) in by_status["approved"]
    assert suspended["id"] in by_status["suspended"]
    assert not (by_status["pending"] & by_status["approved"])
    assert not (by_status["approved"] & by_status["suspended"])
    everyone = {a["id"]: a for a in await roster(http, admin, None)}
    assert set(everyone) == by_status["pending"] | by_status["approved"] | by_status["suspended"]

    entry = everyone[pending["id"]]
    assert (entry["email"], entry["full_name"], entry["badge_number"]) == (
        pending_email,
        "Test Person",
        badge,
    )
    assert (entry["vetting"], entry["availability"], entry["current_alert_id"]) == (
        "pending",
        "offline",
        None,
    )
    assert everyone[str(approved.id)]["current_alert_id"] == alert_id
    assert everyone[suspended["id"]]["vetting_reason"] == "x"
    assert everyone[suspended["id"]]["vetted_at"] is not None
    assert suspended_email == everyone[suspended["id"]]["email"]

    # A pending or suspended agent may not be assigned an alert by hand either.
    other = await http.post(
        "/alerts",
        json={"latitude": random_spot()[0], "longitude": random_spot()[1], "alert_type": "other"},
        headers=user.headers,
    )
    for refused in (pending["id"], suspended["id"]):
        answer = await http.post(
            f"/alerts/{other.json()['id']}/assign",
            json={"agent_id": refused},
            headers=admin.headers,
        )
        is_problem(answer, 409)

    for headers in (user.headers, approved.headers):
        is_problem(await http.get("/admin/agents", headers=headers), 403)
        is_problem(await http.post(f"/admin/agents/{pending['id']}/approve", headers=headers), 403)
    is_problem(await http.get("/admin/agents"), 401)
    for params in ({"status": "asleep"}, {"cursor": "bm9wZQ"}, {"limit": 0}):
        is_problem(await http.get("/admin/agents", params=params, headers=admin.headers), 422)


# --- suspension -------------------------------------------------------------------------


async def test_a_suspended_agent_cannot_sign_in_until_reinstated(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool
) -> None:
    email, registered = await register(http, "agent")
    agent_id = UUID(registered["id"])
    approve = await http.post(f"/admin/agents/{agent_id}/approve", headers=admin.headers)
    assert approve.status_code == 200, approve.text
    login = await http.post("/auth/login/agent", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get("/auth/me", headers=headers)).status_code == 200

    suspended = await http.post(
        f"/admin/agents/{agent_id}/suspend",
        json={"reason": "  complaint 42 "},
        headers=admin.headers,
    )
    assert suspended.status_code == 200, suspended.text
    assert (suspended.json()["vetting"], suspended.json()["vetting_reason"]) == (
        "suspended",
        "complaint 42",
    )
    repeat = await http.post(
        f"/admin/agents/{agent_id}/suspend", json={"reason": "again"}, headers=admin.headers
    )
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["changed"] is False

    # Its sessions are over, its refresh token spent, and it may not sign in again.
    is_problem(await http.get("/auth/me", headers=headers), 401)
    refresh = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    is_problem(refresh, 401)
    refused = await http.post("/auth/login/agent", json={"email": email, "password": PASSWORD})
    body = is_problem(refused, 403)
    assert body["title"] == "Agent account suspended"
    assert "suspended" in body["detail"]
    wrong = await http.post("/auth/login/agent", json={"email": email, "password": "wrong" * 4})
    is_problem(wrong, 401)  # without the password, nothing is revealed

    reinstated = await http.post(f"/admin/agents/{agent_id}/approve", headers=admin.headers)
    assert reinstated.json()["vetting"] == "approved"
    login = await http.post("/auth/login/agent", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text

    decisions = await api_pool.fetch(
        "SELECT type, data FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id",
        AUDIT,
        str(agent_id),
    )
    assert [(r["type"], r["data"]["previous"]) for r in decisions] == [
        ("agent.approved", "pending"),
        ("agent.suspended", "approved"),
        ("agent.approved", "suspended"),
    ]
    assert decisions[1]["data"]["reason"] == "complaint 42"
    assert {r["data"]["admin_id"] for r in decisions} == {str(admin.id)}


@pytest.mark.parametrize(
    "body", [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 501}, {"why": "x"}]
)
async def test_suspend_needs_a_reason(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool, body: dict[str, Any] | None
) -> None:
    _, registered = await register(http, "agent")
    answer = await http.post(
        f"/admin/agents/{registered['id']}/suspend", json=body, headers=admin.headers
    )
    is_problem(answer, 422)
    vetting = await api_pool.fetchval(
        "SELECT vetting FROM agents WHERE id = $1", UUID(registered["id"])
    )
    assert vetting == "pending"


async def test_unknown_agents_are_404(
    http: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    for target in (uuid.uuid4(), user.id):  # nobody, and a user who is no agent
        approve = await http.post(f"/admin/agents/{target}/approve", headers=admin.headers)
        is_problem(approve, 404)
        suspend = await http.post(
            f"/admin/agents/{target}/suspend", json={"reason": "x"}, headers=admin.headers
        )
        is_problem(suspend, 404)
    is_problem(await http.post("/admin/agents/not-a-uuid/approve", headers=admin.headers), 422)
