"""The ``panic-alert`` command, run as a subprocess against the real local services.

``serve`` runs on free ports with an embedded Ray; ``migrate`` and
``create-admin`` run against a scratch database created (and dropped) here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import asyncpg
import httpx
import psutil
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from config.settings import Settings
from gateway.auth.passwords import PasswordHasher
from gateway.auth.principal import Role
from gateway.ws.bulk import KEY_CAP_REASON, SPREAD_REASON
from persistence.drivers.mongo import EventStore
from persistence.drivers.postgres import create_pool
from persistence.outbox.writer import OutboxEvent
from tests.integration.api.accounts import make_account
from tests.integration.persistence.helpers import write_outbox
from tests.local import PANIC_ALERT, cli_env, free_port, wait_for
from tests.scratch import drop_database, drop_mongo_database

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "a-long-admin-passphrase-42"


def run_cli(
    *args: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PANIC_ALERT, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("stop_signal", "gateways"),
    [(signal.SIGTERM, 2), (signal.SIGINT, 1)],
    ids=["SIGTERM-2-gateways", "SIGINT-1-gateway"],
)
def test_serve_runs_gateway_and_ray_dashboard_then_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals, gateways: int, migrated_db: str
) -> None:
    """With two gateways the second joins the first one's Ray and reaches it
    (``/readyz`` answered by both); Ray stops after both."""
    http_port, dashboard_port = free_port(), free_port()
    env = cli_env(
        PANIC_POSTGRES__DATABASE=migrated_db,
        PANIC_HTTP__PORT=str(http_port),
        PANIC_HTTP__GATEWAYS=str(gateways),
        PANIC_RAY__DASHBOARD_PORT=str(dashboard_port),
        PANIC_RAY__NUM_CPUS="1",
    )
    log_path = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{http_port}"
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [PANIC_ALERT, "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            healthz = wait_for(
                f"{base}/healthz", lambda r: r.status_code == 200, deadline_s=120, proc=proc
            )
            assert healthz is not None, log_path.read_text()[-3000:]
            assert healthz.json() == {"status": "ok"}
            assert healthz.headers["x-request-id"]

            readyz = wait_for(
                f"{base}/readyz", lambda r: r.status_code == 200, deadline_s=60, proc=proc
            )
            assert readyz is not None, log_path.read_text()[-3000:]
            assert readyz.json() == {
                "status": "ready",
                "checks": {
                    "postgres": "ok",
                    "redis": "ok",
                    "mongo": "ok",
                    "kafka": "ok",
                    "ray": "ok",
                },
            }

            pids = _gateway_pids(proc, http_port, gateways, deadline_s=90)
            if gateways > 1:
                # Every process answers /readyz with Ray ok (the child joined it).
                answered = _serving_pids(http_port, pids, "/readyz", connections=20)
                assert set(answered) == set(pids), answered
                assert all(status == 200 for status in _statuses(answered)), answered
                # Summed over both, though ray.init had imported prometheus_client.
                assert _healthz_count(base, "/readyz") >= 20

            health = wait_for(
                f"{dashboard}/api/gcs_healthz",
                lambda r: r.status_code == 200,
                deadline_s=30,
                proc=proc,
            )
            assert health is not None, "ray dashboard did not answer"
            page = httpx.get(f"{dashboard}/", timeout=5)
            assert page.status_code == 200
            assert "<html" in page.text.lower()

            metrics = httpx.get(f"{base}/metrics", timeout=5)
            assert 'route="/readyz"' in metrics.text

            # serve runs the outbox relay (in a Ray actor): a committed row goes out.
            assert asyncio.run(_relayed(migrated_db, deadline_s=60)), "outbox row not relayed"

            proc.send_signal(stop_signal)
            returncode = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    output = log_path.read_text()
    assert returncode == 0, output[-3000:]
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records]
    assert any(m.startswith("ray embedded") for m in messages)
    assert any(m.startswith("ray shut down") for m in messages)
    assert f"signal {stop_signal.name} received; stopping" in messages
    assert "Traceback" not in output
    assert _no_process_left(pids)
    for number in range(1, gateways + 1):
        assert any(m.startswith(f"gateway {number}/{gateways} serving on") for m in messages)
    # Each process stopped gracefully (a child leaves the parent's Ray first).
    assert messages.count("stopped") == gateways
    if gateways > 1:
        assert sum(m.startswith("ray joined") for m in messages) == gateways - 1
    access = [r for r in records if r["logger"] == "gateway.access"]
    assert {r["route"] for r in access} >= {"/healthz", "/readyz", "/metrics"}
    # The embedded Ray went away with the process.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{dashboard}/api/gcs_healthz", timeout=3)


def test_serve_with_two_gateways_shares_the_port_sums_metrics_and_restarts_a_child(
    tmp_path: Path, migrated_db: str
) -> None:
    """``PANIC_HTTP__GATEWAYS=2`` without Ray: two processes on one port, both
    taking connections; ``/metrics`` from either counts the requests of both; a
    child killed is started again while the port keeps answering; SIGTERM
    stops them all, exit code 0, nothing left behind."""
    with _two_gateways(tmp_path, migrated_db) as serve:
        proc, http_port, pids, log_path = serve
        base = f"http://127.0.0.1:{http_port}"
        first_child = pids[1]

        before = _healthz_count(base)
        # 40 connections, each accepted by one of the two processes.
        answered = _serving_pids(http_port, pids, "/healthz", connections=40)
        assert set(answered) == set(pids), answered
        assert all(status == 200 for status in _statuses(answered))
        # Whichever process answers /metrics counts the requests of both.
        assert _healthz_count(base) - before == 40

        counted = _healthz_count(base)
        # Connections queued on its socket as it dies are reset (SO_REUSEPORT).
        _kill_gateway(first_child, http_port)
        # The port keeps answering while the child is away.
        for _ in range(20):
            assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        pids = _gateway_pids(proc, http_port, 2, deadline_s=60, without=first_child)
        assert first_child not in pids
        answered = _serving_pids(http_port, pids, "/healthz", connections=40)
        assert set(answered) == set(pids), answered
        # The killed process's counts are kept.
        assert _healthz_count(base) >= counted + 60
        # Its bulk-socket count is not: the two that serve now have theirs.
        (shared,) = tmp_path.glob("panic-alert-gateways-*")
        tallies = {str(pid) for pid in pids}
        deadline = time.monotonic() + 10
        while set(os.listdir(shared / "bulk-sockets")) != tallies:
            assert time.monotonic() < deadline, os.listdir(shared / "bulk-sockets")
            time.sleep(0.05)
    output = log_path.read_text()
    assert _no_process_left([*pids, first_child])
    assert not list(tmp_path.glob("panic-alert-gateways-*"))
    messages = [json.loads(line)["message"] for line in output.splitlines() if line[:1] == "{"]
    assert f"gateway 2/2 (pid {first_child}) exited with signal SIGKILL" in messages
    assert sum(m.startswith("gateway 2/2 serving on") for m in messages) == 2
    assert messages.count("stopped") == 2  # the parent and the restarted child
    assert any(m.startswith("gateway 1/2 serving on") for m in messages)


def test_serve_with_two_gateways_spreads_the_bulk_feeds_sockets(
    tmp_path: Path, migrated_db: str, settings: Settings
) -> None:
    """``SO_REUSEPORT`` hands each connection to a gateway by a hash of its
    addresses, so a few bulk sockets may all land on one. With two gateways a
    bulk socket landing on the one holding more is closed with 1013 before
    ``auth.ok``, and connecting again evens them out: eight sockets end four on
    each, whatever sockets without a key hold meanwhile. A gateway whose
    sockets closed takes the next ones; the tally goes when serve stops.
    (Without the spreading, both would hold by chance in 1 run of 30.)"""
    with _two_gateways(tmp_path, migrated_db, PANIC_HTTP__WS_AUTH_TIMEOUT_S="60") as serve:
        asyncio.run(_spread_bulk_sockets(serve.port, serve.pids, migrated_db, settings))
    assert not list(tmp_path.glob("panic-alert-gateways-*"))


def test_serve_with_two_gateways_caps_a_keys_bulk_sockets_on_each(
    tmp_path: Path, migrated_db: str, settings: Settings
) -> None:
    """``http.ws_max_bulk_sockets_per_key`` is per gateway process: at 2 with two
    gateways a key holds four sockets, two on each (the spread is asked first, so
    a socket is sent to the other gateway before its key's count refuses it),
    and a fifth is closed 1008 with ``KEY_CAP_REASON`` wherever it lands."""
    with _two_gateways(tmp_path, migrated_db, PANIC_HTTP__WS_MAX_BULK_SOCKETS_PER_KEY="2") as serve:
        asyncio.run(_capped_bulk_sockets(serve.port, serve.pids, migrated_db, settings))


async def _capped_bulk_sockets(
    http_port: int, pids: list[int], database: str, settings: Settings
) -> None:
    """The sockets of the test above."""
    url = f"ws://127.0.0.1:{http_port}/ws/locations"
    key = await _integration_key(http_port, database, settings)
    async with contextlib.AsyncExitStack() as sockets:
        held = [await sockets.enter_async_context(await _bulk_socket(url, key)) for _ in range(4)]
        owners = _owners(http_port, pids, {ws.local_address[1] for ws in held})
        assert sorted(Counter(owners.values()).values()) == [2, 2], owners
        for _ in range(6):  # the kernel's hash puts some on each gateway
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "auth", "data": {"token": key}}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
                    1008,
                    KEY_CAP_REASON,
                )


class _Serve(NamedTuple):
    """A running ``serve`` of :func:`_two_gateways`."""

    proc: subprocess.Popen[bytes]
    port: int
    #: Its gateway processes' pids, the parent's first.
    pids: list[int]
    #: Its stdout and stderr.
    log_path: Path


def _stops_cleanly(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """SIGTERM to ``serve``: it exits with 0, and its log holds no traceback."""
    proc.send_signal(signal.SIGTERM)
    returncode = proc.wait(timeout=60)
    output = log_path.read_text()
    assert returncode == 0, output[-3000:]
    assert "Traceback" not in output


@contextlib.contextmanager
def _two_gateways(tmp_path: Path, database: str, **settings: str) -> Iterator[_Serve]:
    """``serve --no-ray`` with two gateway processes on a free port (``TMPDIR``:
    ``tmp_path``), once both listen: the process, the port, both pids and the
    log's path. On the way out ``serve`` is sent SIGTERM and must stop cleanly
    (:func:`_stops_cleanly`); killed instead when the test failed."""
    http_port = free_port()
    env = cli_env(
        PANIC_POSTGRES__DATABASE=database,
        PANIC_HTTP__PORT=str(http_port),
        PANIC_HTTP__GATEWAYS="2",
        TMPDIR=str(tmp_path),
        **settings,
    )
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [PANIC_ALERT, "serve", "--no-ray"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            healthz = wait_for(
                f"http://127.0.0.1:{http_port}/healthz",
                lambda r: r.status_code == 200,
                deadline_s=60,
                proc=proc,
            )
            assert healthz is not None, log_path.read_text()[-3000:]
            pids = _gateway_pids(proc, http_port, 2, deadline_s=60)
            yield _Serve(proc, http_port, pids, log_path)
            _stops_cleanly(proc, log_path)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)


async def _spread_bulk_sockets(
    http_port: int, pids: list[int], database: str, settings: Settings
) -> None:
    """The bulk sockets of ``test_serve_with_two_gateways_spreads_the_bulk_feeds_sockets``."""
    url = f"ws://127.0.0.1:{http_port}/ws/locations"
    key = await _integration_key(http_port, database, settings)
    async with contextlib.AsyncExitStack() as sockets:
        # Sockets that never authenticate (a script without a key) do not count.
        for _ in range(6):
            await sockets.enter_async_context(websockets.connect(url))
        held: list[websockets.ClientConnection] = []
        for _ in range(8):
            held.append(await sockets.enter_async_context(await _bulk_socket(url, key)))
        owners = _owners(http_port, pids, {ws.local_address[1] for ws in held})
        assert sorted(Counter(owners.values()).values()) == [4, 4], owners

        # Three of the first gateway's sockets close: the next three go to it.
        first = [ws for ws in held if owners[ws.local_address[1]] == pids[0]]
        for ws in first[:3]:
            await ws.close()
        await asyncio.sleep(0.5)  # the closes reach the gateway
        for _ in range(3):
            ws = await sockets.enter_async_context(await _bulk_socket(url, key))
            port = ws.local_address[1]
            assert _owners(http_port, pids, {port}) == {port: pids[0]}


async def _integration_key(http_port: int, database: str, settings: Settings) -> str:
    """A new integration key, issued by a new administrator of ``database``."""
    pool = await create_pool(settings.postgres, database=database)
    try:
        admin = await make_account(pool, settings, Role.ADMIN)
    finally:
        await pool.close()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{http_port}", timeout=20) as http:
        made = await http.post("/admin/integrations", json={"name": "fleet"}, headers=admin.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def test_serve_moves_open_bulk_sockets_to_a_gateway_that_restarted(
    tmp_path: Path, migrated_db: str, settings: Settings
) -> None:
    """Four bulk sockets, two on each gateway; the child is killed and its two
    clients connect again to the parent, the only one left (four there). Once
    the child serves again, the parent sends open sockets to it, one at a time
    after a frame's answer (1013 with ``SPREAD_REASON``), until two are on each."""
    with _two_gateways(tmp_path, migrated_db) as serve:
        moved = asyncio.run(
            _moved_after_restart(serve.proc, serve.port, serve.pids, migrated_db, settings)
        )
    assert moved >= 1


async def _moved_after_restart(
    proc: subprocess.Popen[bytes],
    http_port: int,
    pids: list[int],
    database: str,
    settings: Settings,
) -> int:
    """The sockets of the test above; how many open ones a gateway sent away."""
    url = f"ws://127.0.0.1:{http_port}/ws/locations"
    key = await _integration_key(http_port, database, settings)
    feed = [await _bulk_socket(url, key) for _ in range(4)]
    owners = _owners(http_port, pids, {ws.local_address[1] for ws in feed})
    assert sorted(Counter(owners.values()).values()) == [2, 2], owners
    parent, child = pids
    await asyncio.to_thread(_kill_gateway, child, http_port)
    moved = 0

    async def frames_round() -> None:
        """A ping on each socket; one closed is connected again."""
        nonlocal moved
        for i, ws in enumerate(feed):
            closed: websockets.ConnectionClosed | None = None
            try:
                await ws.send('{"type":"ping"}')
                assert json.loads(await ws.recv())["type"] == "pong"
            except websockets.ConnectionClosed as exc:
                closed = exc
            if closed is not None:
                if closed.rcvd is not None and closed.rcvd.reason == SPREAD_REASON:
                    assert closed.rcvd.code == 1013
                    moved += 1
                feed[i] = await _bulk_socket(url, key)

    # The killed child's clients come back to the parent while the child is away.
    await frames_round()
    owners = _owners(http_port, [parent], {ws.local_address[1] for ws in feed})
    assert set(owners.values()) == {parent}
    pids = await asyncio.to_thread(_gateway_pids, proc, http_port, 2, deadline_s=60, without=child)
    deadline = time.monotonic() + 30
    while True:
        await frames_round()
        # A socket just sent away is closed on the gateway's side before its
        # client notices (at its next ping): look again until all four are held.
        owners = _owners_now(http_port, pids, {ws.local_address[1] for ws in feed})
        if sorted(Counter(owners.values()).values()) == [2, 2]:
            break
        assert time.monotonic() < deadline, owners
        await asyncio.sleep(0.2)
    for ws in feed:
        await ws.close()
    return moved


async def _bulk_socket(url: str, key: str) -> websockets.ClientConnection:
    """An authenticated ``/ws/locations`` socket, connecting again as long as a
    gateway sends it away (1013 with ``SPREAD_REASON``, and nothing else), or as
    a client would when the connection is reset before its handshake (handed to
    a gateway being killed, whose queued connections are reset)."""
    for _ in range(40):
        try:
            ws = await websockets.connect(url)
        except (OSError, websockets.InvalidHandshake, websockets.InvalidMessage):
            await asyncio.sleep(0.1)
            continue
        await ws.send(json.dumps({"type": "auth", "data": {"token": key}}))
        closed: websockets.ConnectionClosed | None = None
        try:
            frame = json.loads(await ws.recv())
        except websockets.ConnectionClosed as exc:
            closed = exc
        if closed is None:
            assert frame["type"] == "auth.ok", frame
            return ws
        assert closed.rcvd is not None
        assert (closed.rcvd.code, closed.rcvd.reason) == (1013, SPREAD_REASON)
    raise AssertionError("40 attempts sent away")


def _gateway_pids(
    proc: subprocess.Popen[bytes],
    port: int,
    count: int,
    *,
    deadline_s: float,
    without: int | None = None,
) -> list[int]:
    """``serve``'s process and its children, once ``count`` of them listen on ``port``."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited early with {proc.returncode}"
        parent = psutil.Process(proc.pid)
        pids = [proc.pid, *(c.pid for c in parent.children() if c.pid != without)]
        listening = [pid for pid in pids if _listens(pid, port)]
        if len(listening) == count:
            return listening
        time.sleep(0.25)
    raise AssertionError(f"{count} gateway processes did not listen on {port} in time")


def _kill_gateway(pid: int, port: int) -> None:
    """SIGKILL the gateway ``pid``; return once its listening socket on ``port``
    is gone from the kernel's tables, so no later connection can be queued on it.
    (Neither its missing from /proc/<pid>/fd nor its leader showing as a zombie
    is enough: another of its threads may still hold its files, and the socket
    resets what it queued when that thread lets go.)"""
    inode = _listening_inode(pid, port)
    psutil.Process(pid).kill()
    deadline = time.monotonic() + 10
    while inode in _tcp_listening_inodes(port):
        assert time.monotonic() < deadline, f"gateway {pid} still listens on {port}"
        time.sleep(0.05)


def _listening_inode(pid: int, port: int) -> int:
    """The inode of the socket ``pid`` listens on ``port`` with."""
    fd_dir = Path(f"/proc/{pid}/fd")
    held = set()
    for fd in fd_dir.iterdir():
        with contextlib.suppress(FileNotFoundError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                held.add(int(target[len("socket:[") : -1]))
    (inode,) = held & _tcp_listening_inodes(port)
    return inode


def _tcp_listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets listening on ``port``, from /proc/net/tcp and tcp6."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(int(inode))
    return inodes


def _listens(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def _serving_pids(
    port: int, pids: list[int], path: str, *, connections: int
) -> dict[int, list[int]]:
    """Open ``connections`` connections to ``port`` at once; which of ``pids``
    accepted each (its sockets, seen with psutil); then one ``GET path`` on each.
    Returns the HTTP statuses by the process that accepted the connection."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(connections)]
    try:
        local_ports = {s.getsockname()[1]: s for s in socks}
        owner = _owners(port, pids, set(local_ports))
        statuses: dict[int, list[int]] = {}
        for local, sock in local_ports.items():
            request = f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            sock.sendall(request.encode())
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            statuses.setdefault(owner[local], []).append(int(answer.split(b" ", 2)[1]))
        return statuses
    finally:
        for sock in socks:
            sock.close()


def _owners(port: int, pids: list[int], local_ports: set[int]) -> dict[int, int]:
    """Which of ``pids`` accepted each of our connections to ``port`` (by the
    connection's local port), seen with psutil once every one is accepted."""
    owner: dict[int, int] = {}
    deadline = time.monotonic() + 20
    while len(owner) < len(local_ports) and time.monotonic() < deadline:
        owner |= _owners_now(port, pids, local_ports)
        time.sleep(0.1)
    assert len(owner) == len(local_ports), f"only {len(owner)} connections accepted"
    return owner


def _owners_now(port: int, pids: list[int], local_ports: set[int]) -> dict[int, int]:
    """Which of ``pids`` holds each of our connections to ``port`` that one holds now."""
    return {
        c.raddr.port: pid
        for pid in pids
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.laddr.port == port and c.raddr.port in local_ports
    }


def _statuses(answered: dict[int, list[int]]) -> list[int]:
    return [status for statuses in answered.values() for status in statuses]


def _healthz_count(base: str, route: str = "/healthz") -> float:
    """The answered requests to ``route`` that ``/metrics`` reports."""
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("route") == route
    )


def _no_process_left(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


async def _relayed(database: str, *, deadline_s: float) -> bool:
    """Commit one outbox row in ``database``; whether a relay marks it sent in time."""
    settings = Settings()
    pool = await create_pool(settings.postgres, database=database)
    try:
        event_id = uuid.uuid4()
        async with pool.acquire() as conn, conn.transaction():
            event = OutboxEvent(
                event_id, "system-events", "cli-serve", "system.check", None, {}, datetime.now(UTC)
            )
            await write_outbox(conn, [event])
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            sql = "SELECT sent_at IS NOT NULL FROM outbox WHERE event_id = $1"
            if await pool.fetchval(sql, event_id):
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await pool.close()


async def _admin_execute(settings: Settings, sql: str) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def scratch_databases(settings: Settings) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory of fresh, empty databases (PostGIS comes from template1); all dropped after."""
    created: list[str] = []

    async def create() -> str:
        name = f"panic_cli_test_{uuid.uuid4().hex[:12]}"
        await _admin_execute(settings, f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    try:
        yield create
    finally:
        for name in created:
            await drop_database(settings, name)


@pytest.fixture(scope="module")
async def migrated_db(scratch_databases: Callable[[], Awaitable[str]]) -> str:
    name = await scratch_databases()
    result = await asyncio.to_thread(run_cli, "migrate", env=cli_env(PANIC_POSTGRES__DATABASE=name))
    assert result.returncode == 0, result.stderr
    return name


@pytest.fixture
def migrated_env(migrated_db: str) -> dict[str, str]:
    return cli_env(PANIC_POSTGRES__DATABASE=migrated_db)


async def test_migrate_twice_applies_once(
    settings: Settings, scratch_databases: Callable[[], Awaitable[str]]
) -> None:
    name = await scratch_databases()
    env = cli_env(PANIC_POSTGRES__DATABASE=name)
    first = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied ")
    assert "0001" in first.stdout
    assert name in first.stdout

    second = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "no migration applied" in second.stdout
    assert "0001" not in second.stdout

    conn = await asyncpg.connect(settings.postgres.dsn(name))
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        users_table = await conn.fetchval("SELECT to_regclass('public.users')::text")
    finally:
        await conn.close()
    recorded = [r["version"] for r in rows]
    assert recorded[0] == "0001"
    assert first.stdout.count(",") + 1 == len(recorded)
    assert users_table == "users"


async def test_create_admin_then_duplicate_is_a_clear_error(
    settings: Settings, migrated_env: dict[str, str], migrated_db: str
) -> None:
    created = await asyncio.to_thread(
        run_cli,
        "create-admin",
        "--email",
        "Ada.Admin@Example.org",
        "--full-name",
        "Ada Admin",
        "--password-stdin",
        env=migrated_env,
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin ")
    account_id = uuid.UUID(created.stdout.split()[2])
    assert ADMIN_PASSWORD not in created.stdout + created.stderr

    conn = await asyncpg.connect(settings.postgres.dsn(migrated_db))
    try:
        row = await conn.fetchrow(
            "SELECT email, full_name, role, password_hash, disabled FROM users WHERE id = $1",
            account_id,
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["email"] == "ada.admin@example.org"
    assert row["full_name"] == "Ada Admin"
    assert row["role"] == "admin"
    assert row["disabled"] is False
    auth = settings.auth
    assert row["password_hash"].startswith(
        f"$argon2id$v=19$m={auth.argon2_memory_kib},t={auth.argon2_time_cost},"
        f"p={auth.argon2_parallelism}$"
    )
    assert PasswordHasher(auth).verify(row["password_hash"], ADMIN_PASSWORD)

    duplicate = await asyncio.to_thread(
        run_cli,
        "create-admin",
        "--email",
        "ada.admin@EXAMPLE.org",
        "--full-name",
        "Someone Else",
        "--password-stdin",
        env=migrated_env,
        stdin="another-long-passphrase\n",
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "ada.admin@example.org" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    assert duplicate.stdout == ""


async def test_create_admin_if_no_admin_creates_only_the_first(
    scratch_databases: Callable[[], Awaitable[str]],
) -> None:
    name = await scratch_databases()
    env = cli_env(PANIC_POSTGRES__DATABASE=name)
    migrated = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr

    def first(email: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "create-admin",
            "--if-no-admin",
            "--email",
            email,
            "--full-name",
            "First Administrator",
            "--password-stdin",
            env=env,
            stdin=ADMIN_PASSWORD + "\n",
        )

    created = await asyncio.to_thread(first, "first@example.org")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin ")
    again = await asyncio.to_thread(first, "second@example.org")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "an administrator exists already; none created"


def test_create_admin_refuses_a_short_password(migrated_env: dict[str, str]) -> None:
    result = run_cli(
        "create-admin",
        "--email",
        "short@example.org",
        "--full-name",
        "Short",
        "--password-stdin",
        env=migrated_env,
        stdin="short\n",
    )
    assert result.returncode == 2
    assert "at least 12 characters" in result.stderr


def test_create_admin_without_a_terminal_asks_for_password_stdin(
    migrated_env: dict[str, str],
) -> None:
    result = run_cli(
        "create-admin", "--email", "x@example.org", "--full-name", "X", env=migrated_env
    )
    assert result.returncode == 2
    assert "--password-stdin" in result.stderr


def test_password_is_not_accepted_as_an_argument(migrated_env: dict[str, str]) -> None:
    result = run_cli(
        "create-admin",
        "--email",
        "x@example.org",
        "--full-name",
        "X",
        "--password",
        ADMIN_PASSWORD,
        env=migrated_env,
    )
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_invalid_configuration_exits_2_without_leaking_secrets() -> None:
    env = cli_env(PANIC_PROFILE="prod", PANIC_HTTP__PORT="not-a-port")
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "http.port" in result.stderr
    assert "Traceback" not in result.stderr
    assert "panic-dev-password" not in result.stderr

    env = cli_env(PANIC_PROFILE="prod")
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert "postgres.password" in result.stderr
    assert "panic-dev-password" not in result.stderr


async def test_relay_drain_relays_what_is_committed_and_exits(
    settings: Settings, migrated_db: str
) -> None:
    mongo_db = f"panic_cli_drain_{uuid.uuid4().hex[:8]}"
    env = cli_env(PANIC_POSTGRES__DATABASE=migrated_db, PANIC_MONGO__DATABASE=mongo_db)
    pool = await create_pool(settings.postgres, database=migrated_db)
    store = EventStore(settings.mongo, database=mongo_db)
    try:
        # Rows other tests left unsent in this database are relayed too: count ours.
        before = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        events = [
            OutboxEvent(
                uuid.uuid4(),
                "system-events",
                "cli-drain",
                "system.check",
                None,
                {"n": n},
                datetime.now(UTC),
            )
            for n in range(3)
        ]
        async with pool.acquire() as conn, conn.transaction():
            await write_outbox(conn, events)
        result = await asyncio.to_thread(run_cli, "relay", "--drain", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"relayed {before + 3} outbox event(s)"
        for event in events:
            sent = await pool.fetchval(
                "SELECT sent_at FROM outbox WHERE event_id = $1", event.event_id
            )
            assert sent is not None
            assert await store.count("system_logs", {"_id": str(event.event_id)}) == 1
        # Nothing left: a second drain relays nothing and still exits 0.
        again = await asyncio.to_thread(run_cli, "relay", "--drain", env=env)
        assert (again.returncode, again.stdout.strip()) == (0, "relayed 0 outbox event(s)")
    finally:
        await pool.close()
        await store.close()
        await drop_mongo_database(settings, mongo_db)


async def test_relay_drain_with_kafka_unreachable_exits_1(migrated_db: str) -> None:
    env = cli_env(
        PANIC_POSTGRES__DATABASE=migrated_db, PANIC_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1"
    )
    result = await asyncio.to_thread(run_cli, "relay", "--drain", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "relay --drain failed" in result.stderr
    assert "Traceback" not in result.stderr


async def test_relay_command_publishes_committed_outbox_rows(
    settings: Settings, migrated_db: str
) -> None:
    mongo_db = f"panic_cli_relay_{uuid.uuid4().hex[:8]}"
    env = cli_env(PANIC_POSTGRES__DATABASE=migrated_db, PANIC_MONGO__DATABASE=mongo_db)
    proc = await asyncio.create_subprocess_exec(
        PANIC_ALERT,
        "relay",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pool = await create_pool(settings.postgres, database=migrated_db)
    store = EventStore(settings.mongo, database=mongo_db)
    try:
        event_id = uuid.uuid4()
        async with pool.acquire() as conn, conn.transaction():
            await write_outbox(
                conn,
                [
                    OutboxEvent(
                        event_id,
                        "system-events",
                        "cli-test",
                        "system.check",
                        None,
                        {"n": 1},
                        datetime.now(UTC),
                    )
                ],
            )
        sent = None
        deadline = time.monotonic() + 60
        while sent is None and time.monotonic() < deadline:
            assert proc.returncode is None, "relay exited early"
            sent = await pool.fetchval("SELECT sent_at FROM outbox WHERE event_id = $1", event_id)
            await asyncio.sleep(0.2)
        assert sent is not None, "the relay did not publish the row"
        assert await store.count("system_logs", {"_id": str(event_id)}) == 1
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()[-3000:]
        assert b"Traceback" not in output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await pool.close()
        await store.close()
        await drop_mongo_database(settings, mongo_db)
