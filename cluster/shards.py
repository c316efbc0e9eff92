"""Shard actors: the Ray actors that host the logical entities.

A shard is a named, detached Ray actor (``max_restarts=-1``, calls retried on
failure) wrapping one :class:`~actors.runtime.EntityHost`. It starts its host
as soon as Ray constructs it, which is also what happens after a crash or a
lost node: Ray restarts the actor, the host re-arms the stored timers and
re-activates the open alerts it owns, and retried calls resume in order (see
``cluster.sequencing``). It then loads its zone book (``actors.zone_book``),
which keeps the live geofence zones in memory and the shard's regions told of
theirs; the shard is ready once both are done. Every Ray API call of the
project lives in ``cluster/``.

A shard builds no adapter and reads no global settings: it is given its
policies (``ActorSettings``) and an :data:`OpenShardIO`, a picklable factory
that the shard's composition root (``panic_alert.shard_root``) builds and
that opens the entity store, the push sink and the zone feed inside the
shard's own process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psutil
import ray

from actors.effects import EntityKind
from actors.errors import ActorError
from actors.policies import behaviours_from
from actors.ports import EntityStore, PushSink, StoredTimer
from actors.runtime import EntityHost, RecoveryReport
from actors.zone_book import ZoneBook, ZoneFeed
from cluster.batching import Coalescer, Item
from cluster.client import EntityClient
from cluster.dispatch import RegionSearcher, service_area_agents
from cluster.fix_stream import Address, FixStreamServer
from cluster.peers import PeerRouter, ShardReply, reply_of
from cluster.placement import group_by_shard, in_item_order, owner, shard_name
from cluster.sequencing import Sequencer
from cluster.tracking import PackedFixes, Tracker
from config.heap import freeze_startup_heap
from config.settings import ActorSettings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ShardIO:
    """What one shard's entities reach the world through, opened in its process."""

    store: EntityStore
    pushes: PushSink
    #: The zone table's changes, for the shard's zone book (``actors.zone_book``).
    zones: ZoneFeed
    #: Releases what the factory opened (a start that failed half-way retries).
    close: Callable[[], Awaitable[None]]


#: Opens a shard's adapters; called in the shard's process, so it must pickle
#: (``panic_alert.shard_root.ShardAdapters``). Raises while a service is down:
#: the shard retries.
OpenShardIO = Callable[[], Awaitable[ShardIO]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ShardActor:
    """Hosts the entities whose rendezvous owner is ``index`` of ``count`` shards."""

    def __init__(
        self, index: int, count: int, namespace: str, cfg: ActorSettings, open_io: OpenShardIO
    ) -> None:
        self.index = index
        self.count = count
        self.namespace = namespace
        self.cfg = cfg
        self._open_io = open_io
        self._sequencer = Sequencer()
        self._peers: dict[int, Any] = {}
        # Searches read peers' regions often; under load those reads share calls.
        self._peer_reads = Coalescer(self._read_peer, max_batch=cfg.batch_max)
        self._started_at = time.monotonic()
        self._recovery: RecoveryReport | None = None
        self.host: EntityHost
        #: The live geofence zones, kept current from the database (``actors.zone_book``).
        self.zone_book: ZoneBook
        self._tracker: Tracker
        #: One batch of fixes tracked at a time (each lets the loop run between turns).
        self._tracking = asyncio.Lock()
        #: Batches of fixes over a plain stream (``cluster.fix_stream``), listening
        #: on this node's address once a gateway first asks.
        self._fix_stream = FixStreamServer(self.track, ray.util.get_node_ip_address())  # type: ignore[no-untyped-call]
        # Async actors construct inside their event loop: recovery starts now,
        # not at the first call, so timers fire even if nobody calls.
        self._ready = asyncio.get_running_loop().create_task(self._start())

    async def _start(self) -> None:
        cfg = self.cfg
        while True:  # supervising loop: a database that is down or not migrated yet
            io: ShardIO | None = None
            try:
                io = await self._open_io()
                self.zone_book = ZoneBook(
                    io.zones,
                    resolution=cfg.region_resolution,
                    owns=lambda cell: (
                        owner(EntityKind.REGION.value, cell, self.count) == self.index
                    ),
                    tell=self._tell_here,
                    refresh_s=cfg.zone_refresh_s,
                )
                self.host = EntityHost(
                    behaviours=behaviours_from(cfg, self._zone_gone),
                    store=io.store,
                    pushes=io.pushes,
                    router=PeerRouter(self),
                    clock=_utcnow,
                    searcher=RegionSearcher(
                        self.read_regions,
                        resolution=cfg.region_resolution,
                        allowed=self._service_area_agents,
                    ),
                    owns=lambda kind, entity_id: (
                        owner(kind.value, entity_id, self.count) == self.index
                    ),
                    passivate_after=timedelta(seconds=cfg.passivate_after_s),
                    flush_interval=cfg.flush_interval_s,
                )
                self._recovery = await self.host.start()
                break
            except Exception as exc:
                log.warning("shard %d cannot start (%s); retrying", self.index, exc)
                if io is not None:
                    await io.close()
                await asyncio.sleep(1.0)
        # Not ready before the zones are: a fix tracked against an empty book
        # would look like leaving every zone.
        await self._load_zones()
        assert io is not None
        await self._ask_presence(io.pushes)
        self._tracker = Tracker(self.host, self.zone_book, resolution=cfg.region_resolution)
        freeze_startup_heap(f"shard {self.index}")

    async def _ask_presence(self, pushes: PushSink) -> None:
        """The regions this shard hosts start empty: every gateway announces its
        agents' live sockets again, and the agents refresh their region entries.
        Best effort: the agents' own next report refills the index anyway."""
        try:
            await pushes.ask_presence()
        except Exception as exc:
            log.warning("shard %d cannot ask the gateways for presence (%s)", self.index, exc)

    def _zone_gone(self, zone_id: UUID) -> bool:
        """Only what the loaded book knows: a timer due during recovery, before the
        zones are loaded, takes its zone as live."""
        return self.zone_book.loaded and zone_id in self.zone_book.gone

    def _service_area_agents(self, latitude: float, longitude: float) -> frozenset[UUID] | None:
        """Dispatch respects service areas once the zone book is loaded."""
        book = getattr(self, "zone_book", None)
        if book is None or not book.loaded:
            return None
        return service_area_agents(book, latitude, longitude, self.cfg.region_resolution)

    async def _load_zones(self) -> None:
        """Start the zone book, retrying until it loads; it then follows changes itself."""
        delay = 1.0
        while True:
            try:
                await self.zone_book.start()
                return
            except Exception as exc:
                log.warning("shard %d cannot load the zones (%s); retrying", self.index, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _tell_here(self, kind: EntityKind, entity_id: str, message: object) -> None:
        """A message to an entity of this shard, no reply (the zone book's regions)."""
        self.host.enqueue(kind, entity_id, message, want_reply=False)

    def peer(self, index: int) -> Any:
        handle = self._peers.get(index)
        if handle is None:
            handle = self._peers[index] = ray.get_actor(shard_name(index), namespace=self.namespace)
        return handle

    # --- calls from clients (numbered per client stream) ------------------------------

    async def _admit(
        self, stream: str, seq: int, floor: int, items: Sequence[Item]
    ) -> list[asyncio.Future[object]]:
        """Enqueue ``items`` in this call's turn of its sender's stream; their reply futures."""
        await self._ready
        await self._sequencer.turn(stream, seq, floor)
        try:
            futures = [self.host.enqueue(kind, entity_id, msg) for kind, entity_id, msg in items]
        finally:
            self._sequencer.done(stream, seq)
        return [f for f in futures if f is not None]  # asked, so every one has a future

    async def ask(
        self, stream: str, seq: int, floor: int, kind: EntityKind, entity_id: str, message: object
    ) -> ShardReply:
        (future,) = await self._admit(stream, seq, floor, [(kind, entity_id, message)])
        return await reply_of(future)

    async def ask_many(
        self, stream: str, seq: int, floor: int, items: Sequence[Item]
    ) -> list[ShardReply]:
        """Each message's outcome, in order (domain errors as values, see ``ShardReply``)."""
        return [await reply_of(f) for f in await self._admit(stream, seq, floor, items)]

    async def call_many(
        self, stream: str, seq: int, floor: int, items: Sequence[Item], asked: Sequence[int]
    ) -> list[ShardReply]:
        """Tells and asks in one call, processed in order: the outcomes of the
        items at the indexes ``asked``, in order (the others are tells)."""
        await self._ready
        await self._sequencer.turn(stream, seq, floor)
        wanted = set(asked)
        try:
            futures = [
                self.host.enqueue(kind, entity_id, msg, want_reply=index in wanted)
                for index, (kind, entity_id, msg) in enumerate(items)
            ]
        finally:
            self._sequencer.done(stream, seq)
        answers = []
        for index in asked:
            future = futures[index]
            assert future is not None  # asked, so it has one
            answers.append(await reply_of(future))
        return answers

    async def tell_many(self, stream: str, seq: int, floor: int, items: Sequence[Item]) -> int:
        """Process every message in order; returns how many the entities rejected."""
        futures = await self._admit(stream, seq, floor, items)
        # Most complete inline (the fast path); wait only for the others.
        pending = [f for f in futures if not f.done()]
        if pending:
            await asyncio.wait(pending)
        return sum(1 for f in futures if f.exception() is not None)

    async def fix_stream(self) -> Address:
        """Where this shard takes batches of fixes over a plain stream (host, port,
        and the token a connection must send first): ``EntityClient`` sends its
        fixes there rather than as ``track`` calls (``cluster.fix_stream``)."""
        return await self._fix_stream.address()

    async def track(self, packed: PackedFixes) -> int:
        """Location fixes for subject entities (``cluster.tracking``), packed and
        unordered; returns how many were malformed. A batch is tracked in turns of
        the event loop, one batch at a time (batches are taken in the order they
        arrive, as when each was one turn)."""
        await self._ready
        async with self._tracking:
            return await self._tracker.track_packed_in_turns(packed)

    # --- calls from peer shards ----------------------------------------------------------

    async def deliver_stored(self, message: object, stored: StoredTimer) -> ShardReply:
        await self._ready
        return await reply_of(self.host.deliver_stored(message, stored))

    async def tell_unordered(self, items: Sequence[Item]) -> None:
        await self._ready
        for kind, entity_id, message in items:
            self.host.enqueue(kind, entity_id, message, want_reply=False)

    def _read(self, items: Sequence[Item]) -> list[ShardReply]:
        """Each read-only query's outcome, answered from states in memory (``EntityHost.read``)."""
        outcomes: list[ShardReply] = []
        for kind, entity_id, query in items:
            try:
                outcomes.append((True, self.host.read(kind, entity_id, query)))
            except ActorError as exc:
                outcomes.append((False, exc))
        return outcomes

    async def read_unordered(self, items: Sequence[Item]) -> list[ShardReply]:
        """Each read-only query's outcome, for peers' searches (no order needed)."""
        await self._ready
        return self._read(items)

    def _read_peer(self, shard: int, items: Sequence[Item]) -> Any:
        return self.peer(shard).read_unordered.remote(list(items))

    async def read_regions(self, items: Sequence[Item]) -> list[object]:
        """Read-only queries of entities on this shard and its peers: local ones
        directly from memory, one (coalesced) call per peer.

        Each item's reply (``None`` for an entity not in memory), or its
        entity's ``ActorError`` as a value, in item order.
        """
        per_shard = group_by_shard(owner(kind.value, e, self.count) for kind, e, _m in items)
        if len(per_shard) == 1 and self.index in per_shard:
            return [value for _ok, value in self._read(items)]
        calls: list[Awaitable[Sequence[Any]]] = []
        for shard, indexes in per_shard.items():
            batch = [items[i] for i in indexes]
            if shard == self.index:
                calls.append(self.read_unordered(batch))
            else:
                calls.append(self._peer_reads.ask(shard, batch))
        answers = await asyncio.wait_for(asyncio.gather(*calls), self.cfg.ask_timeout_s)
        return in_item_order(per_shard, answers)

    # --- operations ------------------------------------------------------------------

    async def ready(self) -> dict[str, Any]:
        """Waits until recovery is done; returns what it restored and how long it took."""
        await self._ready
        assert self._recovery is not None
        return asdict(self._recovery)

    async def stats(self) -> dict[str, Any]:
        await self._ready
        return {
            "index": self.index,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "uptime_s": time.monotonic() - self._started_at,
            "rss_bytes": psutil.Process().memory_info().rss,
            "gaps_skipped": self._sequencer.gaps_skipped,
            "fix_stream_batches": self._fix_stream.batches,
            "fix_stream_refused": self._fix_stream.refused,
            **self.host.stats(),
        }

    async def inspect(self, kind: EntityKind, entity_id: str) -> Any:
        """The in-memory state of an active entity, for tests and operators."""
        await self._ready
        return self.host.active_state(kind, entity_id)

    async def flush(self) -> int:
        await self._ready
        return await self.host.flush()


def entity_client(
    cfg: ActorSettings, count: int, namespace: str, *, max_fixes: int | None = None
) -> EntityClient:
    """A client of the ``count`` shards, batching as ``cfg`` says (location fixes in
    calls of up to ``max_fixes``, and never more than ``FIXES_PER_CALL``: ``EntityClient``)."""
    return EntityClient(
        count,
        namespace=namespace,
        ask_timeout_s=cfg.ask_timeout_s,
        linger_s=cfg.batch_linger_ms / 1000,
        max_batch=cfg.batch_max,
        lazy_linger_s=cfg.lazy_linger_ms / 1000,
        max_fixes=max_fixes,
        fix_stream=cfg.fix_stream,
    )


def start_shards(
    count: int,
    *,
    namespace: str,
    cfg: ActorSettings,
    open_io: OpenShardIO,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
    placement: Sequence[Mapping[str, Any]] | None = None,
    wait: bool = True,
) -> list[Any]:
    """Create (or find) the ``count`` shard actors and wait until they have recovered.

    Idempotent: a shard that already exists under its name is reused, so any
    number of gateway replicas may call this. ``cfg`` and ``open_io`` travel
    to each shard (see :class:`ShardActor`); ``env`` adds environment
    variables to the shard processes. ``placement`` gives extra Ray
    actor options per shard (resources, scheduling strategy); by default the
    shards are spread over the nodes.
    """
    remote_cls = ray.remote(ShardActor)
    options: dict[str, Any] = {
        "namespace": namespace,
        "lifetime": "detached",
        "get_if_exists": True,
        "max_restarts": -1,
        "max_task_retries": -1,
        "max_concurrency": 10_000,
        "num_cpus": 0,
    }
    if env:
        options["runtime_env"] = {"env_vars": dict(env)}
    handles = [
        remote_cls.options(
            name=shard_name(i),
            **{"scheduling_strategy": "SPREAD", **options, **(placement[i] if placement else {})},
        ).remote(i, count, namespace, cfg, open_io)
        for i in range(count)
    ]
    handles_any: list[Any] = handles
    if wait:
        ray.get([h.ready.remote() for h in handles_any], timeout=timeout_s)
    return handles_any


def default_shard_count(configured: int) -> int:
    """``configured``, or one shard per two CPUs of the cluster when it is 0.

    Not one per CPU: shards share the machines with the gateway, the relay
    and the databases, and every search that spans two shards costs a Ray
    call. On this project's 2-core machine, bench/gateway.py at 200 alerts/s
    measured POST /alerts p95 74 ms with one shard and 635 ms with two.
    """
    if configured > 0:
        return configured
    resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return max(1, int(resources.get("CPU", 1)) // 2)
