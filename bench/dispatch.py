"""Benchmark of dispatch over real HTTP and WebSockets: prints one JSON object.

  .venv/bin/python bench/dispatch.py [--agents 5000] [--rate 50] [--seconds 20]
      [--drop 0] [--no-storm] [--concurrency 200] [--shards 0] [--gateways 0]
      [--set PANIC_X=VALUE]...

Starts ``panic-alert serve`` (with ``--gateways`` gateway processes on its
port; 0, the default, is serve's own default of one per core) on a scratch
database and ``--agents`` agent
apps (bench/live.py), each available at a random position over a 30 x 30 km
city (Berlin; seeded), ``--concurrency`` connecting at a time. Each app does
what API.md's clients do: pings on a jittered schedule (a third of
``auth.ok``'s ``heartbeat_timeout_s``), confirms each offer with
``offer.received`` and accepts it at once, and reconnects (back-off, jitter,
auth, status, location) whenever its socket closes. Then users raise alerts
at random points of the city at ``--rate`` per second (open loop) for
``--seconds``. A quarter of the way in, ``--drop`` of the agents (a seeded
choice) drop their connections and stay away. The benchmark measures:

- ``first_offer_p50_ms``/``_p99_ms``/``_max_ms``: from sending
  ``POST /alerts`` to the first ``alert.offer`` on any agent's socket (target
  p99 <= 150 ms); ``offered``, ``not_offered_in_5s``, ``post_failures``;
- ``nearest_share``: the share of alerts first offered to the truly nearest
  available agent (target 100 % while all accept). "Available" is the
  benchmark's own account: every agent not yet offered an alert (each
  accepts its first offer at once, so it is busy from then on) and not
  dropped. An offer to anyone else, or no offer within 5 s, counts against it;
- ``connect_s``: until every agent's ``agent.status`` was acknowledged (it is
  listed), ``connect_not_listed``: agents not listed within 60 s each;
- ``drop``, ``dropped``, ``offers_to_dropped``: offers the dispatcher made
  (the alerts' timelines, ``GET /alerts/{id}/timeline``) to a dropped agent
  after it dropped; each waits out its offer on a socket that is gone;
- ``closes_by_code``: sockets the gateway (or the network) closed without the
  benchmark asking, by close code (4408: idle; "no close": the app gave up
  waiting for ``auth.ok``); ``reconnects``: apps listed again after such a
  close, ``failed_attempts``: (re)connections that were refused, timed out or
  closed before the status acknowledgement, both up to the storm;
  ``pings``: keepalive pings sent; ``alerts_cores``: cores each group of
  processes used while the alerts were raised (bench/cpu.py's groups;
  ``apps``: this benchmark's own process);
- with ``--storm`` (the default; ``--no-storm`` leaves it out), after the
  alerts: every present agent's connection is reset at once, as a network
  blip does (no close frame), and the apps reconnect. ``storm_listed_p50_s``/
  ``_p99_s``/``_max_s`` over the ``storm_agents`` available ones: from the
  closing to the acknowledgement of the app's ``agent.status available``
  (the gateway answers ``ack`` once the agent's entity took it, which lists
  it; a socket back within the disconnect grace was listed on reconnecting);
  ``storm_all_listed_s``: until the last one (-1: some were not listed
  within 60 s: ``storm_not_listed``); ``storm_failed_attempts``:
  reconnections that failed meanwhile (each waits out a back-off), and
  ``storm_failures_by_reason`` by exception (``TimeoutError``: no answer to
  the opening handshake or the ``auth`` frame within 10 s);
  ``storm_busy_agents`` (an alert accepted) reconnect too but are not listed;
  ``storm_listed_per_s``: how many were listed again in each second;
  ``storm_cpu_s``: CPU seconds each group of processes spent from the closing
  to the last listing (``apps``: this benchmark's own process, the agent apps;
  the rest as in bench/cpu.py), and ``storm_cpu_ms_per_reconnect`` their sum
  per socket closed.

Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import httpx
import numpy as np
import uvloop

from bench import cpu
from bench.live import (
    AgentSocket,
    Fleet,
    add_settings_flag,
    live_gateway,
    percentile,
    progress,
    settings_of,
)
from bench.load import HttpLoad, request_bytes

#: The city: a 30 x 30 km box around Berlin's centre.
CENTRE = (52.52, 13.405)
HALF_LAT = 15_000 / 111_320
HALF_LON = 15_000 / (111_320 * math.cos(math.radians(CENTRE[0])))
OFFER_WAIT_S = 5.0
#: ``--drop`` agents leave this far into the alerts (a quarter of ``--seconds``).
DROP_AFTER = 0.25


def city_point(rng: random.Random) -> tuple[float, float]:
    return (
        round(CENTRE[0] + rng.uniform(-HALF_LAT, HALF_LAT), 6),
        round(CENTRE[1] + rng.uniform(-HALF_LON, HALF_LON), 6),
    )


class Ledger:
    """Which agent each alert was first offered to, and when; who is still free.

    The nearest free agent is found with a vectorised haversine over every
    agent (numpy): the benchmark shares the 2 cores with what it measures,
    and a Python loop over 5,000 agents per alert took a third of a core.
    """

    def __init__(self, agents: list[AgentSocket]) -> None:
        self.agents = agents
        self.index = {a.account.id: i for i, a in enumerate(agents)}
        self.lat = np.radians([a.position[0] for a in agents])
        self.lon = np.radians([a.position[1] for a in agents])
        self.free = np.ones(len(agents), dtype=bool)
        self.first_offer: dict[str, tuple[AgentSocket, float]] = {}

    def on_offer(self, agent: AgentSocket, alert_id: str) -> None:
        self.first_offer.setdefault(alert_id, (agent, time.perf_counter()))
        self.taken(agent)  # it accepts at once: busy from now on

    def taken(self, agent: AgentSocket) -> None:
        """``agent`` is not available any more (busy, or gone)."""
        self.free[self.index[agent.account.id]] = False

    def nearest_free(self, point: tuple[float, float]) -> AgentSocket:
        lat, lon = math.radians(point[0]), math.radians(point[1])
        a = (
            np.sin((self.lat - lat) / 2) ** 2
            + math.cos(lat) * np.cos(self.lat) * np.sin((self.lon - lon) / 2) ** 2
        )
        distance = np.where(self.free, a, np.inf)  # monotonic in the great-circle distance
        return self.agents[int(np.argmin(distance))]


@dataclass(frozen=True)
class Sent:
    """One ``POST /alerts``: its alert (None: it failed), when, by whom, who was nearest."""

    alert_id: str | None
    began: float
    user: Any
    expected: AgentSocket


async def raise_alerts(
    port: int, users: list[Any], ledger: Ledger, rate: float, total: int, seed: int
) -> list[Sent]:
    """POST ``total`` alerts at ``rate``/s."""
    rng = random.Random(seed)
    host = f"127.0.0.1:{port}"
    load = HttpLoad("127.0.0.1", port)
    sent: list[Sent] = []

    async def one(n: int) -> None:
        point = city_point(rng)
        expected = ledger.nearest_free(point)
        user = users[n % len(users)]
        body = {"latitude": point[0], "longitude": point[1], "alert_type": "panic"}
        raw = request_bytes("POST", "/alerts", host, user.headers, body)
        began = time.perf_counter()
        try:
            status, answer = await load.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            sent.append(Sent(None, began, user, expected))
            return
        alert_id = json.loads(answer)["id"] if status == 201 else None
        sent.append(Sent(alert_id, began, user, expected))

    try:
        start = time.perf_counter()
        tasks = []
        for n in range(total):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    finally:
        await load.close()
    return sent


async def drop_agents(
    agents: list[AgentSocket], ledger: Ledger, after_s: float
) -> dict[str, datetime]:
    """After ``after_s``, ``agents`` close their sockets for good; when each left."""
    if not agents:
        return {}
    await asyncio.sleep(after_s)
    progress("dispatch", f"dropping {len(agents)} agents")
    left: dict[str, datetime] = {}
    for agent in agents:
        ledger.taken(agent)
        left[str(agent.account.id)] = datetime.now().astimezone()
    await asyncio.gather(*(agent.stay_away() for agent in agents))
    return left


async def offers_to(base_url: str, sent: list[Sent], left: dict[str, datetime]) -> int:
    """Offers the alerts' timelines record to an agent of ``left`` after it left."""
    if not left:
        return 0
    slots = asyncio.Semaphore(20)
    count = 0

    async def one(http: httpx.AsyncClient, alert: Sent) -> None:
        nonlocal count
        async with slots:
            path = f"/alerts/{alert.alert_id}/timeline"
            answer = await http.get(path, headers=alert.user.headers)
        answer.raise_for_status()
        for item in answer.json()["items"]:
            agent_id = item["data"].get("agent_id")
            if item["type"] == "offered" and agent_id in left:
                count += datetime.fromisoformat(item["at"]) >= left[agent_id]

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await asyncio.gather(*(one(http, alert) for alert in sent if alert.alert_id))
    return count


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--drop",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="that share of the agents leaves for good a quarter of the way in",
    )
    parser.add_argument(
        "--storm",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the alerts, close every socket at once and time the agents' return",
    )
    parser.add_argument("--concurrency", type=int, default=200, help="agents connecting at once")
    parser.add_argument("--shards", type=int, default=0, help="0: serve's default")
    parser.add_argument(
        "--gateways", type=int, default=0, help="serve's gateway processes (0: serve's default)"
    )
    parser.add_argument("--seed", type=int, default=7)
    add_settings_flag(parser)
    args = parser.parse_args()
    if not 0 <= args.drop < 1:
        parser.error("--drop is a fraction in [0, 1)")
    total = int(args.rate * args.seconds)
    # One user per alert: a user has one open alert at a time (a second press
    # answers with it, gateway/alert_press.py).
    users = total
    env = {"PANIC_RAY__SHARDS": str(args.shards), **settings_of(parser, args.set)}
    rng = random.Random(args.seed)

    async with live_gateway(
        "dispatch", users=users, agents=args.agents, env=env, gateways=args.gateways
    ) as live:
        agents = [AgentSocket(a, city_point(rng), accept=True) for a in live.agents]
        ledger = Ledger(agents)
        for agent in agents:
            agent.on_offer = ledger.on_offer
        leaving = random.Random(args.seed + 1).sample(agents, round(args.drop * len(agents)))
        async with Fleet(agents, "dispatch", seed=args.seed) as fleet:
            connect_s, not_listed = await fleet.connect(live.ws_url, args.concurrency)
            await asyncio.sleep(5)  # positions reach the region entities
            progress("dispatch", f"{total} alerts at {args.rate}/s")
            dropping = asyncio.create_task(drop_agents(leaving, ledger, DROP_AFTER * args.seconds))
            meter = cpu.CpuMeter(live.gateway_pids, own="apps")
            await meter.start()
            sent = await raise_alerts(live.port, live.users, ledger, args.rate, total, args.seed)
            alerts_cores = cpu.cores(*await meter.stop())
            left = await dropping
            await asyncio.sleep(OFFER_WAIT_S)
            offers_to_dropped = await offers_to(live.base_url, sent, left)
            closes, reconnects = fleet.closes(), fleet.reconnects()
            failed_attempts = fleet.failed_attempts()
            storm = await storm_with_cpu(fleet, live.gateway_pids) if args.storm else {}
            # Printed before the apps and serve are closed (slow after a storm).
            result = {
                "cpus": os.cpu_count(),
                "shards": args.shards or "default",
                "gateways": len(live.gateway_pids),
                "settings": args.set,
                "agents": args.agents,
                "rate": args.rate,
                "alerts": total,
                **first_offers(sent, ledger),
                "connect_s": round(connect_s, 2),
                "connect_not_listed": not_listed,
                "drop": args.drop,
                "dropped": len(left),
                "offers_to_dropped": offers_to_dropped,
                "closes_by_code": closes,
                "reconnects": reconnects,
                "failed_attempts": failed_attempts,
                "pings": fleet.keepalive.pings,
                "alerts_cores": alerts_cores,
                **storm,
            }
            print(json.dumps(result), flush=True)
            progress("dispatch", "closing the agents and serve")


async def storm_with_cpu(fleet: Fleet, gateways: list[int]) -> dict[str, Any]:
    """The fleet's storm, with the CPU each group of processes spent on it."""
    meter = cpu.CpuMeter(gateways, own="apps")
    await meter.start()
    storm = await fleet.storm()
    used, _seconds = await meter.stop()
    reconnects = storm["storm_agents"] + storm["storm_busy_agents"]
    return {
        **storm,
        "storm_cpu_s": {group: round(seconds, 2) for group, seconds in used.items()},
        "storm_cpu_ms_per_reconnect": round(sum(used.values()) * 1000 / max(reconnects, 1), 2),
    }


def first_offers(sent: list[Sent], ledger: Ledger) -> dict[str, Any]:
    """The first-offer latencies and the nearest share over ``sent``."""
    latencies: list[float] = []
    nearest = missed = failed = 0
    for alert in sent:
        if alert.alert_id is None:
            failed += 1
            continue
        first = ledger.first_offer.get(alert.alert_id)
        if first is None or first[1] - alert.began > OFFER_WAIT_S:
            missed += 1
            continue
        agent, at = first
        latencies.append((at - alert.began) * 1000)
        nearest += agent is alert.expected
    return {
        "post_failures": failed,
        "offered": len(latencies),
        "not_offered_in_5s": missed,
        "first_offer_p50_ms": percentile(latencies, 0.50),
        "first_offer_p99_ms": percentile(latencies, 0.99),
        "first_offer_max_ms": percentile(latencies, 1.0),
        "nearest_share": round(nearest / len(sent), 4) if sent else -1,
    }


if __name__ == "__main__":
    # The apps share the machine's cores with what they measure: the lighter loop.
    uvloop.run(main())
