"""Benchmark of the gateway over real HTTP and WebSockets: prints one JSON object.

  .venv/bin/python bench/gateway.py [--rate 200] [--seconds 15] [--agents 1000] [--alerts 200]
                                    [--set PANIC_NAME=VALUE ...]

Starts ``panic-alert serve`` (embedded Ray, shard actors, relay) on a scratch
database and free loopback ports, then measures:
- ``POST /alerts`` latency at a fixed offered rate (p50/p95/p99; target p95
  <= 25 ms here, the seed asks 200 ms);
- trigger-to-agent-socket latency: with ``--agents`` agents connected, each
  available at its own position (apps of bench/live.py: they ping and
  reconnect as API.md's do), the time from sending ``POST /alerts`` next
  to one agent until that agent's socket receives ``alert.offer`` (p50/p99;
  target p99 <= 100 ms, the seed asks 500 ms);
- idle agent sockets one gateway process holds within 1 GB, extrapolated
  from the gateway's RSS growth while ``--agents`` sockets are open.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

# Run as a script, this file's folder would come first on sys.path and its
# name would hide the ``gateway`` package; the repository root goes there instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import httpx
import psutil
import uvloop

from bench.live import (
    AgentSocket,
    Fleet,
    add_settings_flag,
    live_gateway,
    percentile,
    progress,
    settings_of,
)
from bench.load import open_loop_in_process, request_bytes
from tests.integration.api.accounts import Account

#: Agents are spread on a grid ~2 km apart around this point (Berlin), so the
#: nearest agent to an alert placed next to one is unambiguous.
ORIGIN = (52.52, 13.405)
GRID_STEP_DEG = 0.02


def grid_position(index: int, side: int) -> tuple[float, float]:
    return (
        ORIGIN[0] + (index // side - side / 2) * GRID_STEP_DEG,
        ORIGIN[1] + (index % side - side / 2) * GRID_STEP_DEG,
    )


async def measure_post_latency(
    port: int, users: list[Account], rate: float, seconds: float, n_agents: int
) -> dict[str, Any]:
    """Open-loop load from the lean client in bench/load.py (see its note), run
    in a process of its own so the agent sockets held here cannot delay it."""
    # Outside the agents' grid (it spans +-0.32 degrees for 1,000 agents) by more
    # than the search radius, so no offer is made; the dispatch search still runs.
    far = GRID_STEP_DEG * (math.isqrt(max(1, n_agents)) + 1) / 2 + 0.5
    body = {"latitude": ORIGIN[0] + far, "longitude": ORIGIN[1] + far, "alert_type": "panic"}
    host = f"127.0.0.1:{port}"
    prepared = [request_bytes("POST", "/alerts", host, u.headers, body) for u in users]
    result = await open_loop_in_process("127.0.0.1", port, prepared, rate, int(rate * seconds))
    created = result.statuses.get(201, 0)
    by_second: dict[int, list[float]] = {}
    for due, latency in result.samples:
        by_second.setdefault(int(due), []).append(latency)
    progress(
        "gateway",
        "POST p95 by second: "
        + " ".join(f"{percentile(v, 0.95):.0f}" for _, v in sorted(by_second.items())),
    )
    latencies = result.latencies_ms
    return {
        "post_alerts_rate": rate,
        "post_alerts_requests": int(rate * seconds),
        "post_alerts_created": created,
        "post_alerts_failures": int(rate * seconds) - created,
        "post_alerts_statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "post_alerts_client_errors": result.errors,
        "post_alerts_p50_ms": percentile(latencies, 0.50),
        "post_alerts_p95_ms": percentile(latencies, 0.95),
        "post_alerts_p99_ms": percentile(latencies, 0.99),
    }


async def measure_trigger_to_socket(
    base_url: str, agents: list[AgentSocket], users: list[Account], alerts: int
) -> dict[str, float]:
    latencies: list[float] = []
    missed = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for n in range(alerts):
            agent = agents[(n * 7919) % len(agents)]
            lat, lon = agent.position
            agent.next_offer = asyncio.get_running_loop().create_future()
            began = time.perf_counter()
            response = await http.post(
                "/alerts",
                json={"latitude": lat + 0.0005, "longitude": lon, "alert_type": "medical"},
                headers=users[n % len(users)].headers,
            )
            alert_id = response.json()["id"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(agent.next_offer), 5)
            if alert_id in agent.offers:
                latencies.append((agent.offers[alert_id] - began) * 1000)
            else:
                missed += 1
    return {
        "trigger_to_socket_alerts": alerts,
        "trigger_to_socket_missed": missed,
        "trigger_to_socket_p50_ms": percentile(latencies, 0.50),
        "trigger_to_socket_p99_ms": percentile(latencies, 0.99),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--shards", type=int, default=0, help="0: serve's default")
    add_settings_flag(parser)
    args = parser.parse_args()

    # One user per alert: a user has one open alert at a time (a second press
    # answers with it, gateway/alert_press.py), and the alerts raised here stay open.
    posts = int(args.rate * args.seconds)
    n_users = posts + args.alerts
    env = {"PANIC_RAY__SHARDS": str(args.shards), **settings_of(parser, args.set)}
    async with live_gateway("gateway", users=n_users, agents=args.agents, env=env) as live:
        result: dict[str, Any] = {"cpus": os.cpu_count(), "shards": args.shards or "default"}
        if args.set:
            result["settings"] = args.set
        side = max(1, int(len(live.agents) ** 0.5) + 1)
        agents = [
            AgentSocket(account, grid_position(index, side))
            for index, account in enumerate(live.agents)
        ]
        async with Fleet(agents, "gateway") as fleet:
            # Sockets first, while the gateway is quiet, so their memory is not
            # mixed up with what a load phase leaves behind.
            gateway_process = psutil.Process(live.pid)
            await asyncio.sleep(2)
            rss_before = gateway_process.memory_info().rss
            await fleet.connect(live.ws_url)
            await asyncio.sleep(3)  # statuses and positions reach the actors
            rss_after = gateway_process.memory_info().rss
            per_socket = max(1, rss_after - rss_before) / len(agents)
            result["agent_sockets"] = len(agents)
            result["gateway_rss_mb"] = round(rss_after / 2**20, 1)
            result["bytes_per_idle_socket"] = round(per_socket)
            result["idle_sockets_per_gb"] = int(2**30 / per_socket)

            progress("gateway", f"POST /alerts at {args.rate}/s for {args.seconds}s")
            result.update(
                await measure_post_latency(
                    live.port, live.users[:posts], args.rate, args.seconds, len(agents)
                )
            )
            progress("gateway", f"trigger-to-socket over {args.alerts} alerts")
            result.update(
                await measure_trigger_to_socket(
                    live.base_url, agents, live.users[posts:], args.alerts
                )
            )
            print(json.dumps(result))


if __name__ == "__main__":
    # The apps share the machine's cores with what they measure: the lighter loop.
    uvloop.run(main())
