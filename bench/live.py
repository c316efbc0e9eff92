"""What the live-gateway benchmarks share: a ``panic-alert serve`` on a scratch
database, accounts made directly, agent sockets, percentiles, progress lines.

Imported by bench/gateway.py and bench/dispatch.py (run as scripts from the
repository root; they put the root first on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets

from config.settings import Settings
from gateway.auth.principal import Role
from persistence.drivers.postgres import create_pool
from tests.integration.api.accounts import Account, forget_accounts, make_account
from tests.local import PANIC_ALERT, free_port
from tests.scratch import drop_mongo_database, on_database, scratch_database


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
    #: Every gateway process's (port, pid), the first one's included.
    replicas: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ws_urls(self) -> list[str]:
        """``/ws`` of every gateway process (one, unless ``replicas`` were asked for)."""
        return [f"ws://127.0.0.1:{port}/ws" for port, _pid in self.replicas]

    @property
    def base_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port, _pid in self.replicas]

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
    replicas: int = 1,
) -> AsyncIterator[Live]:
    """Accounts on a scratch database, then ``serve`` on free ports until it is ready.

    ``before_serve`` runs first with the environment ``serve`` will get (e.g.
    to import data with another ``panic-alert`` command on the same database).
    ``replicas`` > 1 starts that many gateway processes in all: the first one
    starts Ray and the shards, the others join it (``PANIC_RAY__ADDRESS=auto``,
    as a second gateway replica of a deployment would) on ports of their own.
    """
    settings = Settings()
    async with scratch_database(settings, f"pa_bench_{name}") as database:
        on_db = on_database(settings, database)
        pool = await create_pool(on_db.postgres)
        progress(name, f"creating {users} users and {agents} agents")
        try:
            user_accounts = [await make_account(pool, on_db, Role.USER) for _ in range(users)]
            agent_accounts = [await make_account(pool, on_db, Role.AGENT) for _ in range(agents)]
        finally:
            await pool.close()
        port = free_port()
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("PANIC_")}
        child_env.update(
            PANIC_POSTGRES__DATABASE=database,
            # A MongoDB database of its own too: nothing left by earlier runs
            # (the relay's retention purge would scan it all on FerretDB).
            PANIC_MONGO__DATABASE=database,
            PANIC_HTTP__PORT=str(port),
            PANIC_RAY__DASHBOARD_PORT=str(free_port()),
            PANIC_LOG_LEVEL="WARNING",
            # Off, as in the figures recorded so far; it adds a planner read per alert event.
            PANIC_NOTIFY__ENABLED="false",
            **(env or {}),
        )
        if before_serve is not None:
            await before_serve(child_env)
        progress(name, "starting panic-alert serve")
        logs = tempfile.mkdtemp(prefix="panic-alert-serve-")
        procs = [await _serve(child_env, Path(logs, "serve-0.log"))]
        live = Live(port, procs[0].pid, user_accounts, agent_accounts, [(port, procs[0].pid)])
        try:
            await _until_ready(live.base_url, procs[0], Path(logs, "serve-0.log"))
            for _ in range(replicas - 1):
                replica_port = free_port()
                progress(name, f"starting a gateway replica on port {replica_port}")
                replica_env = {
                    **child_env,
                    "PANIC_HTTP__PORT": str(replica_port),
                    "PANIC_RAY__ADDRESS": "auto",
                }
                log = Path(logs, f"serve-{len(procs)}.log")
                procs.append(await _serve(replica_env, log))
                live.replicas.append((replica_port, procs[-1].pid))
                await _until_ready(f"http://127.0.0.1:{replica_port}", procs[-1], log)
            yield live
        finally:
            for proc in reversed(procs):  # replicas first; the first one owns Ray
                if proc.returncode is not None:
                    continue
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), 60)
                except TimeoutError:
                    proc.kill()
            shutil.rmtree(logs, ignore_errors=True)
            await forget_accounts(settings, user_accounts + agent_accounts)
            await drop_mongo_database(settings, database)


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


class AgentSocket:
    """An agent app: available at ``position``; records when each offer arrives.

    With ``accept`` it answers every offer with ``offer.accept`` at once, as
    an agent who takes every alert would.
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
        self.ws: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def connect(self, ws_url: str) -> None:
        # No client-side keepalive pings: the gateway pings its sockets anyway,
        # and a thousand of the client's own, all due in the same second, stall
        # the benchmark's event loop (which then measures itself).
        self.ws = await websockets.connect(ws_url, max_size=2**20, ping_interval=None)
        await self.ws.send(json.dumps({"type": "auth", "data": {"token": self.account.token}}))
        reply = json.loads(await self.ws.recv())
        if reply["type"] != "auth.ok":
            raise RuntimeError(f"agent socket refused: {reply}")
        self.reader = asyncio.create_task(self._read())
        await self.ws.send(
            json.dumps({"type": "agent.status", "id": "s", "data": {"status": "available"}})
        )
        lat, lon = self.position
        await self.ws.send(
            json.dumps({"type": "location", "data": {"latitude": lat, "longitude": lon}})
        )

    async def _read(self) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame.get("type") != "alert.offer" or frame["data"].get("resync"):
                continue
            alert_id = frame["data"]["alert_id"]
            self.offers[alert_id] = time.perf_counter()
            if self.on_offer is not None:
                self.on_offer(self, alert_id)
            if self.next_offer is not None and not self.next_offer.done():
                self.next_offer.set_result(alert_id)
            if self.accept:
                accept = {"type": "offer.accept", "id": alert_id, "data": {"alert_id": alert_id}}
                await self.ws.send(json.dumps(accept))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()
