"""Location senders for bench/geofence.py: many subject sockets in a process of their own.

``send_fixes`` runs in a child process (spawned): it opens one ``/ws``
socket per subject, authenticates them all, then sends ``location`` frames
round-robin at a fixed aggregate rate (open loop) for a fixed time, each
subject walking a straight line at its own speed and heading. Its sockets
are kept as the apps keep theirs (API.md): each pings every third of
``auth.ok``'s heartbeat timeout, and one that closes is opened again after a
back-off with full jitter (``SenderSockets``). It returns what it sent and
what the gateway refused. Kept lean (frames are built by
string formatting, no pydantic, no per-frame task) because it shares the
machine's cores with the system it measures.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import websockets

from bench.live import OPEN_TIMEOUT_S, PING_TEXT, PingSchedule, backoff_s
from gateway.ws.bulk import SPREAD_REASON

M_PER_DEG_LAT = 111_320.0


@dataclass
class Walker:
    token: str
    latitude: float
    longitude: float
    #: Metres per second east and north.
    east: float
    north: float

    def at(self, seconds: float) -> tuple[float, float]:
        lat = self.latitude + self.north * seconds / M_PER_DEG_LAT
        lon = self.longitude + self.east * seconds / (
            M_PER_DEG_LAT * math.cos(math.radians(self.latitude))
        )
        return lat, lon


@dataclass
class SendReport:
    sockets: int = 0
    sent: int = 0
    #: Fixes the gateway's answers told refused as overload (a socket's refusals
    #: without an ``id`` are told together every few seconds, so those of the last
    #: seconds may never be told: ``bench/geofence.py`` reads the gateways' count).
    refused: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_s: float = 0.0
    #: Socket set-ups retried after a 1013 (the gateway shedding set-ups).
    setup_retries: int = 0
    #: ``ping`` frames sent; sockets opened again after they closed, and
    #: attempts at it that failed (each then waits out a longer back-off).
    pings: int = 0
    reconnects: int = 0
    failed_reconnects: int = 0


def walkers(
    tokens: list[str], centre: tuple[float, float], span_m: float, seed: int
) -> list[Walker]:
    """Subjects spread over a square of ``span_m`` around ``centre``, at 1-15 m/s."""
    rng = random.Random(seed)
    lat0, lon0 = centre
    out = []
    for token in tokens:
        north = rng.uniform(-span_m / 2, span_m / 2)
        east = rng.uniform(-span_m / 2, span_m / 2)
        speed = rng.uniform(1.0, 15.0)
        heading = rng.uniform(0, 2 * math.pi)
        out.append(
            Walker(
                token,
                lat0 + north / M_PER_DEG_LAT,
                lon0 + east / (M_PER_DEG_LAT * math.cos(math.radians(lat0))),
                speed * math.sin(heading),
                speed * math.cos(heading),
            )
        )
    return out


def send_fixes(
    ws_url: str, subjects: list[Walker], rate: float, seconds: float, sending: str
) -> SendReport:
    """Entry point of the sender process; creates the file ``sending`` when it starts sending."""
    return asyncio.run(_send(ws_url, subjects, rate, seconds, Path(sending)))


async def _send(
    ws_url: str, subjects: list[Walker], rate: float, seconds: float, sending: Path
) -> SendReport:
    report = SendReport()
    rng = random.Random(len(subjects))  # back-off jitter and ping phases only

    async def open_one(index: int) -> Opened:
        return await authenticated_socket(ws_url, subjects[index].token, rng=rng)

    sockets = SenderSockets(open_one, _count_errors, report, rng)
    await sockets.open_all(len(subjects))  # subject i walks on socket i
    await asyncio.to_thread(sending.touch)
    began_cpu = time.process_time()
    began = time.perf_counter()
    total = int(rate * seconds)
    n = 0
    t0 = datetime.now(UTC).timestamp()
    while n < total:
        due = began + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        # Everything due by now, in one go (the loop wakes ~1 ms apart at best).
        now = time.perf_counter()
        sockets.ping_due()
        burst = min(total, int((now - began) * rate) + 1)
        while n < burst:
            i = n % len(subjects)
            elapsed = now - began
            lat, lon = subjects[i].at(elapsed)
            recorded = datetime.fromtimestamp(t0 + elapsed, UTC).isoformat()
            frame = (
                f'{{"type":"location","data":{{"latitude":{lat:.7f},"longitude":{lon:.7f},'
                f'"accuracy_m":10,"recorded_at":"{recorded}"}}}}'
            )
            transport = sockets.transport(i)
            if transport is None:
                report.errors["closed"] = report.errors.get("closed", 0) + 1
            else:
                transport.write(text_frame(frame.encode()))
                report.sent += 1
            n += 1
    report.seconds = time.perf_counter() - began
    report.cpu_s = time.process_time() - began_cpu
    await asyncio.sleep(1.0)  # late error frames
    await sockets.close()
    return report


def text_frame(payload: bytes) -> bytes:
    """``payload`` as one masked client text frame, written behind the library's back.

    The sender's own CPU is taken from the 2 cores the gateway runs on:
    websockets' ``send`` (frame object, random mask, XOR, drain) cost ~24 %
    of a core at 10,000 frames/s. The mask key here is all zeros, which
    RFC 6455 allows (the server cannot tell a key from a random one), so
    masking is a copy. Only for these sockets: after ``auth`` the library
    itself sends nothing on them (no WebSocket pings; the app's ``ping``
    frames go this way too), so frames never interleave.
    """
    n = len(payload)
    if n < 126:
        head = bytes((0x81, 0x80 | n))
    elif n < 1 << 16:
        head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


PING_FRAME = text_frame(PING_TEXT.encode())

#: A socket authenticated: the socket, its set-up's retries, and ``auth.ok``'s
#: ``heartbeat_timeout_s`` (how long the gateway waits for a frame before closing).
Opened = tuple[websockets.ClientConnection, int, float]
#: Reads a socket's frames into the report until it closes.
Reader = Callable[[websockets.ClientConnection, SendReport], Awaitable[None]]


class SenderSockets:
    """The sender's sockets, kept as an app keeps its own: each pings on its
    schedule (``bench.live.PingSchedule``), and one the gateway closed is opened
    again after ``bench.live.backoff_s`` (full jitter, up to 1 s, doubling per
    failed attempt to 30 s), its frames meanwhile counted as ``closed``."""

    def __init__(
        self,
        open_one: Callable[[int], Awaitable[Opened]],
        read: Reader,
        report: SendReport,
        rng: random.Random,
    ) -> None:
        self._open_one = open_one
        self._read = read
        self._report = report
        self._rng = rng
        self._pings = PingSchedule[int](rng)
        self._sockets: list[websockets.ClientConnection] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._reopening: set[int] = set()

    async def open_all(self, count: int, at_once: int = 200) -> None:
        opened: dict[int, websockets.ClientConnection] = {}

        async def one(index: int) -> None:
            ws, retries, heartbeat_s = await self._open_one(index)
            self._report.setup_retries += retries
            opened[index] = ws
            self._watch(index, ws, heartbeat_s)

        for start in range(0, count, at_once):
            await asyncio.gather(*(one(i) for i in range(start, min(start + at_once, count))))
        self._sockets = [opened[i] for i in range(count)]
        self._report.sockets = count

    def transport(self, index: int) -> asyncio.WriteTransport | None:
        """Socket ``index``'s transport; None while it is closed (its reopening begins)."""
        transport: asyncio.WriteTransport = self._sockets[index].transport
        if not transport.is_closing():
            return transport
        if index not in self._reopening:
            self._reopening.add(index)
            self._spawn(self._reopen(index))
        return None

    def ping_due(self) -> None:
        """Send the pings due now."""
        now = time.monotonic()
        for index, interval in self._pings.due(now):
            # A socket being reopened keeps its place: its successor pings on.
            self._pings.again(index, interval, now)
            transport = self.transport(index)
            if transport is not None:
                transport.write(PING_FRAME)
                self._report.pings += 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for ws in self._sockets:
            await ws.close()

    def _watch(self, index: int, ws: websockets.ClientConnection, heartbeat_s: float) -> None:
        self._spawn(self._read(ws, self._report))
        self._pings.watch(index, heartbeat_s, time.monotonic())

    async def _reopen(self, index: int) -> None:
        failures = 0
        closed = self._sockets[index]
        moved = sent_away(closed.close_code, closed.close_reason)
        try:
            while True:
                if failures or not moved:
                    await asyncio.sleep(backoff_s(failures, self._rng))
                try:
                    ws, _retries, _heartbeat_s = await self._open_one(index)
                except (OSError, TimeoutError, RuntimeError, websockets.WebSocketException):
                    failures += 1
                    self._report.failed_reconnects += 1
                    continue
                self._sockets[index] = ws
                self._report.reconnects += 1
                self._spawn(self._read(ws, self._report))  # its pings keep their schedule
                return
        finally:
            self._reopening.discard(index)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


async def _count_errors(ws: websockets.ClientConnection, report: SendReport) -> None:
    try:
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "error":
                code = frame["data"].get("code", "?")
                if code == "unavailable":  # one frame may tell several (``refused``)
                    report.refused += frame["data"].get("refused", 1)
                else:
                    report.errors[code] = report.errors.get(code, 0) + 1
    except websockets.ConnectionClosed:
        pass


# --- the bulk feed (issue 20): batches over a few /ws/locations sockets ----------------


def fix_json(subject_id: str, lat: float, lon: float, recorded: str) -> str:
    """One fix of a batch, formatted by hand (the sender's CPU is the system's)."""
    return (
        f'{{"subject_id":"{subject_id}","latitude":{lat:.7f},"longitude":{lon:.7f},'
        f'"accuracy_m":10,"recorded_at":"{recorded}"}}'
    )


#: The close code of a socket the gateway could not set up now: it sheds socket
#: setups under load, and an app tries again later (API.md).
TRY_AGAIN_LATER = 1013
#: Set-ups retried (after a 1013, or a handshake not answered in time) before the
#: socket is given up.
SETUP_RETRIES = 6
#: Bulk sockets a gateway sent to another (1013, ``SPREAD_REASON``), connected
#: again at once and not counted in ``SETUP_RETRIES``: each new connection
#: lands on any gateway by the kernel's hash, so a few attempts may be needed.
SENT_AWAY = 40


def sent_away(code: int | None, reason: str | None) -> bool:
    """Whether a socket was closed by a gateway sending it to another (1013,
    ``SPREAD_REASON``): a bulk socket connects again at once."""
    return code == TRY_AGAIN_LATER and reason == SPREAD_REASON


async def authenticated_socket(
    url: str,
    token: str,
    *,
    rng: random.Random,
    max_size: int = 2**16,
    open_timeout_s: float = OPEN_TIMEOUT_S,
) -> Opened:
    """A socket on ``url`` authenticated with ``token`` (a user's or an integration
    key), how many times its set-up was retried, and ``auth.ok``'s heartbeat
    timeout (90 s when it gives none, as the apps assume): a 1013 close before
    ``auth.ok``, or an opening handshake not answered in ``open_timeout_s``, is
    retried after a jittered back-off, as the apps do (an overloaded gateway
    sheds set-ups, or is too busy to answer them), up to ``SETUP_RETRIES`` times;
    a bulk socket sent to another gateway is retried at once (``SENT_AWAY``).
    An ``error`` frame instead of ``auth.ok`` (a bad token) fails at once."""
    retries = moves = 0
    while True:
        try:
            ws = await websockets.connect(
                url,
                max_size=max_size,
                ping_interval=None,
                compression=None,
                open_timeout=open_timeout_s,
            )
        except TimeoutError:
            if retries - moves >= SETUP_RETRIES:
                raise
        else:
            try:
                await ws.send(json.dumps({"type": "auth", "data": {"token": token}}))
                async with asyncio.timeout(30):
                    while True:
                        frame = json.loads(await ws.recv())
                        if frame.get("type") == "auth.ok":
                            heartbeat_s = frame.get("data", {}).get("heartbeat_timeout_s", 90)
                            return ws, retries, float(heartbeat_s)
                        if frame.get("type") == "error":
                            raise RuntimeError(f"socket refused: {frame.get('data')}")
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                reason = closed.rcvd.reason if closed.rcvd is not None else ""
                if sent_away(code, reason) and moves < SENT_AWAY:
                    # Another gateway holds fewer bulk sockets: connect again at once.
                    moves += 1
                    retries += 1
                    continue
                if code != TRY_AGAIN_LATER or retries - moves >= SETUP_RETRIES:
                    raise
            except BaseException:
                await ws.close()
                raise
        retries += 1
        await asyncio.sleep(backoff_s(retries, rng))  # as the apps back off


def batch_frame(fixes: list[str]) -> bytes:
    return ('{"type":"locations","data":{"fixes":[' + ",".join(fixes) + "]}}").encode()


async def open_bulk(url: str, key: str, rng: random.Random) -> Opened:
    """A ``/ws/locations`` socket authenticated with the integration ``key``
    (as :func:`authenticated_socket`)."""
    return await authenticated_socket(url, key, rng=rng, max_size=2**22)


def send_batches(
    bulk_url: str,
    key: str,
    subjects: list[Walker],
    ids: list[str],
    rate: float,
    seconds: float,
    sending: str,
    connections: int,
    interval_ms: float,
    max_fixes: int,
) -> SendReport:
    """Entry point of the bulk sender process: ``subjects`` (``ids[i]`` is subject i's
    id) over ``connections`` sockets, subject ``i`` always on socket ``i % connections``
    (so its fixes stay in order), everything due sent every ``interval_ms`` as one
    ``locations`` frame per socket (split past ``max_fixes``)."""
    return asyncio.run(
        _send_batches(
            bulk_url,
            key,
            subjects,
            ids,
            rate,
            seconds,
            Path(sending),
            connections,
            interval_ms,
            max_fixes,
        )
    )


async def _send_batches(
    bulk_url: str,
    key: str,
    subjects: list[Walker],
    ids: list[str],
    rate: float,
    seconds: float,
    sending: Path,
    connections: int,
    interval_ms: float,
    max_fixes: int,
) -> SendReport:
    report = SendReport()
    rng = random.Random(connections)

    async def open_one(_index: int) -> Opened:
        return await open_bulk(bulk_url, key, rng)

    sockets = SenderSockets(open_one, _count_outcomes, report, rng)
    await sockets.open_all(connections)
    await asyncio.to_thread(sending.touch)
    began_cpu = time.process_time()
    began = time.perf_counter()
    total = int(rate * seconds)
    interval = interval_ms / 1000
    n = 0
    t0 = datetime.now(UTC).timestamp()
    wake = began
    while n < total:
        wake += interval
        delay = wake - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        now = time.perf_counter()
        sockets.ping_due()
        elapsed = now - began
        burst = min(total, int(elapsed * rate) + 1)
        recorded = datetime.fromtimestamp(t0 + elapsed, UTC).isoformat()
        per_socket: list[list[str]] = [[] for _ in range(connections)]
        while n < burst:
            i = n % len(subjects)
            lat, lon = subjects[i].at(elapsed)
            per_socket[i % connections].append(fix_json(ids[i], lat, lon, recorded))
            n += 1
        for index, fixes in enumerate(per_socket):
            for start in range(0, len(fixes), max_fixes):
                transport = sockets.transport(index)
                if transport is None:
                    report.errors["closed"] = report.errors.get("closed", 0) + len(fixes) - start
                    break
                chunk = fixes[start : start + max_fixes]
                transport.write(text_frame(batch_frame(chunk)))
                report.sent += len(chunk)
    report.seconds = time.perf_counter() - began
    report.cpu_s = time.process_time() - began_cpu
    await asyncio.sleep(2.0)  # the last answers
    await sockets.close()
    return report


async def _count_outcomes(ws: websockets.ClientConnection, report: SendReport) -> None:
    """``locations.ok`` answers: fixes refused as overload, and each error code."""
    try:
        async for raw in ws:
            frame = json.loads(raw)
            data = frame.get("data", {})
            if frame.get("type") == "locations.ok":
                report.refused += data.get("refused", 0)
                if data.get("invalid"):
                    report.errors["invalid_data"] = (
                        report.errors.get("invalid_data", 0) + data["invalid"]
                    )
            elif frame.get("type") == "error":
                code = data.get("code", "?")
                report.errors[code] = report.errors.get(code, 0) + 1
    except websockets.ConnectionClosed:
        pass
