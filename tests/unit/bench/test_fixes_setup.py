"""bench/fixes.py's socket set-up against a scripted fake gateway (a local websockets
server that sheds the first set-ups with 1013, or answers their opening handshakes
too late, as an overloaded gateway does)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request

from bench import fixes
from bench.fixes import TRY_AGAIN_LATER, authenticated_socket


class FakeGateway:
    """Answers ``auth`` with a 1013 close ``shed`` times, then with ``reply``."""

    def __init__(self, shed: int, reply: dict[str, object]) -> None:
        self.shed = shed
        self.reply = reply
        self.attempts = 0

    async def handler(self, ws: ServerConnection) -> None:
        auth = json.loads(await ws.recv())
        assert auth == {"type": "auth", "data": {"token": "t0ken"}}
        self.attempts += 1
        if self.attempts <= self.shed:
            await ws.close(TRY_AGAIN_LATER, "cannot authenticate now")
            return
        await ws.send(json.dumps({"type": "presence", "data": {}}))  # not auth.ok: skipped
        await ws.send(json.dumps(self.reply))
        await ws.wait_closed()


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixes, "backoff_s", lambda failures, rng: 0.001)


class SlowHandshakes:
    """Holds the first ``slow`` opening handshakes for ``hold_s`` (a gateway too busy
    to answer them)."""

    def __init__(self, slow: int, hold_s: float) -> None:
        self.slow = slow
        self.hold_s = hold_s
        self.handshakes = 0

    async def __call__(self, _ws: ServerConnection, _request: Request) -> None:
        self.handshakes += 1
        if self.handshakes <= self.slow:
            await asyncio.sleep(self.hold_s)


@contextlib.asynccontextmanager
async def started(
    gateway: FakeGateway, handshakes: SlowHandshakes | None = None
) -> AsyncIterator[str]:
    server: Server
    async with serve(gateway.handler, "127.0.0.1", 0, process_request=handshakes) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ws"


async def test_a_shed_set_up_is_tried_again_and_counted() -> None:
    gateway = FakeGateway(shed=2, reply={"type": "auth.ok", "data": {}})
    async with started(gateway) as url:
        ws, retries = await authenticated_socket(url, "t0ken", rng=random.Random(1))
        await ws.close()
    assert (retries, gateway.attempts) == (2, 3)


async def test_a_gateway_that_keeps_shedding_is_given_up() -> None:
    gateway = FakeGateway(shed=100, reply={"type": "auth.ok", "data": {}})
    async with started(gateway) as url:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await authenticated_socket(url, "t0ken", rng=random.Random(1))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == TRY_AGAIN_LATER
    assert gateway.attempts == fixes.SETUP_RETRIES + 1


async def test_a_refused_token_fails_at_once() -> None:
    gateway = FakeGateway(shed=0, reply={"type": "error", "data": {"code": "unauthorized"}})
    async with started(gateway) as url:
        with pytest.raises(RuntimeError, match="unauthorized"):
            await authenticated_socket(url, "t0ken", rng=random.Random(1))
    assert gateway.attempts == 1


async def test_an_opening_handshake_answered_too_late_is_tried_again_and_counted() -> None:
    gateway = FakeGateway(shed=1, reply={"type": "auth.ok", "data": {}})
    late = SlowHandshakes(slow=2, hold_s=1.0)
    async with started(gateway, late) as url:
        ws, retries = await authenticated_socket(
            url, "t0ken", rng=random.Random(1), open_timeout_s=0.2
        )
        await ws.close()
    # Two handshakes timed out, then one set-up was shed, then one went through.
    assert (retries, late.handshakes, gateway.attempts) == (3, 4, 2)


async def test_a_gateway_that_never_answers_a_handshake_in_time_is_given_up() -> None:
    gateway = FakeGateway(shed=0, reply={"type": "auth.ok", "data": {}})
    late = SlowHandshakes(slow=100, hold_s=1.0)
    async with started(gateway, late) as url:
        with pytest.raises(TimeoutError):
            await authenticated_socket(url, "t0ken", rng=random.Random(1), open_timeout_s=0.05)
    assert (late.handshakes, gateway.attempts) == (fixes.SETUP_RETRIES + 1, 0)
