"""Web push end to end over the real services: devices registered through the
live gateway, alert events through the outbox relay and Kafka to the
notifier's web push worker, which encrypts each push with VAPID and POSTs it
to a REAL local HTTP server standing in for the browsers' push service. The
test decrypts each body with the subscription's private key (``http_ece``,
as a browser does) and checks the payload.

Shown: an offer reaches the agent without the position or the description;
each status change reaches the user, and an admin's cancel the agent that
held the alert; a 410 from the push service deletes that subscription; a
silent alert's user, a duress-cancelled alert's user and a user whose app is
open (a live socket) get nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.alert_messages import AcceptOffer, Cancel, Duress, OfferMade
from actors.alert_state import ActorRole
from actors.effects import EntityKind
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from tests.fakes.webpush import FakeBrowser
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway, serving
from tests.integration.api.test_alerts import eventually
from tests.integration.api.test_notifications import _resolve, holds, relay_and_notifier
from tests.integration.api.test_ws import create_alert, session
from tests.integration.reachable import agents_reachable
from tests.local import LOOPBACK, free_port

pytestmark = pytest.mark.integration


@dataclass
class PushService:
    """A local push service: keeps each POST per subscription name and answers
    ``statuses[name]`` (201 when not set)."""

    statuses: dict[str, int] = field(default_factory=dict)
    hits: dict[str, list[tuple[dict[str, str], bytes]]] = field(default_factory=dict)

    async def endpoint(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.hits.setdefault(name, []).append((dict(request.headers), await request.body()))
        return Response(status_code=self.statuses.get(name, 201))

    def got(self, name: str) -> list[tuple[dict[str, str], bytes]]:
        return self.hits.get(name, [])


@pytest.fixture
async def push_service() -> AsyncIterator[tuple[PushService, str]]:
    found = PushService()
    app = Starlette(routes=[Route("/push/{name}", found.endpoint, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "the local push service did not start"
    try:
        yield found, f"http://{LOOPBACK}:{port}/push"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def push_settings(api_settings: Settings) -> Settings:
    """Loopback http endpoints allowed (the local push service), fast retries."""
    return api_settings.model_copy(
        update={
            "notify": api_settings.notify.model_copy(
                update={"webpush_allow_loopback_http": True, "base_delay_s": 0.05}
            )
        }
    )


@pytest.fixture
async def push_gateway(
    push_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with serving(push_settings, api_entities) as gateway:
        yield gateway


async def register(gateway: Gateway, account: Account, token: str) -> str:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http:
        response = await http.post(
            "/users/devices", json={"platform": "web", "push_token": token}, headers=account.headers
        )
    assert response.status_code == 201, response.text
    device_id: str = response.json()["id"]
    return device_id


async def device_ids(gateway: Gateway, account: Account) -> set[str]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http:
        response = await http.get("/users/devices", headers=account.headers)
    assert response.status_code == 200, response.text
    return {d["id"] for d in response.json()["items"]}


async def test_offers_and_status_changes_are_pushed_only_where_they_should_be(
    api_pool: asyncpg.Pool,
    push_settings: Settings,
    api_entities: EntityClient,
    push_gateway: Gateway,
    push_service: tuple[PushService, str],
) -> None:
    service, base = push_service
    service.statuses["user-gone"] = 410
    user, silent, duress, online = [
        await make_account(api_pool, push_settings, Role.USER) for _ in range(4)
    ]
    agent = await make_account(api_pool, push_settings, Role.AGENT)
    admin = await make_account(api_pool, push_settings, Role.ADMIN)
    browsers = {name: FakeBrowser() for name in ("user", "user-gone", "agent", "s", "d", "o")}
    owners = {
        "user": user,
        "user-gone": user,
        "agent": agent,
        "s": silent,
        "d": duress,
        "o": online,
    }
    ids = {
        name: await register(push_gateway, owners[name], browsers[name].token(f"{base}/{name}"))
        for name in browsers
    }

    def payloads(name: str) -> list[dict[str, Any]]:
        return [browsers[name].decrypt(body) for _headers, body in service.got(name)]

    def cancelled_for_agent(alert_id: str) -> bool:
        return any(
            p["alert_id"] == alert_id and p["title"] == "Alert cancelled" for p in payloads("agent")
        )

    # Only this test's events: what earlier tests left in the outbox stays unsent.
    await api_pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
    async with relay_and_notifier(push_settings, api_entities), agents_reachable(push_settings):
        # Each of these three ends with an admin's cancel, which tells the agent
        # ("Alert cancelled"): once that push is in, every earlier status change
        # of the alert (same partition, in order) was handled, pushed or not.
        # Told nothing: a silent alert's user, and a user after a duress cancel.
        hushed = await create_alert(api_entities, silent, silent=True)
        await _accept_then_cancel(api_entities, hushed.id, agent.id, admin.id)
        coerced = await create_alert(api_entities, duress)
        await api_entities.ask(EntityKind.ALERT, str(coerced.id), Duress(duress.id, "ok"))
        await _accept_then_cancel(api_entities, coerced.id, agent.id, admin.id)
        # Told nothing either: the app is open (a live socket on the gateway).
        async with session(push_gateway, online):
            watched = await create_alert(api_entities, online)
            await _accept_then_cancel(api_entities, watched.id, agent.id, admin.id)
            await eventually(holds(lambda: cancelled_for_agent(str(watched.id))), 30)
        await eventually(holds(lambda: cancelled_for_agent(str(hushed.id))), 30)
        await eventually(holds(lambda: cancelled_for_agent(str(coerced.id))), 30)
        assert service.got("s") == []
        assert service.got("d") == []
        assert service.got("o") == []

        # The normal case.
        alert = await create_alert(api_entities, user)
        await _resolve(api_entities, alert, agent.id)

        statuses = ["assigned", "en_route", "on_scene", "resolved"]
        await eventually(holds(lambda: len(payloads("user")) == len(statuses)), 30)
        told = payloads("user")
        assert [p["type"] for p in told] == ["alert.updated"] * len(statuses)
        assert {p["alert_id"] for p in told} == {str(alert.id)}
        assert [p["title"] for p in told] == [
            "A responder is coming",
            "Your responder is on the way",
            "Your responder has arrived",
            "Your alert is resolved",
        ]
        headers, _body = service.got("user")[0]
        assert headers["content-encoding"] == "aes128gcm"
        assert headers["authorization"].startswith("vapid t=")

        # The agent was offered every alert (pattern listeners are not an open app).
        def offers() -> dict[str, dict[str, Any]]:
            return {p["alert_id"]: p for p in payloads("agent") if p["type"] == "alert.offer"}

        every = {str(a.id) for a in (hushed, coerced, watched, alert)}
        await eventually(holds(lambda: set(offers()) == every), 30)
        assert offers()[str(alert.id)] == {
            "type": "alert.offer",
            "alert_id": str(alert.id),
            "title": "Incoming alert",
            "body": "Medical alert nearby. Open the app to accept or decline.",
        }
        raw = str(payloads("agent"))
        for secret in ("-33.92", "18.42", "test", "API Test"):
            assert secret not in raw  # no position, description or name

        # The push service said 410 for one subscription: it is gone.
        assert service.got("user-gone")
        await eventually(lambda: _only(push_gateway, user, {ids["user"]}))


async def _accept_then_cancel(
    entities: EntityClient, alert_id: UUID, agent_id: UUID, admin_id: UUID
) -> None:
    await entities.ask(EntityKind.ALERT, str(alert_id), OfferMade(agent_id))
    await entities.ask(EntityKind.ALERT, str(alert_id), AcceptOffer(agent_id))
    await entities.ask(
        EntityKind.ALERT, str(alert_id), Cancel(admin_id, "test over", ActorRole.ADMIN)
    )


async def _only(gateway: Gateway, account: Account, expected: set[str]) -> bool:
    return await device_ids(gateway, account) == expected
