"""The real services as reconnecting backends: PostgreSQL, Redis, MongoDB (event store), Kafka.

Each satisfies ``gateway.readiness.Backend`` (open, check, close; the Ray
one is ``cluster.readiness.RayBackend``), wraps the driver's factory for its
service and adds reconnection: a backend that could not connect at start-up, or whose
connection was dropped, connects again on the next ``check`` (``/readyz``).

A connection attempt runs as its own task, shielded from the caller's
timeout: a readiness probe that gives up after two seconds does not cancel a
pool half-way through opening (which could leak connections); the attempt
finishes in the background and the next probe sees its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod

import asyncpg
import redis.asyncio as aioredis

from config.settings import (
    KafkaSettings,
    MongoSettings,
    PostgresSettings,
    RedisSettings,
)
from persistence.drivers import postgres
from persistence.drivers import redis as redis_adapter
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.errors import PersistenceError, SchemaNotMigrated, Service, ServiceUnavailable
from persistence.migrations import pending_versions

log = logging.getLogger(__name__)


class ReconnectingBackend(ABC):
    """A backend that (re)connects lazily; subclasses say how to connect, ping and close."""

    name: str

    def __init__(self) -> None:
        self._connected = False
        self._attempt: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    @abstractmethod
    async def _connect(self) -> None:
        """Open the connection(s); raise on failure after cleaning up."""

    @abstractmethod
    async def _ping(self) -> None:
        """Prove the open connection answers; raise if not."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Release the connection(s)."""

    async def open(self) -> None:
        await self._ensure_connected()

    async def check(self) -> None:
        await self._ensure_connected()
        await self._ping()

    async def close(self) -> None:
        attempt, self._attempt = self._attempt, None
        if attempt is not None and not attempt.done():
            attempt.cancel()
            with contextlib.suppress(BaseException):
                await attempt
        if self._connected:
            self._connected = False
            try:
                await self._disconnect()
            except Exception:
                log.warning("%s: error while closing", self.name, exc_info=True)

    async def _ensure_connected(self) -> None:
        if self._connected:
            return
        if self._attempt is None or self._attempt.done():
            self._attempt = asyncio.create_task(self._connect_once(), name=f"connect-{self.name}")
            self._attempt.add_done_callback(_consume_exception)
        await asyncio.shield(self._attempt)

    async def _connect_once(self) -> None:
        await self._connect()
        self._connected = True


def _consume_exception(task: asyncio.Task[None]) -> None:
    # The outcome is reported by whoever awaited the shield; an attempt whose
    # waiter timed out must not produce "exception was never retrieved".
    if not task.cancelled():
        task.exception()


def _not_connected(service: Service) -> ServiceUnavailable:
    return ServiceUnavailable(service, "not connected")


class PostgresBackend(ReconnectingBackend):
    name = "postgres"

    def __init__(self, settings: PostgresSettings, *, ping_timeout_s: float = 2.0) -> None:
        super().__init__()
        self._settings = settings
        self._ping_timeout_s = ping_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._schema_current = False

    @property
    def pool(self) -> asyncpg.Pool:
        """The open pool; ``ServiceUnavailable("postgres")`` until connected."""
        if self._pool is None or not self.connected:
            raise _not_connected("postgres")
        return self._pool

    async def _connect(self) -> None:
        # The gateway never changes session state (no SET, LISTEN or advisory
        # locks on pooled connections): skip the reset round trip per release.
        self._pool = await postgres.create_pool(self._settings, reset_sessions=False)

    async def _ping(self) -> None:
        await postgres.ping(self.pool, timeout_s=self._ping_timeout_s)
        if not self._schema_current:
            # Until `panic-alert migrate` has run, requests would fail on
            # missing tables: not ready. Checked until true, then no more.
            pending = await pending_versions(self.pool)
            if pending:
                raise SchemaNotMigrated(f"pending: {', '.join(pending)}")
            self._schema_current = True

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), timeout=5.0)
        except TimeoutError:
            # Connections still checked out by stuck requests: cut them.
            pool.terminate()


class RedisBackend(ReconnectingBackend):
    name = "redis"

    def __init__(self, settings: RedisSettings) -> None:
        super().__init__()
        self._settings = settings
        self._client: aioredis.Redis | None = None

    @property
    def client(self) -> aioredis.Redis:
        """The client; ``ServiceUnavailable("redis")`` until connected."""
        if self._client is None or not self.connected:
            raise _not_connected("redis")
        return self._client

    async def _connect(self) -> None:
        client = redis_adapter.create_redis(self._settings)
        try:
            await redis_adapter.ping(client)
        except BaseException:
            await client.aclose()
            raise
        self._client = client

    async def _ping(self) -> None:
        # redis-py reconnects by itself on the next command once Redis is back.
        await redis_adapter.ping(self.client)

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class MongoBackend(ReconnectingBackend):
    """The MongoDB event store.

    Readiness is a ping. Indexes are ensured in the background after each
    connect and retried every ``index_retry_s`` until they succeed: a
    reachable store without its indexes still accepts events, so a slow or
    failing index build must not make the gateway unready.
    """

    name = "mongo"

    def __init__(self, settings: MongoSettings, *, index_retry_s: float = 30.0) -> None:
        super().__init__()
        self._settings = settings
        self._index_retry_s = index_retry_s
        self._store: EventStore | None = None
        self._indexer: asyncio.Task[None] | None = None

    @property
    def store(self) -> EventStore:
        """The event store; ``ServiceUnavailable("mongo")`` until connected."""
        if self._store is None or not self.connected:
            raise _not_connected("mongo")
        return self._store

    async def _connect(self) -> None:
        store = EventStore(self._settings)
        try:
            await store.ping()
        except BaseException:
            await store.close()
            raise
        self._store = store
        self._indexer = asyncio.create_task(self._ensure_indexes(store), name="mongo-indexes")

    async def _ensure_indexes(self, store: EventStore) -> None:
        while True:
            try:
                await store.ensure_indexes()
            except Exception as exc:  # supervising loop: log and carry on
                log.warning(
                    "mongo indexes not ensured (%s); retrying in %.0fs",
                    exc,
                    self._index_retry_s,
                    exc_info=not isinstance(exc, PersistenceError),
                )
                await asyncio.sleep(self._index_retry_s)
            else:
                log.info("mongo indexes ensured")
                return

    async def _ping(self) -> None:
        await self.store.ping()

    async def _disconnect(self) -> None:
        indexer, self._indexer = self._indexer, None
        if indexer is not None and not indexer.done():
            indexer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await indexer
        store, self._store = self._store, None
        if store is not None:
            await store.close()


class KafkaBackend(ReconnectingBackend):
    name = "kafka"

    def __init__(self, settings: KafkaSettings) -> None:
        super().__init__()
        self._publisher = KafkaPublisher(settings)

    @property
    def publisher(self) -> KafkaPublisher:
        """The started publisher; ``ServiceUnavailable("kafka")`` until connected."""
        if not self.connected:
            raise _not_connected("kafka")
        return self._publisher

    async def _connect(self) -> None:
        # start() is safe to call again after a failed start.
        await self._publisher.start()

    async def _ping(self) -> None:
        await self._publisher.ping()

    async def _disconnect(self) -> None:
        await self._publisher.stop()
