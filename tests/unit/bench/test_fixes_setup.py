"""bench/fixes.py's socket set-up against a scripted fake gateway (a local websockets
server that sheds the first set-ups with 1013, or answers their opening handshakes
too late, as an overloaded gateway does)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request

from bench import fixes
from bench.fixes import (
    PING_FRAME,
    TRY_AGAIN_LATER,
    SenderSockets,
    SendReport,
    authenticated_socket,
)
from bench.live import PingSchedule
from gateway.ws.bulk import SPREAD_REASON


class FakeGateway:
    """Answers ``auth`` with a 1013 close ``shed`` times, then with ``reply``."""

    def __init__(
        self, shed: int, reply: dict[str, object], reason: str = "cannot authenticate now"
    ) -> None:
        self.shed = shed
        self.reply = reply
        self.reason = reason
        self.attempts = 0

    async def handler(self, ws: ServerConnection) -> None:
        auth = json.loads(await ws.recv())
        assert auth == {"type": "auth", "data": {"token": "t0ken"}}
        self.attempts += 1
        if self.attempts <= self.shed:
            await ws.close(TRY_AGAIN_LATER, self.reason)
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
    gateway = FakeGateway(shed=2, reply={"type": "auth.ok", "data": {"heartbeat_timeout_s": 60}})
    async with started(gateway) as url:
        ws, retries, heartbeat_s = await authenticated_socket(url, "t0ken", rng=random.Random(1))
        await ws.close()
    assert (retries, gateway.attempts, heartbeat_s) == (2, 3, 60.0)


async def test_a_gateway_that_keeps_shedding_is_given_up() -> None:
    gateway = FakeGateway(shed=100, reply={"type": "auth.ok", "data": {}})
    async with started(gateway) as url:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await authenticated_socket(url, "t0ken", rng=random.Random(1))
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == TRY_AGAIN_LATER
    assert gateway.attempts == fixes.SETUP_RETRIES + 1


async def test_a_bulk_socket_sent_to_another_gateway_connects_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_back_off(failures: int, rng: random.Random) -> float:
        raise AssertionError("a socket sent away waits for nothing")

    monkeypatch.setattr(fixes, "backoff_s", no_back_off)
    sent_away = fixes.SETUP_RETRIES + 4  # past the budget of shed set-ups
    gateway = FakeGateway(sent_away, {"type": "auth.ok", "data": {}}, reason=SPREAD_REASON)
    async with started(gateway) as url:
        ws, retries, _ = await authenticated_socket(url, "t0ken", rng=random.Random(1))
        await ws.close()
    assert (retries, gateway.attempts) == (sent_away, sent_away + 1)


async def test_a_bulk_socket_sent_away_too_often_is_given_up() -> None:
    gateway = FakeGateway(100, {"type": "auth.ok", "data": {}}, reason=SPREAD_REASON)
    async with started(gateway) as url:
        with pytest.raises(websockets.ConnectionClosed):
            await authenticated_socket(url, "t0ken", rng=random.Random(1))
    assert gateway.attempts == fixes.SENT_AWAY + fixes.SETUP_RETRIES + 1


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
        ws, retries, heartbeat_s = await authenticated_socket(
            url, "t0ken", rng=random.Random(1), open_timeout_s=0.2
        )
        await ws.close()
    # Two handshakes timed out, then one set-up was shed, then one went through.
    assert (retries, late.handshakes, gateway.attempts) == (3, 4, 2)
    assert heartbeat_s == 90.0  # auth.ok gave none: the apps' assumption


async def test_a_gateway_that_never_answers_a_handshake_in_time_is_given_up() -> None:
    gateway = FakeGateway(shed=0, reply={"type": "auth.ok", "data": {}})
    late = SlowHandshakes(slow=100, hold_s=1.0)
    async with started(gateway, late) as url:
        with pytest.raises(TimeoutError):
            await authenticated_socket(url, "t0ken", rng=random.Random(1), open_timeout_s=0.05)
    assert (late.handshakes, gateway.attempts) == (fixes.SETUP_RETRIES + 1, 0)


def test_pings_come_a_third_of_the_heartbeat_apart_and_spread_from_the_start() -> None:
    schedule = PingSchedule[int](random.Random(3))
    for index in range(300):
        schedule.watch(index, heartbeat_s=60.0, now=0.0)
    seen: dict[int, list[float]] = {}
    for tenth in range(1, 800):
        for index, interval in schedule.due(tenth / 10):
            seen.setdefault(index, []).append(tenth / 10)
            schedule.again(index, interval, tenth / 10)
    assert sorted(seen) == list(range(300))
    # The first pings fall over the first 20 s interval, not together.
    firsts = [times[0] for times in seen.values()]
    assert max(firsts) <= 20.0
    per_second = [sum(1 for t in firsts if s < t <= s + 1) for s in range(20)]
    assert max(per_second) < 40
    # Each next one 18-22 s (a third of 60, ±10 %) after the one before.
    gaps = [b - a for times in seen.values() for a, b in itertools.pairwise(times)]
    assert len(gaps) >= 600
    assert min(gaps) >= 18.0 - 0.1
    assert max(gaps) <= 22.0 + 0.1


def test_a_socket_not_pinged_again_leaves_the_schedule() -> None:
    # Keepalive does not put back a socket that closed; the others ping on.
    schedule = PingSchedule[str](random.Random(5))
    schedule.watch("open", heartbeat_s=3.0, now=0.0)
    schedule.watch("closed", heartbeat_s=3.0, now=0.0)
    first = dict(schedule.due(1.0))
    assert first == {"open": 1.0, "closed": 1.0}
    schedule.again("open", first["open"], 1.0)
    assert schedule.next_at() is not None
    assert [key for key, _ in schedule.due(10.0)] == ["open"]
    assert schedule.next_at() is None


class ClosingGateway:
    """Says ``auth.ok`` with a 3 s heartbeat, records the frames each socket sends
    after it, and closes the first socket after its first ping."""

    def __init__(self) -> None:
        self.sessions: list[list[str]] = []

    async def handler(self, ws: ServerConnection) -> None:
        await ws.recv()  # auth
        await ws.send(json.dumps({"type": "auth.ok", "data": {"heartbeat_timeout_s": 3}}))
        frames: list[str] = []
        self.sessions.append(frames)
        first = len(self.sessions) == 1
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in ws:
                frames.append(str(frame))
                if first and frame == '{"type":"ping"}':
                    await ws.close(4408, "idle")  # as the gateway closes a silent socket
                    return


async def test_a_sender_socket_pings_and_is_opened_again_after_the_gateway_closes_it() -> None:
    gateway = ClosingGateway()
    report = SendReport()

    async def read(ws: websockets.ClientConnection, _report: SendReport) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _frame in ws:
                pass

    async with serve(gateway.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/ws"
        rng = random.Random(5)

        async def open_one(_index: int) -> fixes.Opened:
            return await authenticated_socket(url, "t0ken", rng=rng)

        sockets = SenderSockets(open_one, read, report, rng)
        await sockets.open_all(1)
        async with asyncio.timeout(10):
            while report.reconnects == 0:
                sockets.ping_due()  # the first ping within 1 s: then closed
                transport = sockets.transport(0)  # None while closed: reopening begins
                if transport is not None:
                    transport.write(fixes.text_frame(b'{"type":"location"}'))
                await asyncio.sleep(0.05)
            transport = sockets.transport(0)
            assert transport is not None
            transport.write(fixes.text_frame(b'{"type":"location"}'))
            while len(gateway.sessions) < 2 or not gateway.sessions[1]:  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.05)
        await sockets.close()
    assert gateway.sessions[0][-1] == PING_FRAME[6:].decode()
    assert '{"type":"location"}' in gateway.sessions[0]
    assert gateway.sessions[1][0] == '{"type":"location"}'
    assert (report.sockets, report.reconnects, report.failed_reconnects) == (1, 1, 0)
    assert report.pings >= 1
