"""Chat (``alert.message``) and arrival estimates (``alert.eta``) against a live
gateway: real sockets, real Redis pushes, the alert entities on real Ray shards
committing to PostgreSQL."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import asyncpg
import httpx
import pytest

from actors.alert_messages import Duress
from actors.alert_state import AlertState
from actors.effects import EntityKind
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from geo.cells import haversine_m
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_ws import Client, Frame, create_alert, offer, session

pytestmark = pytest.mark.integration

#: What a silent alert's user, or one after a duress cancel, must never be sent.
HUSHED = ("alert.message", "alert.eta", "agent.location")
#: Where ``create_alert`` raises its alerts.
ALERT_LAT, ALERT_LON = -33.92, 18.42


@pytest.fixture
async def agent(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.AGENT)


@pytest.fixture
async def stranger(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.AGENT)


async def assigned(
    entities: EntityClient, user: Account, agent: Account, agent_ws: Client, *, silent: bool = False
) -> AlertState:
    alert = await create_alert(entities, user, silent=silent)
    await offer(entities, alert.id, agent)
    await agent_ws.send("offer.accept", {"alert_id": str(alert.id)}, id="acc")
    await agent_ws.expect("ack", ref="acc", status="assigned")
    return alert


async def received(client: Client, seconds: float) -> list[Frame]:
    """Every frame the socket gets within ``seconds`` (and what it had kept)."""
    frames, client.backlog = list(client.backlog), []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(await client.recv(wait_s=left))
        except TimeoutError:
            break
    return frames


async def say(client: Client, alert: AlertState, text: str, ref: str) -> Frame:
    await client.send("alert.message", {"alert_id": str(alert.id), "text": text}, id=ref)
    return await client.expect_any(("ack", "error"), ref=ref)


async def test_user_and_agent_chat_both_ways_and_admins_hear_it_all(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    agent: Account,
    admin: Account,
    stranger: Account,
    api_entities: EntityClient,
) -> None:
    async with (
        session(gateway, user) as (user_ws, _),
        session(gateway, agent) as (agent_ws, _),
        session(gateway, admin) as (admin_ws, _),
        session(gateway, stranger) as (stranger_ws, _),
    ):
        alert = await assigned(api_entities, user, agent, agent_ws)
        alert_id = str(alert.id)

        ack = await say(user_ws, alert, "  I am on the second floor\n", "u1")
        assert ack["type"] == "ack", ack
        assert ack["data"]["alert_id"] == alert_id
        message_id = ack["data"]["message_id"]
        pushed = await agent_ws.expect("alert.message", message_id=message_id)
        expected = {
            "alert_id": alert_id,
            "message_id": message_id,
            "sender_role": "user",
            "sender_id": str(user.id),
            "text": "I am on the second floor",
        }
        assert {k: pushed["data"][k] for k in expected} == expected
        assert (await admin_ws.expect("alert.message", message_id=message_id))["data"] == (
            pushed["data"]
        )
        assert (await user_ws.expect("alert.message", message_id=message_id))["data"] == (
            pushed["data"]
        )

        reply = await say(agent_ws, alert, "Two minutes away.\nStay inside.", "a1")
        assert reply["type"] == "ack", reply
        heard = await user_ws.expect("alert.message", message_id=reply["data"]["message_id"])
        assert heard["data"]["sender_role"] == "agent"
        assert heard["data"]["text"] == "Two minutes away.\nStay inside."

        # A dispatcher writes through REST; both sides hear it.
        posted = await http.post(
            f"/alerts/{alert_id}/messages", json={"text": "Police informed"}, headers=admin.headers
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["sender_role"] == "admin"
        await user_ws.expect("alert.message", message_id=posted.json()["message_id"])
        await agent_ws.expect("alert.message", message_id=posted.json()["message_id"])

        # Someone else's agent may not write, nor read.
        refused = await say(stranger_ws, alert, "hello", "s1")
        assert (refused["type"], refused["data"]["code"]) == ("error", "forbidden")
        hidden = await http.get(f"/alerts/{alert_id}/messages", headers=stranger.headers)
        assert hidden.status_code == 404

        # Too long, or a control character: 422 / invalid_data, nothing stored.
        long = await http.post(
            f"/alerts/{alert_id}/messages", json={"text": "x" * 501}, headers=user.headers
        )
        assert long.status_code == 422
        tab = await say(user_ws, alert, "a\tb", "u2")
        assert (tab["type"], tab["data"]["code"]) == ("error", "invalid_data")

        texts = ["I am on the second floor", "Two minutes away.\nStay inside.", "Police informed"]
        for reader in (user, agent, admin):
            listed = await http.get(f"/alerts/{alert_id}/messages", headers=reader.headers)
            assert listed.status_code == 200, listed.text
            assert [m["text"] for m in listed.json()["items"]] == texts
        timeline = await http.get(f"/alerts/{alert_id}/timeline", headers=admin.headers)
        entries = [i for i in timeline.json()["items"] if i["type"] == "message"]
        assert [e["data"]["text"] for e in entries] == texts
        assert entries[0]["actor_id"] == str(user.id)

        # Over: nobody writes any more.
        await agent_ws.send("alert.status", {"alert_id": alert_id, "status": "en_route"}, id="e")
        await agent_ws.expect("ack", ref="e")
        cancelled = await http.put(
            f"/alerts/{alert_id}/status", json={"status": "cancelled"}, headers=user.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        late = await say(user_ws, alert, "thanks", "u3")
        assert (late["type"], late["data"]["code"]) == ("error", "forbidden")
        over = await http.post(
            f"/alerts/{alert_id}/messages", json={"text": "thanks"}, headers=agent.headers
        )
        assert over.status_code == 403


async def test_the_user_sees_the_agent_coming_with_an_eta_recorded_in_the_timeline(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    agent: Account,
    admin: Account,
    api_entities: EntityClient,
) -> None:
    async with (
        session(gateway, user) as (user_ws, _),
        session(gateway, agent) as (agent_ws, _),
        session(gateway, admin) as (admin_ws, _),
    ):
        alert = await assigned(api_entities, user, agent, agent_ws)
        alert_id = str(alert.id)
        # About 1.1 km due south, heading north faster than the mode speed.
        fix = {"latitude": ALERT_LAT - 0.01, "longitude": ALERT_LON, "heading": 0.0}
        await agent_ws.send("location", {**fix, "speed_mps": 20.0})
        eta = await user_ws.expect("alert.eta", alert_id=alert_id)
        data = eta["data"]
        assert data["agent_id"] == str(agent.id)
        assert data["method"] == "great_circle"
        assert 1100 < data["distance_m"] < 1120
        distance = haversine_m(ALERT_LAT - 0.01, ALERT_LON, ALERT_LAT, ALERT_LON)
        assert data["eta_s"] == math.ceil(distance / 20.0)  # its own speed: heading there
        assert (await agent_ws.expect("alert.eta", alert_id=alert_id))["data"] == data
        assert (await admin_ws.expect("alert.eta", alert_id=alert_id))["data"] == data

        async def recorded() -> list[dict[str, Any]]:
            answer = await http.get(f"/alerts/{alert_id}/timeline", headers=user.headers)
            return [i for i in answer.json()["items"] if i["type"] == "eta"]

        deadline = time.monotonic() + 10
        while not (entries := await recorded()):
            assert time.monotonic() < deadline, "no eta entry in the timeline"
            await asyncio.sleep(0.1)
        assert entries[0]["data"] == {k: v for k, v in data.items() if k != "alert_id"}

        # Arrived: within 30 m the estimate is 0.
        await agent_ws.send("location", {"latitude": ALERT_LAT, "longitude": ALERT_LON})
        there = await user_ws.expect("alert.eta", alert_id=alert_id, eta_s=0)
        assert there["data"]["distance_m"] == 0.0


async def test_a_silent_alert_s_user_is_sent_no_agent_message_and_no_eta(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    agent: Account,
    admin: Account,
    api_entities: EntityClient,
) -> None:
    async with (
        session(gateway, user) as (user_ws, _),
        session(gateway, agent) as (agent_ws, _),
        session(gateway, admin) as (admin_ws, _),
    ):
        alert = await assigned(api_entities, user, agent, agent_ws, silent=True)
        alert_id = str(alert.id)
        mine = await say(user_ws, alert, "I cannot speak", "u1")
        assert mine["type"] == "ack", mine
        await agent_ws.expect("alert.message", message_id=mine["data"]["message_id"])
        theirs = await say(agent_ws, alert, "Coming quietly", "a1")
        await agent_ws.send("location", {"latitude": ALERT_LAT - 0.01, "longitude": ALERT_LON})
        # Published: the admins have both; the user's socket must have neither.
        await admin_ws.expect("alert.message", message_id=theirs["data"]["message_id"])
        await admin_ws.expect("alert.eta", alert_id=alert_id)
        seen = await received(user_ws, 1.0)
        assert [
            f for f in seen if f["type"] in ("alert.message", "alert.eta", "agent.location")
        ] == []
        listed = await http.get(f"/alerts/{alert_id}/messages", headers=user.headers)
        assert [m["text"] for m in listed.json()["items"]] == ["I cannot speak"]
        timeline = await http.get(f"/alerts/{alert_id}/timeline", headers=user.headers)
        types = [i["type"] for i in timeline.json()["items"]]
        assert "eta" not in types
        assert types.count("message") == 1
        truth = await http.get(f"/alerts/{alert_id}/messages", headers=admin.headers)
        assert len(truth.json()["items"]) == 2


async def test_after_a_duress_cancel_the_user_hears_nothing_and_writes_as_to_a_cancelled_alert(
    gateway: Gateway,
    http: httpx.AsyncClient,
    user: Account,
    agent: Account,
    admin: Account,
    api_entities: EntityClient,
) -> None:
    async with (
        session(gateway, user) as (user_ws, _),
        session(gateway, agent) as (agent_ws, _),
        session(gateway, admin) as (admin_ws, _),
    ):
        alert = await assigned(api_entities, user, agent, agent_ws)
        alert_id = str(alert.id)
        before = await say(user_ws, alert, "Someone is here", "u1")
        await user_ws.expect("alert.message", message_id=before["data"]["message_id"])
        await api_entities.ask(EntityKind.ALERT, alert_id, Duress(actor_id=user.id))
        await user_ws.expect("alert.updated", alert_id=alert_id, status="cancelled")
        theirs = await say(agent_ws, alert, "Still coming", "a1")
        assert theirs["type"] == "ack", theirs
        await agent_ws.send("location", {"latitude": ALERT_LAT - 0.01, "longitude": ALERT_LON})
        await admin_ws.expect("alert.message", message_id=theirs["data"]["message_id"])
        await admin_ws.expect("alert.eta", alert_id=alert_id)
        seen = await received(user_ws, 1.0)
        assert [
            f for f in seen if f["type"] in ("alert.message", "alert.eta", "agent.location")
        ] == []
        refused = await say(user_ws, alert, "help", "u2")
        assert (refused["type"], refused["data"]["code"]) == ("error", "forbidden")
        listed = await http.get(f"/alerts/{alert_id}/messages", headers=user.headers)
        assert [m["text"] for m in listed.json()["items"]] == ["Someone is here"]
