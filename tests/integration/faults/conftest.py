"""A two-node local Ray cluster (``ray.cluster_utils.Cluster``) with one shard per node.

Package-scoped: started once for the fault tests and torn down after them.
The shards use this package's own scratch database.

Placement is made deterministic with a custom resource: each node offers one
``shard_slot``; shard 1 needs one, and a ballast actor holds the head's, so
shard 1 can only start on the worker. Releasing the ballast before the worker
is removed gives shard 1 exactly one place to come back to: the head.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
import ray
from aiokafka import AIOKafkaConsumer, TopicPartition
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from cluster.client import EntityClient
from config.settings import Settings
from panic_alert import shard_root
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.drivers.postgres import create_pool
from persistence.outbox.events import CloudEvent
from persistence.outbox.relay import OutboxRelay
from tests.local import LOOPBACK
from tests.scratch import drop_mongo_database, on_database, scratch_database

NAMESPACE = "panic-alert-fault-tests"
SHARDS = 2
SLOT = "shard_slot"


@ray.remote
class Ballast:
    """Holds a node's ``shard_slot`` so that no shard can take it."""

    def node(self) -> str:
        return str(ray.get_runtime_context().get_node_id())


@dataclass
class FaultCluster:
    cluster: Cluster
    worker: Any
    shards: list[Any]
    client: EntityClient
    database: str
    ballast: Any

    def release_head_slot(self) -> None:
        """Free the head's shard slot, so the worker's shard can move there."""
        ray.kill(self.ballast, no_restart=True)


@pytest.fixture(scope="package")
async def fault_database(settings: Settings) -> AsyncIterator[str]:
    async with scratch_database(settings, "pa_faults") as name:
        yield name


@pytest.fixture(scope="package")
async def fault_pool(settings: Settings, fault_database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.postgres, database=fault_database)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="package")
def fault_cluster(settings: Settings, fault_database: str) -> Iterator[FaultCluster]:
    # Every node on loopback: nothing of the test leaves the machine.
    slot = {SLOT: 1}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "include_dashboard": False,
            "node_ip_address": LOOPBACK,
            "resources": slot,
        },
    )
    worker = cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK, resources=slot)
    cluster.wait_for_nodes()
    ray.init(
        address=cluster.address,
        namespace=NAMESPACE,
        log_to_driver=False,
        _node_ip_address=LOOPBACK,
    )
    ballast = Ballast.options(  # type: ignore[attr-defined]
        resources=slot,
        num_cpus=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(cluster.head_node.node_id, soft=False),
    ).remote()
    assert ray.get(ballast.node.remote(), timeout=60) == cluster.head_node.node_id
    try:
        shards = shard_root.start(
            on_database(settings, fault_database),
            SHARDS,
            namespace=NAMESPACE,
            placement=[{}, {"resources": slot}],
        )
        client = EntityClient(SHARDS, namespace=NAMESPACE, ask_timeout_s=30)
        yield FaultCluster(cluster, worker, shards, client, fault_database, ballast)
    finally:
        ray.shutdown()
        cluster.shutdown()


async def wait_for_restart(shard: Any, old_pid: int, deadline_s: float = 60.0) -> float:
    """Seconds until a new process of ``shard`` has finished its recovery."""
    began = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - began < deadline_s:
        try:
            stats = await asyncio.wait_for(shard.stats.remote(), 5)
            if stats["pid"] != old_pid:
                await shard.ready.remote()
                return time.monotonic() - began
        except Exception as exc:  # restarting
            last_error = exc
        await asyncio.sleep(0.1)
    raise AssertionError(f"shard did not come back within {deadline_s}s: {last_error!r}")


class KafkaTail:
    """Reads what is appended to some topics after it starts (no consumer group)."""

    def __init__(self, settings: Settings, partitions: dict[str, set[int]]) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
        self._partitions = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_end()
        for tp in self._partitions:  # resolve the end positions now, before anything is published
            await self._consumer.position(tp)

    async def read_ids(self, wanted: set[str], deadline_s: float = 60.0) -> list[str]:
        """Event ids read (duplicates kept) until every wanted id was seen."""
        seen: list[str] = []
        began = time.monotonic()
        while not wanted <= set(seen) and time.monotonic() - began < deadline_s:
            batches = await self._consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    seen.append(CloudEvent.from_bytes(record.value).id)
        return seen

    async def stop(self) -> None:
        await self._consumer.stop()


async def check_events_delivered(
    settings: Settings,
    pool: asyncpg.Pool,
    keys: list[str],
    topics: tuple[str, ...],
    collection: str,
) -> None:
    """Relay this package's outbox; every event keyed by ``keys`` (the entities'
    ids) reaches Kafka (``topics``) and MongoDB (``collection``), once in MongoDB."""
    publisher = KafkaPublisher(settings.kafka)
    await publisher.start()
    tail = KafkaTail(settings, {t: await publisher.partitions_for(t) for t in topics})
    await tail.start()
    mongo_db = f"pa_faults_{uuid4().hex[:8]}"
    store = EventStore(settings.mongo, database=mongo_db)
    try:
        relay = OutboxRelay(pool, publisher, store, settings.outbox, None)
        while await relay.drain_once():
            pass
        rows = await pool.fetch(
            "SELECT event_id::text AS id, sent_at FROM outbox WHERE key = ANY($1)", keys
        )
        wanted = {r["id"] for r in rows}
        assert all(r["sent_at"] is not None for r in rows)
        seen = await tail.read_ids(wanted)
        assert wanted <= set(seen), f"{len(wanted - set(seen))} events missing from Kafka"
        for event_id in wanted:
            docs = await store.count(collection, {"_id": event_id})
            assert docs == 1, f"event {event_id}: {docs} documents in MongoDB"
    finally:
        await store.close()
        await drop_mongo_database(settings, mongo_db)
        await publisher.stop()
        await tail.stop()
