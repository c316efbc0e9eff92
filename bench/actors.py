"""Benchmark of the entity runtime on a local Ray: prints one JSON object.

  .venv/bin/python bench/actors.py [--shards 2] [--entities 10000] [--messages 200000]

Measures, on this machine, with the real PostgreSQL behind the shards (a
scratch database, dropped at the end):
- ``ask`` round trip through the client, p50 and p99 (target p50 <= 2 ms);
- batched messages/s through ``tell`` (target >= 50,000/s on 2 cores);
- memory for ``--entities`` idle activated entities (target <= 200 MB);
- recovery after a shard is killed while alerts are open with timers pending:
  time until the restarted shard has re-armed its timers and answers
  (target <= 3 s).
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

# Run as a script, this file's folder would come first on sys.path and its
# name would hide the ``actors`` package; the repository root goes there instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
# Keep every Ray address on loopback (read when ray is imported; see tests/conftest.py).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import ray

from actors.agent import Heartbeat
from actors.alert import AlertType, CreateAlert, OfferMade
from actors.effects import EntityKind
from cluster.client import EntityClient
from config.settings import Settings
from panic_alert import shard_root
from persistence.drivers.postgres import create_pool
from tests.local import init_local_ray
from tests.scratch import make_user, scratch_database

NAMESPACE = "panic-alert-bench"


def progress(message: str) -> None:
    print(f"bench/actors: {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure_ask(client: EntityClient, rounds: int) -> dict[str, float]:
    agents = [str(uuid4()) for _ in range(16)]
    for agent in agents:  # activation is not what we measure
        await client.ask(EntityKind.AGENT, agent, Heartbeat())
    latencies = []
    for n in range(rounds):
        began = time.perf_counter()
        await client.ask(EntityKind.AGENT, agents[n % len(agents)], Heartbeat())
        latencies.append((time.perf_counter() - began) * 1000)
    return {
        "ask_p50_ms": round(statistics.median(latencies), 3),
        "ask_p99_ms": round(percentile(latencies, 0.99), 3),
    }


async def measure_throughput(client: EntityClient, entities: list[str], messages: int) -> float:
    began = time.perf_counter()
    for n in range(messages):
        client.tell(EntityKind.AGENT, entities[n % len(entities)], Heartbeat())
        if n % 5000 == 4999:
            await asyncio.sleep(0)  # let batches leave while we keep producing
    await client.flush()
    return messages / (time.perf_counter() - began)


async def rss(shards: list[Any]) -> list[int]:
    stats = await asyncio.gather(*(s.stats.remote() for s in shards))
    return [int(s["rss_bytes"]) for s in stats]


async def measure_recovery(
    client: EntityClient, shards: list[Any], user: UUID, alerts: int
) -> dict[str, Any]:
    ids = [uuid4() for _ in range(alerts)]
    for alert_id in ids:
        await client.ask(
            EntityKind.ALERT,
            str(alert_id),
            CreateAlert(alert_id, user, AlertType.PANIC, 52.5, 13.4),
        )
        await client.ask(
            EntityKind.ALERT, str(alert_id), OfferMade(uuid4(), ttl=timedelta(minutes=5))
        )
    victim = 0
    owned = [a for a in ids if client.shard_of(EntityKind.ALERT, str(a)) == victim]
    before = await shards[victim].stats.remote()
    began = time.perf_counter()
    ray.kill(shards[victim], no_restart=False)
    while True:  # until the restarted process (a new pid) answers
        with contextlib.suppress(Exception):  # the actor is restarting
            after = await asyncio.wait_for(shards[victim].stats.remote(), 5)
            if after["pid"] != before["pid"]:
                break
        await asyncio.sleep(0.02)
    report = await shards[victim].ready.remote()  # recovery finished in the new process
    ready_s = time.perf_counter() - began
    state = await client.ask(EntityKind.ALERT, str(owned[0]), OfferMade(uuid4()))
    answered_s = time.perf_counter() - began
    assert getattr(state, "id", None) == owned[0]
    return {
        "recovery_s": round(ready_s, 3),
        "recovery_first_answer_s": round(answered_s, 3),
        "recovered_alerts": report["alerts"],
        "recovered_timers": report["timers"],
        "open_alerts_on_killed_shard": len(owned),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--asks", type=int, default=3_000)
    parser.add_argument("--alerts", type=int, default=200)
    args = parser.parse_args()

    settings = Settings()
    async with scratch_database(settings, "pa_bench_actors") as database:
        pool = await create_pool(settings.postgres, database=database)
        try:
            user = await make_user(pool)
            progress("starting Ray and shards")
            init_local_ray(NAMESPACE)
            shards = shard_root.start(
                settings.model_copy(
                    update={"postgres": settings.postgres.model_copy(update={"database": database})}
                ),
                args.shards,
                namespace=NAMESPACE,
            )
            result = await run(args, shards, user)
            print(json.dumps(result))
        finally:
            ray.shutdown()
            await pool.close()


async def run(args: argparse.Namespace, shards: list[Any], user: UUID) -> dict[str, Any]:
    client = EntityClient(args.shards, namespace=NAMESPACE)
    result: dict[str, Any] = {"shards": args.shards, "cpus": 2}

    progress(f"ask round trips x{args.asks}")
    result.update(await measure_ask(client, args.asks))

    progress(f"activating {args.entities} entities")
    rss_before = await rss(shards)
    entities = [str(uuid4()) for _ in range(args.entities)]
    await client.tell_many((EntityKind.AGENT, e, Heartbeat()) for e in entities)
    rss_after = await rss(shards)
    active = sum(s["active"] for s in await asyncio.gather(*(s.stats.remote() for s in shards)))
    result["idle_entities"] = args.entities
    result["idle_entities_memory_mb"] = round((sum(rss_after) - sum(rss_before)) / 2**20, 1)
    result["shards_rss_mb"] = [round(r / 2**20, 1) for r in rss_after]
    result["active_entities"] = active

    progress(f"throughput: {args.messages} batched messages")
    result["batched_messages_per_s"] = round(
        await measure_throughput(client, entities, args.messages)
    )

    progress(f"recovery: {args.alerts} open alerts with pending offer timers, kill a shard")
    result.update(await measure_recovery(client, shards, user, args.alerts))
    return result


if __name__ == "__main__":
    asyncio.run(main())
