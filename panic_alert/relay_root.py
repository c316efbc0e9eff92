"""The relay's composition root: the outbox relay as a long-running service
(its connections, their supervision, the event store's retention).

Where it runs: with Ray, ``panic-alert serve`` starts it once per cluster in
a named Ray actor (``cluster/relay.py``), off the gateway's event loop and
CPU; without Ray, inside the gateway process; or standalone as ``panic-alert
relay``. Several relays may run at once (rows are claimed with SKIP LOCKED);
one per deployment keeps per-key order into Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

import asyncpg

from cluster.relay import start_relay_actor
from config.settings import Settings
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.drivers.postgres import create_pool
from persistence.outbox.relay import OutboxRelay

log = logging.getLogger(__name__)

#: Wait between attempts to open the relay's connections while a service is down.
RETRY_S = 2.0
RETENTION_INTERVAL_S = 3600.0
#: The first purge after the relay starts (FerretDB's purge is a full scan).
RETENTION_FIRST_AFTER_S = 600.0


@asynccontextmanager
async def _connections(
    settings: Settings,
) -> AsyncIterator[tuple[asyncpg.Pool, KafkaPublisher, EventStore]]:
    """The relay's PostgreSQL pool, started Kafka publisher and event store;
    each opened one is closed on the way out, quietly (it may be broken)."""

    async def quietly(close: Callable[[], Awaitable[None]]) -> None:
        with contextlib.suppress(Exception):
            await close()

    async with contextlib.AsyncExitStack() as opened:
        pool = await create_pool(settings.postgres)
        opened.push_async_callback(quietly, pool.close)
        publisher = KafkaPublisher(settings.kafka)
        opened.push_async_callback(quietly, publisher.stop)  # safe after a failed start
        await publisher.start()
        store = EventStore(settings.mongo)
        opened.push_async_callback(quietly, store.close)
        yield pool, publisher, store


async def run_relay(settings: Settings) -> None:
    """Relay the outbox until cancelled; (re)connects by itself while services are down."""
    while True:
        try:
            async with _connections(settings) as (pool, publisher, store):
                relay = OutboxRelay(
                    pool, publisher, store, settings.outbox, settings.postgres.dsn()
                )
                retention = asyncio.create_task(
                    store.run_retention(RETENTION_INTERVAL_S, RETENTION_FIRST_AFTER_S)
                )
                try:
                    await relay.run()  # survives outages itself; returns only when stopped
                finally:
                    retention.cancel()
                    await relay.stop()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # supervising loop: log and carry on
            log.warning("outbox relay cannot start (%s); retrying in %.0fs", exc, RETRY_S)
            await asyncio.sleep(RETRY_S)


async def drain(settings: Settings) -> int:
    """Relay every row committed so far, batch by batch, then return how many went
    (``panic-alert relay --drain``: before maintenance, or to catch up by hand).

    Raises ``PersistenceError`` when a service fails; what was sent stays sent.
    """
    async with _connections(settings) as (pool, publisher, store):
        relay = OutboxRelay(pool, publisher, store, settings.outbox, None)
        total = 0
        while sent := await relay.drain_once():
            total += sent
        return total


def start(settings: Settings) -> None:
    """The cluster's relay actor (``cluster.relay``), created once however many gateways ask."""
    start_relay_actor(partial(run_relay, settings), settings.ray.namespace)
