"""Revocation reaches open sockets: ending a session closes its ``/ws`` sockets
with 4401 within a second, on every gateway replica (real Redis, PostgreSQL,
Ray shards, real WebSockets)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cluster.client import EntityClient
from config.settings import Settings
from tests.integration.api.authkit import ROOMY, gateway_with, login, signed_up
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
