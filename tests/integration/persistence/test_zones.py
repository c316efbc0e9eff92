"""Geofence zones in PostgreSQL + PostGIS (persistence.stores.zones).

Writes, reads and the change feed.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from actors.zone_rules import ZoneKind, ZoneRules
from config.settings import Settings
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.fences import validate_geometry
from persistence.drivers.postgres import connect
from persistence.errors import Conflict
from persistence.stores import zones
from persistence.stores.zones import GeometryRejected, ZoneFields, ZoneFilter

pytestmark = pytest.mark.integration


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def fields(
    geometry: dict[str, Any] | None = None,
    *,
    radius_m: float | None = None,
    kind: ZoneKind = ZoneKind.DANGER,
    **overrides: Any,
) -> ZoneFields:
    geometry = geometry or square(13.4, 52.5)
    shape = validate_geometry(geometry, radius_m=radius_m)
    values: dict[str, Any] = {
        "name": "Zone",
        "kind": kind,
        "geometry": geometry,
        "radius_m": radius_m,
        "rules": ZoneRules(notify_admins=True, dwell_s=120).to_json(),
        "active": True,
        "cells": covering_cells(shape, 7, MAX_FIX_ACCURACY_M),
    }
    values.update(overrides)
    return ZoneFields(**values)


async def newest_revision(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT coalesce(max(revision), 0) FROM geofence_zones"))


async def test_create_get_replace_delete(pool: asyncpg.Pool) -> None:
    zone_id = uuid.uuid4()
    created = await zones.create_zone(pool, zone_id, fields())
    assert created.id == zone_id
    assert created.geometry == square(13.4, 52.5)
    assert (created.kind, created.radius_m, created.active) == (ZoneKind.DANGER, None, True)
    assert created.rules["notify_admins"] is True
    assert created.dwell_s == 120  # the column follows rules.dwell_s
    assert created.cells
    assert created.deleted_at is None
    assert await zones.get_zone(pool, zone_id) == created
    with pytest.raises(Conflict):
        await zones.create_zone(pool, zone_id, fields())

    point = {"type": "Point", "coordinates": [13.41, 52.51]}
    replaced = await zones.replace_zone(
        pool,
        zone_id,
        fields(point, radius_m=250.0, kind=ZoneKind.SAFE, name="Home", active=False, rules={}),
    )
    assert replaced is not None
    assert (replaced.name, replaced.kind, replaced.active) == ("Home", ZoneKind.SAFE, False)
    assert replaced.geometry == point  # a Point zone reads back as its Point
    assert replaced.radius_m == 250.0
    assert replaced.dwell_s is None
    assert replaced.revision > created.revision
    assert replaced.created_at == created.created_at
    assert replaced.updated_at > created.updated_at

    assert await zones.delete_zone(pool, zone_id) is True
    assert await zones.get_zone(pool, zone_id) is None
    assert await zones.delete_zone(pool, zone_id) is False
    assert await zones.replace_zone(pool, zone_id, fields()) is None
    assert await zones.delete_zone(pool, uuid.uuid4()) is False


async def test_changes_since_a_revision_include_deletions_in_order(pool: asyncpg.Pool) -> None:
    since = await newest_revision(pool)
    a, b = uuid.uuid4(), uuid.uuid4()
    await zones.create_zone(pool, a, fields())
    await zones.create_zone(pool, b, fields(square(13.5, 52.5)))
    await zones.replace_zone(pool, a, fields(name="A2"))
    await zones.delete_zone(pool, b)

    changes = await zones.zones_changed_since(pool, since, 100)
    assert [c.id for c in changes] == [a, b]  # each zone once, as it is now, by revision
    assert changes[0].name == "A2"
    assert changes[1].deleted_at is not None
    revisions = [c.revision for c in changes]
    assert revisions == sorted(revisions)
    first = await zones.zones_changed_since(pool, since, 1)
    assert [c.id for c in first] == [a]
    assert [c.id for c in await zones.zones_changed_since(pool, first[0].revision, 5)] == [b]
    assert await zones.zones_changed_since(pool, changes[-1].revision, 5) == []


async def test_a_writer_waits_for_the_one_before_so_no_revision_is_skipped(
    pool: asyncpg.Pool,
) -> None:
    """Were a larger revision visible before a smaller one, a reader at the larger
    would never see the smaller: the second writer waits for the first's commit."""
    since = await newest_revision(pool)
    slow, fast = uuid.uuid4(), uuid.uuid4()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(
                "INSERT INTO geofence_zones (id, name, kind, geometry) VALUES ($1, 'slow', 'safe',"
                " ST_GeomFromText('POLYGON((0 0, 0 1, 1 1, 1 0, 0 0))', 4326))",
                slow,
            )
            second = asyncio.create_task(zones.create_zone(pool, fast, fields()))
            await asyncio.sleep(0.3)
            assert not second.done()
            assert await zones.zones_changed_since(pool, since, 10) == []
        finally:
            await tx.commit()
        created = await second
    changes = await zones.zones_changed_since(pool, since, 10)
    assert [c.id for c in changes] == [slow, fast]
    assert changes[1].revision == created.revision > changes[0].revision


async def test_concurrent_writes_each_get_a_revision(pool: asyncpg.Pool) -> None:
    since = await newest_revision(pool)
    ids = [uuid.uuid4() for _ in range(12)]
    await asyncio.gather(*(zones.create_zone(pool, i, fields()) for i in ids))
    changes = await zones.zones_changed_since(pool, since, 100)
    assert [c.id for c in changes if c.id in ids] == [c.id for c in changes]
    assert {c.id for c in changes} == set(ids)
    assert len({c.revision for c in changes}) == len(ids)


async def test_writes_notify_their_revision_at_commit(
    settings: Settings, pool: asyncpg.Pool, database: str
) -> None:
    listener = await connect(settings.postgres.dsn(database))
    heard: list[str] = []
    await listener.add_listener(zones.CHANNEL, lambda *args: heard.append(args[3]))
    try:
        zone_id = uuid.uuid4()
        created = await zones.create_zone(pool, zone_id, fields())
        replaced = await zones.replace_zone(pool, zone_id, fields(name="B"))
        assert replaced is not None
        await zones.delete_zone(pool, zone_id)
        async with asyncio.timeout(5):
            while len(heard) < 3:  # noqa: ASYNC110 (notifications arrive on the listener's loop)
                await asyncio.sleep(0.02)
        deleted_revision = (await zones.zones_changed_since(pool, replaced.revision, 1))[0].revision
        assert heard == [str(created.revision), str(replaced.revision), str(deleted_revision)]
    finally:
        await listener.close()


async def test_listing_filters_and_pages_newest_first(pool: asyncpg.Pool) -> None:
    mine = set()
    for n in range(5):
        kind = ZoneKind.SERVICE_AREA if n % 2 else ZoneKind.SAFE
        record = await zones.create_zone(
            pool, uuid.uuid4(), fields(kind=kind, active=n != 4, name=f"list-{n}")
        )
        mine.add(record.id)
    gone = await zones.create_zone(pool, uuid.uuid4(), fields(name="deleted"))
    await zones.delete_zone(pool, gone.id)

    seen: list[zones.ZoneRecord] = []
    page = await zones.list_zones(pool, ZoneFilter(), limit=2)
    seen.extend(page.items)
    while page.next_cursor is not None:
        page = await zones.list_zones(pool, ZoneFilter(), limit=2, after=page.next_cursor)
        seen.extend(page.items)
    keys = [(r.created_at, r.id) for r in seen]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    assert mine <= {r.id for r in seen}
    assert gone.id not in {r.id for r in seen}

    areas = await zones.list_zones(pool, ZoneFilter(kind=ZoneKind.SERVICE_AREA), limit=100)
    assert all(r.kind is ZoneKind.SERVICE_AREA for r in areas.items)
    inactive = await zones.list_zones(pool, ZoneFilter(active=False), limit=100)
    assert all(not r.active for r in inactive.items)
    assert any(r.name == "list-4" for r in inactive.items)


async def test_zone_ids_in_a_cell(pool: asyncpg.Pool) -> None:
    here = square(-3.70, 40.41)
    a = await zones.create_zone(pool, uuid.uuid4(), fields(here))
    b = await zones.create_zone(pool, uuid.uuid4(), fields(here, active=False))
    cell = a.cells[0]
    assert a.id in await zones.zone_ids_in_cell(pool, cell)
    assert b.id not in await zones.zone_ids_in_cell(pool, cell)  # inactive
    await zones.delete_zone(pool, a.id)
    assert a.id not in await zones.zone_ids_in_cell(pool, cell)


async def test_upsert_inserts_replaces_and_revives(pool: asyncpg.Pool) -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    first = await zones.upsert_zones(pool, [(i, fields(name="imported")) for i in ids])
    assert (first.created, first.updated) == (3, 0)
    await zones.delete_zone(pool, ids[0])
    again = await zones.upsert_zones(pool, [(i, fields(name="again")) for i in ids])
    assert (again.created, again.updated) == (0, 3)
    assert again.revision > first.revision
    revived = await zones.get_zone(pool, ids[0])
    assert revived is not None
    assert revived.name == "again"


async def test_a_geometry_postgis_refuses_is_geometry_rejected(pool: asyncpg.Pool) -> None:
    odd = {"type": "Polygon", "coordinates": [[[0, 0, 1], [1, 0], [1, 1], [0, 0]]]}
    with pytest.raises(GeometryRejected):
        await zones.create_zone(pool, uuid.uuid4(), replace(fields(), geometry=odd))
