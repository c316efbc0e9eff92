"""The zone table's changes for the shards' zone books (``actors.zone_book.ZoneFeed``).

Reads are ``persistence.stores.zones``'s revision-ordered queries. A wait
wakes on ``NOTIFY geofence_zones`` with a newer revision, through one
dedicated connection that is reconnected when it drops (a reconnect wakes
the book at once, to read what was written while nobody listened), or after
the timeout anyway: a lost notification delays a change by one poll at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg

from persistence.drivers.postgres import connect
from persistence.stores import zones
from persistence.stores.zones import ZoneRecord

log = logging.getLogger(__name__)


class PostgresZoneFeed:
    """One shard's follower of the zone table. Not thread-safe; one event loop."""

    def __init__(self, pool: asyncpg.Pool, *, dsn: str) -> None:
        self._pool = pool
        self._dsn = dsn
        self._listener: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        self._seen = 0

    async def changed_since(self, revision: int, limit: int) -> Sequence[ZoneRecord]:
        return await zones.zones_changed_since(self._pool, revision, limit)

    async def region_snapshots(self) -> Sequence[tuple[str, dict[str, Any]]]:
        return await zones.region_snapshots_with_zones(self._pool)

    async def wait(self, revision: int, timeout_s: float) -> None:
        """Return on news of a revision after ``revision``, on a new listener, or
        after ``timeout_s``. Never raises for a lost connection (it polls then)."""
        self._seen = revision
        if self._listener is None or self._listener.is_closed():
            # Without a listener the poll still runs; reconnect each round.
            await _close(self._listener)
            self._listener = await self._listen()
            if self._listener is not None:
                return  # read what was written while nobody listened
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)
        self._wake.clear()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        await _close(listener)

    async def _listen(self) -> asyncpg.Connection | None:
        """A connection listening on the zones channel; None (logged) if none can be had now."""
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(self._dsn)
            await conn.add_listener(zones.CHANNEL, self._notified)
        except Exception as exc:
            log.warning("zone book cannot listen for zone changes (%s); polling", exc)
            await _close(conn)
            return None
        conn.add_termination_listener(lambda _conn: self._wake.set())
        return conn

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        try:
            newer = int(str(payload)) > self._seen
        except ValueError:
            newer = True
        if newer:
            self._wake.set()


async def _close(conn: asyncpg.Connection | None) -> None:
    if conn is None or conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), 5.0)
    except Exception:  # already broken: nothing more to release
        conn.terminate()
