"""The zone book (actors.zone_book) against real PostgreSQL.

Loading, NOTIFY, polling, regions told.

No Ray here: the book's ``tell`` is a list the tests read.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import pytest

from actors.effects import EntityKind
from actors.region import RegionState, ZonesChanged
from actors.zone_book import ZoneBook
from actors.zone_rules import ZoneKind, ZoneRules
from config.settings import Settings
from geo.cells import cell_of
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.fences import validate_geometry
from persistence.drivers.postgres import create_pool
from persistence.stores import zones
from persistence.stores.zone_feed import PostgresZoneFeed
from persistence.stores.zones import ZoneFields
from tests.scratch import scratch_database

pytestmark = pytest.mark.integration

RES = 7
T = TypeVar("T")


@pytest.fixture(scope="module")
async def database(settings: Settings) -> AsyncIterator[str]:
    async with scratch_database(settings, "pa_zonebook") as name:
        yield name


@pytest.fixture
async def pool(settings: Settings, database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.postgres, database=database)
    await pool.execute("DELETE FROM geofence_zones; DELETE FROM entity_snapshots")
    try:
        yield pool
    finally:
        await pool.close()


class Regions:
    """What the book told, by cell: the last ``ZonesChanged`` each cell heard."""

    def __init__(self) -> None:
        self.heard: dict[str, ZonesChanged] = {}
        self.count = 0

    def tell(self, kind: EntityKind, cell: str, message: object) -> None:
        assert kind is EntityKind.REGION
        assert isinstance(message, ZonesChanged)
        self.heard[cell] = message
        self.count += 1

    def zones_of(self, cell: str) -> frozenset[UUID] | None:
        message = self.heard.get(cell)
        return None if message is None else message.zone_ids


@asynccontextmanager
async def started(
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    regions: Regions,
    *,
    refresh_s: float = 60.0,
    owns: Callable[[str], bool] = lambda _cell: True,
    dsn: str | None = None,
) -> AsyncIterator[ZoneBook]:
    book = ZoneBook(
        PostgresZoneFeed(pool, dsn=dsn or settings.postgres.dsn(database)),
        resolution=RES,
        owns=owns,
        tell=regions.tell,
        refresh_s=refresh_s,
    )
    await book.start()
    try:
        yield book
    finally:
        await book.stop()


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def fields(geometry: dict[str, Any], **overrides: Any) -> ZoneFields:
    values: dict[str, Any] = {
        "name": "Zone",
        "kind": ZoneKind.DANGER,
        "geometry": geometry,
        "radius_m": None,
        "rules": ZoneRules(notify_subject=True, dwell_s=30).to_json(),
        "active": True,
        "cells": covering_cells(validate_geometry(geometry), RES, MAX_FIX_ACCURACY_M),
    }
    values.update(overrides)
    return ZoneFields(**values)


async def eventually(probe: Callable[[], T | Awaitable[T]], timeout_s: float = 5.0) -> T:
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            value = probe()
            if isinstance(value, Awaitable):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.05)
    raise AssertionError("unreachable")


BERLIN = square(13.40, 52.50)
MADRID = square(-3.70, 40.41)


async def test_start_loads_live_zones_and_tells_their_regions(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    live = await zones.create_zone(pool, uuid.uuid4(), fields(BERLIN, name="live"))
    inactive = await zones.create_zone(pool, uuid.uuid4(), fields(BERLIN, active=False))
    deleted = await zones.create_zone(pool, uuid.uuid4(), fields(MADRID))
    await zones.delete_zone(pool, deleted.id)
    regions = Regions()
    async with started(settings, database, pool, regions) as book:
        assert book.loaded
        assert len(book) == 1
        found = book.get(live.id)
        assert found is not None
        assert (found.kind, found.name, found.cells) == (ZoneKind.DANGER, "live", live.cells)
        assert found.rules == ZoneRules(notify_subject=True, dwell_s=30)
        assert found.zone.dwell_s == 30
        assert found.zone.since == live.updated_at
        assert book.get(inactive.id) is None
        assert book.gone == {inactive.id, deleted.id}
        # No region stored anything yet: every cell of the live zone is told, nothing else.
        assert set(regions.heard) == set(live.cells)
        assert all(m.zone_ids == {live.id} for m in regions.heard.values())
        assert all(m.revision == book.revision for m in regions.heard.values())
        cell = cell_of(52.505, 13.405, RES)
        assert book.zone_ids_in(cell) == {live.id}
        (near,) = book.near(cell)
        assert (near.zone.id, near.kind, near.notify_subject, near.notify_admins) == (
            live.id,
            "danger",
            True,
            False,
        )
        assert book.near(cell_of(40.0, 0.0, RES)) == ()


async def test_changes_arrive_by_notify_and_regions_hear_old_and_new_cells(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    regions = Regions()
    async with started(settings, database, pool, regions, refresh_s=60.0) as book:
        zone_id = uuid.uuid4()
        created = await zones.create_zone(pool, zone_id, fields(BERLIN))
        await eventually(lambda: book.get(zone_id) is not None)  # by NOTIFY: the poll is 60 s
        assert all(regions.zones_of(c) == {zone_id} for c in created.cells)

        moved = await zones.replace_zone(pool, zone_id, fields(MADRID))
        assert moved is not None
        await eventually(lambda: book.revision == moved.revision)
        assert all(regions.zones_of(c) == frozenset() for c in created.cells)
        assert all(regions.zones_of(c) == {zone_id} for c in moved.cells)
        live = book.get(zone_id)
        assert live is not None
        assert live.cells == moved.cells

        renamed = await zones.replace_zone(pool, zone_id, fields(MADRID, name="renamed"))
        assert renamed is not None
        await eventually(lambda: book.revision == renamed.revision)
        again = book.get(zone_id)
        assert again is not None
        assert again.name == "renamed"
        assert again.zone.since == live.zone.since  # same shape: subjects inside stay inside

        await zones.delete_zone(pool, zone_id)
        await eventually(lambda: book.get(zone_id) is None)
        assert all(regions.zones_of(c) == frozenset() for c in moved.cells)
        assert zone_id in book.gone


async def test_a_change_without_notification_arrives_by_polling(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    regions = Regions()
    async with started(settings, database, pool, regions, refresh_s=0.3) as book:
        zone_id = uuid.uuid4()
        # Straight SQL: a revision from the trigger, but no pg_notify.
        await pool.execute(
            "INSERT INTO geofence_zones (id, name, kind, geometry, rules) VALUES ($1, 'sql', "
            "'safe', ST_GeomFromText('POLYGON((13.4 52.5, 13.41 52.5, 13.41 52.51, 13.4 52.5))',"
            " 4326), '{}')",
            zone_id,
        )
        live = await eventually(lambda: book.get(zone_id))
        # Stored without cells: the book covers it itself.
        assert live.cells
        assert cell_of(52.502, 13.405, RES) in live.cells
        assert all(regions.zones_of(c) == {zone_id} for c in live.cells)


async def test_polling_goes_on_when_no_listener_can_connect(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    regions = Regions()
    closed = settings.postgres.model_copy(update={"port": 1}).dsn(database)
    async with started(settings, database, pool, regions, refresh_s=0.3, dsn=closed) as book:
        zone_id = uuid.uuid4()
        await zones.create_zone(pool, zone_id, fields(BERLIN))
        await eventually(lambda: book.get(zone_id) is not None)


async def test_a_dropped_listener_reconnects(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    regions = Regions()
    async with started(settings, database, pool, regions, refresh_s=60.0) as book:

        async def listening() -> list[int]:
            rows = await pool.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'LISTEN%'",
                database,
            )
            return [r["pid"] for r in rows]

        (pid,) = await eventually(listening)
        await pool.execute("SELECT pg_terminate_backend($1)", pid)
        await eventually(lambda: _other_pid(listening, pid))
        zone_id = uuid.uuid4()
        await zones.create_zone(pool, zone_id, fields(BERLIN))
        await eventually(lambda: book.get(zone_id) is not None)


async def _other_pid(listening: Callable[[], Awaitable[list[int]]], old: int) -> bool:
    pids = await listening()
    return bool(pids) and old not in pids


async def test_start_tells_only_owned_regions_that_missed_a_change(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    kept = await zones.create_zone(pool, uuid.uuid4(), fields(BERLIN))
    gone = await zones.create_zone(pool, uuid.uuid4(), fields(MADRID))
    await zones.delete_zone(pool, gone.id)
    up_to_date, stale = kept.cells[0], gone.cells[0]
    for cell, zone_ids in ((up_to_date, [kept.id]), (stale, [gone.id])):
        snapshot = RegionState(cell, frozenset(zone_ids), zones_revision=1, version=1).to_snapshot()
        await pool.execute(
            "INSERT INTO entity_snapshots (kind, entity_id, version, state) "
            "VALUES ('region', $1, 1, $2)",
            cell,
            snapshot,
        )
    not_mine = kept.cells[1]
    regions = Regions()
    async with started(settings, database, pool, regions, owns=lambda c: c != not_mine) as book:
        assert up_to_date not in regions.heard  # its stored set is the book's
        assert regions.zones_of(stale) == frozenset()  # the deleted zone is taken away
        assert not_mine not in regions.heard  # another shard's region
        assert set(regions.heard) == (set(kept.cells) - {up_to_date, not_mine}) | {stale}
        assert all(m.revision == book.revision for m in regions.heard.values())


async def test_near_point_gives_only_the_zones_a_fix_may_touch(
    settings: Settings, database: str, pool: asyncpg.Pool
) -> None:
    west = await zones.create_zone(pool, uuid.uuid4(), fields(square(13.40, 52.50, 0.002)))
    east = await zones.create_zone(pool, uuid.uuid4(), fields(square(13.41, 52.50, 0.002)))
    async with started(settings, database, pool, Regions()) as book:
        cell = cell_of(52.501, 13.401, RES)
        assert {n.zone.id for n in book.near(cell)} == {west.id, east.id}
        inside_west = book.near_point(cell, 52.501, 13.401, 5.0)
        assert [n.zone.id for n in inside_west] == [west.id]
        between = book.near_point(cell, 52.501, 13.406, 5.0)  # ~270 m from each
        assert between == ()
        wide = book.near_point(cell, 52.501, 13.406, 500.0)
        assert {n.zone.id for n in wide} == {west.id, east.id}
