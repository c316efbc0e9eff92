"""The shard's composition root: settings -> adapters -> the ports a shard uses.

``ShardAdapters(settings)`` is what ``cluster.shards.start_shards`` sends to
each shard actor; the shard calls it in its own process to open the entity
store (group commit over PostgreSQL), the push sink (Redis pub/sub) and the
zone feed (PostgreSQL's zone table and its notifications). Nothing else in
a shard builds an adapter or reads settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cluster.client import EntityClient
from cluster.shards import ShardIO, default_shard_count, entity_client, start_shards
from config.settings import Settings
from persistence.drivers.postgres import create_pool
from persistence.drivers.redis import create_redis
from persistence.outbox.group_commit import GroupCommit
from persistence.pushes import GroupPush, RedisPushSink
from persistence.stores.entities import PostgresEntityStore
from persistence.stores.group_load import GroupLoad
from persistence.stores.zone_feed import PostgresZoneFeed


@dataclass(frozen=True, slots=True)
class ShardAdapters:
    """Opens one shard's adapters (``cluster.shards.OpenShardIO``); pickles with its settings."""

    settings: Settings

    async def __call__(self) -> ShardIO:
        settings = self.settings
        # The entity store never changes session state (PostgresEntityStore).
        pool = await create_pool(settings.postgres, reset_sessions=False)
        redis = create_redis(settings.redis)

        async def close() -> None:
            await redis.aclose()
            await pool.close()

        return ShardIO(
            # Commits that queue behind a write share its next statement, and
            # loads that queue behind a read its next query.
            store=GroupCommit(GroupLoad(PostgresEntityStore(pool, source=settings.kafka.source))),
            # Pushes that queue behind a publish share its next pipeline.
            pushes=GroupPush(RedisPushSink(redis)),
            zones=PostgresZoneFeed(pool, dsn=settings.postgres.dsn()),
            close=close,
        )


def start(
    settings: Settings,
    count: int,
    *,
    namespace: str | None = None,
    env: Mapping[str, str] | None = None,
    placement: Sequence[Mapping[str, Any]] | None = None,
    wait: bool = True,
    timeout_s: float = 60.0,
) -> list[Any]:
    """Create (or find) ``count`` shard actors wired from ``settings``
    (``cluster.shards.start_shards``); waits for their recovery unless ``wait`` is False."""
    return start_shards(
        count,
        namespace=namespace or settings.ray.namespace,
        cfg=settings.actors,
        open_io=ShardAdapters(settings),
        env=env,
        placement=placement,
        wait=wait,
        timeout_s=timeout_s,
    )


def start_entity_shards(settings: Settings) -> EntityClient:
    """The configured shard actors, started without waiting for their recovery,
    and a client for them.

    For ``serve``: the gateway comes up (and ``/readyz`` reports) even while
    the shards are still connecting to a database that is down. A flush of
    location fixes (up to ``geofence.batch_max``) goes to each shard in calls of
    at most ``cluster.tracking.FIXES_PER_CALL``.
    """
    count = default_shard_count(settings.ray.shards)
    start(settings, count, wait=False)
    return entity_client(
        settings.actors, count, settings.ray.namespace, max_fixes=settings.geofence.batch_max
    )
