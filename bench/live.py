"""What the live-gateway benchmarks share: a ``panic-alert serve`` on a scratch
database, accounts made directly, agent apps (:class:`AgentSocket`, kept
alive and reconnected as API.md's clients are, in a :class:`Fleet`),
percentiles, progress lines.

Imported by bench/gateway.py and bench/dispatch.py (run as scripts from the
repository root; they put the root first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import psutil
import websockets

from config.heap import freeze_startup_heap
from config.settings import Settings
from gateway.auth.principal import Role
from persistence.drivers.postgres import create_pool
from tests.integration.api.accounts import Account, forget_accounts, make_account
from tests.local import PANIC_ALERT, free_port
from tests.scratch import drop_mongo_database, on_database, scratch_database

#: The checkout these benchmarks belong to.
ROOT = Path(__file__).resolve().parent.parent

#: Whatever names a socket in a :class:`PingSchedule`.
K = TypeVar("K")


def progress(bench: str, message: str) -> None:
    print(f"bench/{bench}: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values``; -1 when there are none."""
    if not values:
        return -1
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


@dataclass
class Live:
    """A running ``panic-alert serve`` and the accounts made for the benchmark."""

    port: int
    pid: int
    users: list[Account]
    agents: list[Account]
    #: Every gateway process's pid: serve's own, then the others it started on
    #: its port (``PANIC_HTTP__GATEWAYS``).
    gateway_pids: list[int] = field(default_factory=list)
    admins: list[Account] = field(default_factory=list)
    #: The scratch PostgreSQL (and MongoDB) database's name.
    database: str = ""
    #: serve's log records at WARNING or above (its JSON lines), read once it has
    #: stopped: slow garbage collections, a shard falling behind.
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@asynccontextmanager
async def live_gateway(
    name: str,
    *,
    users: int,
    agents: int,
    env: dict[str, str] | None = None,
    before_serve: Callable[[dict[str, str]], Awaitable[None]] | None = None,
    gateways: int = 0,
    admins: int = 0,
) -> AsyncIterator[Live]:
    """Accounts on a scratch database, then ``serve`` on a free port until it is ready.

    ``before_serve`` runs first with the environment ``serve`` will get (e.g.
    to import data with another ``panic-alert`` command on the same database).
    ``gateways`` is serve's ``PANIC_HTTP__GATEWAYS`` (0: serve's default, one
    gateway process per core); every one of them listens before this yields.
    """
    settings = Settings()
    with cancelled_on_sigterm():
        async with _live_gateway(
            settings, name, users, agents, admins, env, before_serve, gateways
        ) as live:
            yield live


def serve_env(
    environ: Mapping[str, str],
    database: str,
    *,
    port: int,
    dashboard_port: int,
    gateways: int = 0,
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a benchmark's ``serve``: the caller's, its PANIC_*
    settings included (the benchmark read them too, through ``Settings()``, so
    services on other ports or hosts are the same for both), then the
    benchmark's own (a scratch database, free ports, its namespace), then
    ``env`` (``--set``; ``gateways``, when not 0, as ``PANIC_HTTP__GATEWAYS``)."""
    return {
        **environ,
        # This checkout's code, in serve and its Ray workers: the venv's
        # editable install may point at another checkout.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")])),
        "PANIC_POSTGRES__DATABASE": database,
        # A MongoDB database of its own too: nothing left by earlier runs
        # (the relay's retention purge would scan it all on FerretDB).
        "PANIC_MONGO__DATABASE": database,
        "PANIC_HTTP__PORT": str(port),
        "PANIC_RAY__DASHBOARD_PORT": str(dashboard_port),
        # Named actors of their own: a process on this machine that joins
        # "the" Ray cluster (address auto) finds the newest one, maybe this.
        "PANIC_RAY__NAMESPACE": database,
        "PANIC_LOG_LEVEL": "WARNING",
        # Off, as in the figures recorded so far; it adds a planner read per alert event.
        "PANIC_NOTIFY__ENABLED": "false",
        **({"PANIC_HTTP__GATEWAYS": str(gateways)} if gateways else {}),
        **(env or {}),
    }


@contextlib.contextmanager
def cancelled_on_sigterm() -> Iterator[None]:
    """While in it, SIGTERM (``timeout``, ``kill``) cancels the running task, so
    the ``finally`` blocks run as on Ctrl-C: ``serve`` is stopped, the scratch
    databases dropped. Python's default for SIGTERM is to end at once, which
    left both behind (a killed bench's ``pa_bench_*`` databases)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is None:
        yield
        return
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


@asynccontextmanager
async def _live_gateway(
    settings: Settings,
    name: str,
    users: int,
    agents: int,
    admins: int,
    env: dict[str, str] | None,
    before_serve: Callable[[dict[str, str]], Awaitable[None]] | None,
    gateways: int,
) -> AsyncIterator[Live]:
    async with scratch_database(settings, f"pa_bench_{name}") as database:
        on_db = on_database(settings, database)
        pool = await create_pool(on_db.postgres)
        progress(name, f"creating {users} users and {agents} agents")
        try:
            user_accounts = [await make_account(pool, on_db, Role.USER) for _ in range(users)]
            agent_accounts = [await make_account(pool, on_db, Role.AGENT) for _ in range(agents)]
            admin_accounts = [await make_account(pool, on_db, Role.ADMIN) for _ in range(admins)]
        finally:
            await pool.close()
        port = free_port()
        inherited = sorted(k for k in os.environ if k.startswith("PANIC_"))
        if inherited:
            progress(name, f"serve inherits {', '.join(inherited)} from the environment")
        child_env = serve_env(
            os.environ, database, port=port, dashboard_port=free_port(), gateways=gateways, env=env
        )
        if before_serve is not None:
            await before_serve(child_env)
        progress(name, "starting panic-alert serve")
        logs = tempfile.mkdtemp(prefix="panic-alert-serve-")
        log = Path(logs, "serve.log")
        proc = await _serve(child_env, log)
        live = Live(port, proc.pid, user_accounts, agent_accounts, [], admin_accounts, database)
        try:
            await _until_ready(live.base_url, proc, log)
            live.gateway_pids = await _listening(proc.pid, port, gateways or os.cpu_count() or 1)
            progress(name, f"{len(live.gateway_pids)} gateway processes listening on {port}")
            yield live
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)  # it stops the gateways it started
                try:
                    await asyncio.wait_for(proc.wait(), 90)
                except TimeoutError:
                    proc.kill()
            live.warnings = await asyncio.to_thread(warnings_in, log)
            shutil.rmtree(logs, ignore_errors=True)
            await forget_accounts(settings, user_accounts + agent_accounts + admin_accounts)
            await drop_mongo_database(settings, database)


#: At most this many of serve's warnings are kept (the first ones).
MAX_WARNINGS = 500


def warnings_in(log: Path) -> list[dict[str, Any]]:
    """The JSON records at WARNING or above in serve's ``log`` (other lines, from
    Ray or a crash, are skipped), the first ``MAX_WARNINGS``."""
    found: list[dict[str, Any]] = []
    with contextlib.suppress(OSError), log.open(errors="replace") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("level") in ("WARNING", "ERROR", "CRITICAL"):
                found.append(record)
                if len(found) >= MAX_WARNINGS:
                    break
    return found


async def _listening(pid: int, port: int, count: int, deadline_s: float = 120) -> list[int]:
    """serve's pid and its other gateway processes', once ``count`` listen on ``port``."""
    began = time.monotonic()
    while True:
        found = await asyncio.to_thread(_listeners, pid, port)
        if len(found) >= count:
            return found
        if time.monotonic() - began > deadline_s:
            raise RuntimeError(f"{len(found)} of {count} gateway processes listen on {port}")
        await asyncio.sleep(0.5)


def _listeners(pid: int, port: int) -> list[int]:
    serve = psutil.Process(pid)
    found = []
    for proc in [serve, *serve.children()]:
        with contextlib.suppress(psutil.Error):
            if any(
                c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                for c in proc.net_connections(kind="tcp")
            ):
                found.append(proc.pid)
    return found


async def _serve(env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    """``panic-alert serve``, its output to ``log`` (read back if it fails to start)."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            PANIC_ALERT,
            "serve",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _until_ready(
    base_url: str, proc: asyncio.subprocess.Process, log: Path, deadline_s: float = 120
) -> None:
    """Wait for ``/readyz``; fail at once, with the end of its log, if serve exits."""
    async with httpx.AsyncClient(timeout=3) as http:
        began = time.monotonic()
        while time.monotonic() - began < deadline_s:
            if proc.returncode is not None:
                tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-4000:]
                raise RuntimeError(
                    f"panic-alert serve exited with code {proc.returncode} before it was "
                    f"ready at {base_url}; the end of its output:\n{tail}"
                )
            try:
                if (await http.get(f"{base_url}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.5)
    raise RuntimeError(f"panic-alert serve not ready at {base_url} in {deadline_s}s")


#: An agent app pings this many times per ``heartbeat_timeout_s`` (``auth.ok``
#: says how long the gateway waits for a frame before closing with 4408), so a
#: late or lost ping still leaves two before that.
PINGS_PER_HEARTBEAT = 3
#: Reconnect back-off, "full jitter": after the n-th failed attempt in a row an
#: app waits uniform(0, min(cap, base * 2**n)) seconds.
RECONNECT_BASE_S = 1.0
RECONNECT_CAP_S = 30.0
#: Opening a socket and its ``auth.ok``: given up (and retried) after this long.
OPEN_TIMEOUT_S = 10.0
#: Closing a socket waits this long for the gateway's close frame.
CLOSE_TIMEOUT_S = 2.0

#: The apps' ``ping`` frame (API.md); the gateway answers ``pong``.
PING_TEXT = '{"type":"ping"}'


class PingSchedule(Generic[K]):
    """When each of many sockets pings next, as the apps do (API.md): every
    ``heartbeat_timeout_s / PINGS_PER_HEARTBEAT`` ±10 %, the first at a random
    point of the first interval, so sockets opened together do not ping
    together (a thousand pings due in the same second stall the benchmark's
    event loop, which then measures itself). The one place of that rule for
    every benchmark socket (``Keepalive``, ``bench.fixes.SenderSockets``,
    ``bench.geofence``'s probes). Pure: the caller gives the time, sends the
    pings, and says which socket pings :meth:`again` (one that closed does not).
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._due: list[tuple[float, int, K, float]] = []
        self._seq = itertools.count()

    def watch(self, key: K, heartbeat_s: float, now: float) -> None:
        """Socket ``key`` opened now, its ``auth.ok`` saying ``heartbeat_s``."""
        interval = heartbeat_s / PINGS_PER_HEARTBEAT
        self._push(now + self._rng.uniform(0, interval), key, interval)

    def due(self, now: float) -> list[tuple[K, float]]:
        """The sockets whose ping is due by ``now`` (each with its interval), taken
        off the schedule until :meth:`again` puts one back."""
        found = []
        while self._due and self._due[0][0] <= now:
            _at, _seq, key, interval = heapq.heappop(self._due)
            found.append((key, interval))
        return found

    def again(self, key: K, interval: float, now: float) -> None:
        """Socket ``key`` pinged at ``now``: its next ping an interval ±10 % on."""
        self._push(now + interval * self._rng.uniform(0.9, 1.1), key, interval)

    def next_at(self) -> float | None:
        """When the next ping is due; None when no socket is watched."""
        return self._due[0][0] if self._due else None

    def _push(self, at: float, key: K, interval: float) -> None:
        heapq.heappush(self._due, (at, next(self._seq), key, interval))


def backoff_s(failures: int, rng: random.Random) -> float:
    """How long an app waits before reconnecting after ``failures`` failed attempts."""
    return rng.uniform(0, min(RECONNECT_CAP_S, RECONNECT_BASE_S * 2**failures))


def add_settings_flag(parser: argparse.ArgumentParser) -> None:
    """``--set PANIC_NAME=VALUE`` (repeatable): a setting for serve."""
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PANIC_X=VALUE",
        help="a setting for serve (repeatable), e.g. --set PANIC_OUTBOX__LINGER_S=0.01",
    )


def settings_of(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    """The environment ``--set`` asks serve for (exits with usage on a bad item)."""
    env = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.startswith("PANIC_"):
            parser.error(f"--set wants PANIC_NAME=VALUE, got {item!r}")
        env[name] = value
    return env


def settle_heap() -> None:
    """The gateway's garbage-collector settings (``config.heap``), here, for the apps.

    They share this machine's two cores with the system they measure. With
    thousands of sockets alive, the collector's full passes over them were
    half of this process's CPU while a storm reconnected them all (py-spy),
    and the gateway waited on the apps rather than the other way round.
    """
    freeze_startup_heap("bench apps")


class Keepalive:
    """One ticker that pings every open agent socket on the socket's own schedule.

    API.md: clients send ``ping`` (answered by ``pong``); a socket silent for
    ``auth.ok``'s ``heartbeat_timeout_s`` is closed (4408). One task for all
    sockets instead of one each, on a :class:`PingSchedule`.
    """

    def __init__(self, rng: random.Random) -> None:
        self._schedule = PingSchedule[tuple["AgentSocket", Any]](rng)
        self._task: asyncio.Task[None] | None = None
        self.pings = 0

    def watch(self, agent: AgentSocket, ws: Any, heartbeat_s: float) -> None:
        """Ping ``ws`` as the apps do while it is ``agent``'s open socket."""
        self._schedule.watch((agent, ws), heartbeat_s, time.monotonic())

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        schedule = self._schedule
        while True:
            now = time.monotonic()
            for (agent, ws), interval in schedule.due(now):
                if agent.ws is not ws:
                    continue  # that socket closed; its successor is watched on its own
                with contextlib.suppress(websockets.ConnectionClosed):
                    await ws.send(PING_TEXT)
                    self.pings += 1
                    schedule.again((agent, ws), interval, now)
            due = schedule.next_at()
            wait = 0.5 if due is None else due - time.monotonic()
            await asyncio.sleep(min(0.5, max(0.01, wait)))


class AgentSocket:
    """An agent app: available at ``position``; records when each offer arrives.

    It does what API.md's agent app does: authenticates, says it is
    ``available`` (``busy`` once an ``offer.accept`` of its was acknowledged)
    and where it is, pings through a shared :class:`Keepalive`, confirms each
    ``alert.offer`` with ``offer.received`` (it says so at auth:
    ``acks_offers``; an offer it does not confirm in time moves on), and with
    ``accept`` answers every offer with ``offer.accept`` at once, as an agent
    who takes every alert would. When its socket closes, for any reason, it
    reconnects with back-off and jitter and says all of it again, unless told
    to :meth:`stay_away`.
    """

    def __init__(
        self,
        account: Account,
        position: tuple[float, float],
        *,
        accept: bool = False,
        on_offer: Callable[[AgentSocket, str], None] | None = None,
    ) -> None:
        self.account = account
        self.position = position
        self.accept = accept
        self.on_offer = on_offer
        self.offers: dict[str, float] = {}
        self.next_offer: asyncio.Future[str] | None = None
        #: The open, authenticated socket (None between sockets).
        self.ws: Any = None
        #: The alert this agent's ``offer.accept`` was acknowledged for.
        self.assignment: str | None = None
        #: When (perf_counter) the gateway last acknowledged this app's status
        #: frame; from then on an available agent is listed. None while closed.
        self.listed_at: float | None = None
        #: Sockets that closed without the benchmark asking, by close code
        #: ("no close": the app gave up on a socket that did not answer in time).
        self.closes: Counter[str] = Counter()
        #: Why (re)connections failed: the exception's type, e.g. TimeoutError.
        self.failures: Counter[str] = Counter()
        #: Sockets that got as far as the status acknowledgement.
        self.sessions = 0
        #: Attempts that did not (refused, timed out, closed before the ack).
        self.failed_attempts = 0
        self.away = False
        self._listed = asyncio.Event()
        self._asked_to_close: Any = None
        self._life: asyncio.Task[None] | None = None
        self._status_failures = 0
        self._retries: set[asyncio.Task[None]] = set()
        self._rng = random.Random(account.id.int)

    @property
    def status(self) -> str:
        """What the app says it is, on every (re)connect."""
        return "busy" if self.assignment is not None else "available"

    @property
    def reconnects(self) -> int:
        return max(0, self.sessions - 1)

    async def connect(
        self, ws_url: str, keepalive: Keepalive | None = None, timeout_s: float = 60
    ) -> bool:
        """Start the app; True once its status is acknowledged (False: not in ``timeout_s``).

        It goes on trying (with back-off) after a False, as an app would.
        """
        self._life = asyncio.create_task(self._live(ws_url, keepalive))
        listed = asyncio.create_task(self._listed.wait())
        done, _ = await asyncio.wait(
            {listed, self._life}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
        if listed in done:
            return True
        listed.cancel()
        if self._life in done:
            self._life.result()  # raises what stopped it
        return False

    async def bounce(self) -> None:
        """Drop the connection as a network blip would; the app reconnects.

        A blip sends no close frame: the TCP connection is reset (the gateway
        sees the socket gone at once, as when a phone's radio changes network).
        """
        ws = self.ws
        if ws is not None:
            self._asked_to_close = ws
            ws.transport.abort()

    async def stay_away(self) -> None:
        """Close the socket and do not come back."""
        self.away = True
        for retry in self._retries:
            retry.cancel()
        await self.bounce()
        if self._life is not None:
            self._life.cancel()  # it may be waiting to reconnect
            with contextlib.suppress(asyncio.CancelledError):
                await self._life

    async def close(self) -> None:
        await self.stay_away()

    async def _live(self, ws_url: str, keepalive: Keepalive | None) -> None:
        failures = 0
        while not self.away:
            sessions = self.sessions
            try:
                await self._session(ws_url, keepalive)
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                if self.sessions == sessions:
                    self.failures[type(exc).__name__] += 1
            if self.away:
                return
            failures = 0 if self.sessions > sessions else failures + 1
            self.failed_attempts += failures > 0
            await asyncio.sleep(backoff_s(failures, self._rng))

    async def _session(self, ws_url: str, keepalive: Keepalive | None) -> None:
        ws = await websockets.connect(
            ws_url,
            proxy=None,  # not looked up in the environment on every connect
            compression=None,  # the gateway does not take it (http.ws_per_message_deflate)
            max_size=2**20,
            ping_interval=None,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
        )
        try:
            auth = {"token": self.account.token, "acks_offers": True}  # it confirms offers
            await ws.send(json.dumps({"type": "auth", "data": auth}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S))
            if reply.get("type") != "auth.ok":
                raise RuntimeError(f"agent socket refused: {reply}")
            self.ws = ws
            await self._say_status(ws)
            lat, lon = self.position
            await ws.send(
                json.dumps({"type": "location", "data": {"latitude": lat, "longitude": lon}})
            )
            if keepalive is not None:
                keepalive.watch(self, ws, reply["data"]["heartbeat_timeout_s"])
            async for raw in ws:
                await self._on_frame(ws, json.loads(raw))
        finally:
            self.ws = None
            self.listed_at = None
            self._listed.clear()
            if ws is not self._asked_to_close:
                code = ws.close_code
                self.closes["no close" if code is None else str(code)] += 1
            await ws.close()

    async def _say_status(self, ws: Any) -> None:
        status = {"type": "agent.status", "id": "status", "data": {"status": self.status}}
        await ws.send(json.dumps(status))

    async def _say_status_again(self, ws: Any) -> None:
        """The status frame failed retriably (a backend down): again, after a back-off."""
        self._status_failures += 1
        await asyncio.sleep(backoff_s(self._status_failures, self._rng))
        if self.ws is ws:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._say_status(ws)

    async def _on_frame(self, ws: Any, frame: dict[str, Any]) -> None:
        kind, data = frame.get("type"), frame.get("data") or {}
        if kind == "ack" and data.get("type") == "agent.status":
            self.sessions += 1
            self._status_failures = 0
            self.listed_at = time.perf_counter()
            self._listed.set()
        elif kind == "error" and data.get("ref") == "status" and data.get("retriable"):
            retry = asyncio.create_task(self._say_status_again(ws))
            self._retries.add(retry)
            retry.add_done_callback(self._retries.discard)
        elif kind == "ack" and data.get("type") == "offer.accept" and data.get("alert_id"):
            self.assignment = data["alert_id"]
        elif kind == "alert.offer":
            await self._offered(ws, data["alert_id"])
        # pong: nothing to do; errors (an offer already taken): ignored.

    async def _offered(self, ws: Any, alert_id: str) -> None:
        # A resync repeats a pending offer after a reconnect: noted the first time only.
        if alert_id not in self.offers:
            self.offers[alert_id] = time.perf_counter()
            if self.on_offer is not None:
                self.on_offer(self, alert_id)
            if self.next_offer is not None and not self.next_offer.done():
                self.next_offer.set_result(alert_id)
        received = {"type": "offer.received", "id": alert_id, "data": {"alert_id": alert_id}}
        await ws.send(json.dumps(received))
        if self.accept:
            accept = {"type": "offer.accept", "id": alert_id, "data": {"alert_id": alert_id}}
            await ws.send(json.dumps(accept))


@dataclass
class Fleet:
    """Agent apps sharing one :class:`Keepalive`; ``async with`` closes them all."""

    agents: list[AgentSocket]
    bench: str
    seed: int = 0
    keepalive: Keepalive = field(init=False)

    def __post_init__(self) -> None:
        self.keepalive = Keepalive(random.Random(self.seed))

    async def __aenter__(self) -> Fleet:
        self.keepalive.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.gather(*(agent.close() for agent in self.agents))
        await self.keepalive.stop()

    async def connect(
        self, ws_url: str, concurrency: int = 200, timeout_s: float = 60
    ) -> tuple[float, int]:
        """Start every app on ``ws_url``, ``concurrency`` at a time.

        Returns the seconds until all were listed (or given up on) and how many
        were not listed within ``timeout_s`` each (they go on trying).
        """
        slots = asyncio.Semaphore(concurrency)
        began = time.perf_counter()
        last_report = began
        done = failed = 0

        async def one(agent: AgentSocket) -> None:
            nonlocal done, failed, last_report
            async with slots:
                listed = await agent.connect(ws_url, self.keepalive, timeout_s)
            done += 1
            failed += not listed
            now = time.perf_counter()
            if now - last_report >= 5 or done == len(self.agents):
                last_report = now
                progress(
                    self.bench,
                    f"{done}/{len(self.agents)} agents connected in {now - began:.1f}s"
                    + (f" ({failed} not listed in {timeout_s:g}s)" if failed else ""),
                )

        progress(self.bench, f"connecting {len(self.agents)} agents, {concurrency} at a time")
        await asyncio.gather(*(one(agent) for agent in self.agents))
        took = time.perf_counter() - began
        settle_heap()
        return took, failed

    def closes(self) -> dict[str, int]:
        """Sockets closed without the benchmark asking, by close code, over all apps."""
        total: Counter[str] = Counter()
        for agent in self.agents:
            total.update(agent.closes)
        return dict(sorted(total.items()))

    def reconnects(self) -> int:
        return sum(agent.reconnects for agent in self.agents)

    def failed_attempts(self) -> int:
        return sum(agent.failed_attempts for agent in self.agents)

    def failures(self) -> Counter[str]:
        """Why (re)connections failed, by exception type, over all apps."""
        total: Counter[str] = Counter()
        for agent in self.agents:
            total.update(agent.failures)
        return total

    async def storm(self, deadline_s: float = 60) -> dict[str, Any]:
        """Close every present app's socket at once; time until each is listed again.

        "Listed again" is what the app itself sees: the gateway acknowledges
        its ``agent.status`` frame after the agent's entity committed it. Busy
        agents (an alert accepted) reconnect too but are not listed; they are
        counted apart.
        """
        present = [agent for agent in self.agents if not agent.away]
        available = [agent for agent in present if agent.assignment is None]
        settle_heap()
        progress(self.bench, f"reconnect storm: {len(present)} connections reset at once")
        failed_before = self.failed_attempts()
        reasons_before = self.failures()
        began = time.perf_counter()
        await asyncio.gather(*(agent.bounce() for agent in present))
        while time.perf_counter() - began < deadline_s:
            if all((a.listed_at or 0) > began for a in available):
                break
            await asyncio.sleep(0.1)
        back = [a.listed_at - began for a in available if a.listed_at and a.listed_at > began]
        progress(self.bench, f"storm: {len(back)}/{len(available)} listed again")
        return {
            "storm_agents": len(available),
            "storm_busy_agents": len(present) - len(available),
            "storm_not_listed": len(available) - len(back),
            "storm_failed_attempts": self.failed_attempts() - failed_before,
            "storm_failures_by_reason": dict(sorted((self.failures() - reasons_before).items())),
            "storm_listed_p50_s": percentile(back, 0.50),
            "storm_listed_p99_s": percentile(back, 0.99),
            "storm_listed_max_s": percentile(back, 1.0),
            "storm_all_listed_s": percentile(back, 1.0) if len(back) == len(available) else -1,
            # How many were listed again in each second of the storm.
            "storm_listed_per_s": [
                sum(1 for t in back if second <= t < second + 1)
                for second in range(math.ceil(max(back, default=0)))
            ],
        }
