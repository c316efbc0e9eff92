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
from functools import partial

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


async def run_relay(settings: Settings) -> None:
    """Relay the outbox until cancelled; (re)connects by itself while services are down."""
    while True:
        pool = publisher = store = None
        try:
            pool = await create_pool(settings.postgres)
            publisher = KafkaPublisher(settings.kafka)
            await publisher.start()
            store = EventStore(settings.mongo)
            relay = OutboxRelay(pool, publisher, store, settings.outbox, settings.postgres.dsn())
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
        finally:
            for close in (
                store.close if store else None,
                publisher.stop if publisher else None,
                pool.close if pool else None,
            ):
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()


async def drain(settings: Settings) -> int:
    """Relay every row committed so far, batch by batch, then return how many went
    (``panic-alert relay --drain``: before maintenance, or to catch up by hand).

    Raises ``PersistenceError`` when a service fails; what was sent stays sent.
    """
    pool = await create_pool(settings.postgres)
    publisher = KafkaPublisher(settings.kafka)
    store = EventStore(settings.mongo)
    try:
        await publisher.start()
        relay = OutboxRelay(pool, publisher, store, settings.outbox, None)
        total = 0
        while sent := await relay.drain_once():
            total += sent
        return total
    finally:
        for close in (store.close, publisher.stop, pool.close):
            with contextlib.suppress(Exception):
                await close()


def start(settings: Settings) -> None:
    """The cluster's relay actor (``cluster.relay``), created once however many gateways ask."""
    start_relay_actor(partial(run_relay, settings), settings.ray.namespace)
