"""Revocation reaches open sockets: ending a session closes its ``/ws`` sockets
with 4401 within a second, on every gateway replica (real Redis, PostgreSQL,
Ray shards, real WebSockets)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from gateway.auth.tokens import issue_access_token
from persistence.drivers.redis import create_redis
from persistence.stores.sessions import RedisSessions
from tests.integration.api.authkit import PASSWORD, ROOMY, gateway_with, login, signed_up
from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration

#: The behaviour's deadline: a revoked socket is closed within this.
WITHIN_S = 1.0
UNAUTHENTICATED = 4401


@pytest.fixture(scope="module")
async def revoke_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(revoke_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=revoke_gateway.base_url, timeout=20) as client:
        yield client


@asynccontextmanager
async def authed_socket(gateway: Gateway, access_token: str) -> AsyncIterator[ClientConnection]:
    """A socket past ``auth.ok``."""
    async with connect(gateway.ws_url, proxy=None, open_timeout=10) as ws:
        await ws.send(json.dumps({"type": "auth", "data": {"token": access_token}}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "auth.ok":
                break
        yield ws


async def closed_within(ws: ClientConnection, wait_s: float) -> tuple[int | None, str]:
    """The server's close code and reason, if it closes within ``wait_s``
    (frames before the close are read and dropped); fails otherwise."""

    async def drain() -> None:
        while True:
            await ws.recv()

    try:
        async with asyncio.timeout(wait_s):
            await drain()
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            return None, ""
        return closed.rcvd.code, closed.rcvd.reason
    except TimeoutError:
        raise AssertionError(f"the socket was still open {wait_s}s later") from None
    raise AssertionError("unreachable")


async def still_open(ws: ClientConnection) -> None:
    """The socket answers a ping."""
    await ws.send(json.dumps({"type": "ping", "id": "alive", "data": {}}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if frame["type"] == "pong":
            return


# --- logout and refresh reuse -------------------------------------------------------------


async def test_logout_closes_the_sessions_open_socket_with_4401(
    http: httpx.AsyncClient, revoke_gateway: Gateway
) -> None:
    session = await signed_up(http)
    other = await login(http, session.email)  # another device of the same account
    async with (
        authed_socket(revoke_gateway, session.access_token) as ws,
        authed_socket(revoke_gateway, other["access_token"]) as other_ws,
    ):
        assert (await http.post("/auth/logout", headers=session.headers)).status_code == 204
        code, reason = await closed_within(ws, WITHIN_S)
        assert code == UNAUTHENTICATED
        assert "revoked" in reason
        # Only that session's sockets: the other device stays connected.
        await still_open(other_ws)


async def test_refresh_token_reuse_closes_the_familys_socket_with_4401(
    http: httpx.AsyncClient, revoke_gateway: Gateway
) -> None:
    session = await signed_up(http)
    rotated = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    assert rotated.status_code == 200, rotated.text
    fresh = rotated.json()["access_token"]
    async with authed_socket(revoke_gateway, fresh) as ws:
        # The spent token presented again (a thief's copy): the family is revoked.
        reused = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
        assert reused.status_code == 401
        code, _ = await closed_within(ws, WITHIN_S)
        assert code == UNAUTHENTICATED


async def test_a_password_change_closes_every_socket_of_the_account_with_4401(
    http: httpx.AsyncClient, revoke_gateway: Gateway
) -> None:
    session = await signed_up(http)
    other = await login(http, session.email)  # another device of the same account
    new_password = "an0ther-Correct-horse-battery"
    async with (
        authed_socket(revoke_gateway, session.access_token) as ws,
        authed_socket(revoke_gateway, other["access_token"]) as other_ws,
    ):
        # The wrong current password changes nothing and closes nothing.
        wrong = await http.post(
            "/auth/password",
            json={"current_password": "not-the-password", "new_password": new_password},
            headers=session.headers,
        )
        assert wrong.status_code == 403
        assert wrong.json()["type"].endswith("wrong-password")
        await still_open(ws)
        changed = await http.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": new_password},
            headers=session.headers,
        )
        assert changed.status_code == 204, changed.text
        for socket in (ws, other_ws):  # every session of the account, not only this one
            code, _ = await closed_within(socket, WITHIN_S)
            assert code == UNAUTHENTICATED
    # The old tokens are dead: access, and refresh (revoked with the change).
    assert (await http.get("/auth/me", headers=session.headers)).status_code == 401
    refreshed = await http.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 401
    # The old password no longer logs in; the new one does.
    old = await http.post("/auth/login/user", json={"email": session.email, "password": PASSWORD})
    assert old.status_code == 401
    new = await http.post(
        "/auth/login/user", json={"email": session.email, "password": new_password}
    )
    assert new.status_code == 200, new.text


# --- every session of an account, on every replica ------------------------------------------


async def close_all(settings: Settings, role: str, account_id: UUID) -> int:
    client = create_redis(settings.redis)
    try:
        return await RedisSessions(client).close_all_sessions(role, account_id)
    finally:
        await client.aclose()


async def test_closing_every_session_of_an_account_closes_its_sockets_on_every_replica(
    http: httpx.AsyncClient,
    revoke_gateway: Gateway,
    start_gateway: Callable[[], Awaitable[Gateway]],
) -> None:
    replica = await start_gateway()
    agent = await signed_up(http, "agent")
    second = await login(http, agent.email, "agent")  # another device
    bystander = await signed_up(http, "agent")
    async with (
        authed_socket(revoke_gateway, agent.access_token) as here,
        authed_socket(replica, second["access_token"]) as there,
        authed_socket(replica, bystander.access_token) as other,
    ):
        assert await close_all(revoke_gateway.settings, "agent", UUID(agent.account_id)) == 2
        for ws in (here, there):
            code, reason = await closed_within(ws, WITHIN_S)
            assert (code, reason) == (UNAUTHENTICATED, "session revoked")
        await still_open(other)
    # And the REST side: both sessions' tokens are refused.
    for token in (agent.access_token, second["access_token"]):
        me = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401


# --- access-token expiry ------------------------------------------------------------------


async def test_a_socket_is_closed_4401_when_its_access_token_expires(
    http: httpx.AsyncClient, revoke_gateway: Gateway
) -> None:
    settings = revoke_gateway.settings
    session = await signed_up(http)
    account = UUID(session.account_id)
    # A token of a live session with about 3 s left (issued as if long ago).
    session_id = uuid.uuid4().hex
    client = create_redis(settings.redis)
    try:
        await RedisSessions(client).open_session("user", account, session_id, 600)
    finally:
        await client.aclose()
    left_s = 3
    issued = datetime.now(UTC) - timedelta(seconds=settings.auth.access_ttl_s - left_s)
    token, _ = issue_access_token(
        settings.auth, account_id=account, role=Role.USER, session_id=session_id, now=issued
    )
    expires = issued + timedelta(seconds=settings.auth.access_ttl_s)
    async with authed_socket(revoke_gateway, token) as ws:
        await still_open(ws)  # not before its time
        code, reason = await closed_within(ws, left_s + WITHIN_S)
        assert (code, reason) == (UNAUTHENTICATED, "token expired")
        # Not a heartbeat close nor a revocation: at the expiry (one-second granularity of exp).
        assert datetime.now(UTC) >= expires - timedelta(seconds=1)
    await close_all(settings, "user", account)
