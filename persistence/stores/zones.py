"""Geofence zones (``geofence_zones``): admin writes, listings, and the change feed shards follow.

Geometry is validated by the caller (``geo.fences``) and stored in PostGIS
from its GeoJSON (``ST_GeomFromGeoJSON``, SRID 4326); a Point zone stores
the point and ``radius_m``. The GeoJSON itself is kept too and read back
exactly as given (a Point zone as its Point); a zone written by other means
reads back through ``ST_AsGeoJSON``. The ``cells`` the zone
covers (``geo.coverage``) are stored with it, computed by the caller.

**Change feed.** Every insert and update takes the next ``revision`` from
one sequence, in commit order (migration 0006: writers are serialised), and
a delete is an update (``deleted_at``), so :func:`zones_changed_since` is
every change after a revision, deletions included, and a reader that
follows it misses nothing. Every write also notifies channel
``geofence_zones`` (payload: the newest revision written) in its own
transaction, so the notification arrives only once the change is visible.

Every other read ignores deleted zones: a deleted id is 404 like an
unknown one. :func:`upsert_zones` (the bulk import) brings a deleted zone
back when its id is imported again.

Listings are newest first with keyset pagination on ``(created_at, id)``,
with the cursor of ``GET /alerts`` (``persistence.stores.alerts.Cursor``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol
from uuid import UUID

import asyncpg

from actors.zone_rules import ZoneKind
from persistence.drivers import postgres
from persistence.drivers.postgres import Binds, Connection
from persistence.errors import GeometryRejected, PersistenceError
from persistence.stores.alerts import Cursor
from persistence.stores.cursors import CursorPage, page_of

log = logging.getLogger(__name__)

#: The channel every zone write notifies (payload: its newest revision).
CHANNEL: Final = "geofence_zones"


@dataclass(frozen=True, slots=True)
class ZoneFields:
    """What a write gives: everything but the id, revision and times.

    ``rules`` is stored as given (JSON); its ``dwell_s`` is also written to
    the ``dwell_s`` column, so the two never disagree.
    """

    name: str
    kind: ZoneKind
    geometry: Mapping[str, Any]
    radius_m: float | None
    rules: Mapping[str, Any]
    active: bool
    cells: tuple[str, ...]

    @property
    def dwell_s(self) -> int | None:
        value = self.rules.get("dwell_s")
        return None if value is None else int(value)


class ZoneValues(Protocol):
    """What a write reads of its fields (:class:`ZoneFields` or the gateway's own)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> ZoneKind: ...
    @property
    def geometry(self) -> Mapping[str, Any]: ...
    @property
    def radius_m(self) -> float | None: ...
    @property
    def rules(self) -> Mapping[str, Any]: ...
    @property
    def active(self) -> bool: ...
    @property
    def cells(self) -> tuple[str, ...]: ...
    @property
    def dwell_s(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    id: UUID
    name: str
    kind: ZoneKind
    #: GeoJSON, as given (a Point zone is its Point; ``radius_m`` says how far).
    geometry: dict[str, Any]
    radius_m: float | None
    rules: dict[str, Any]
    dwell_s: int | None
    active: bool
    cells: tuple[str, ...]
    revision: int
    created_at: datetime
    updated_at: datetime
    #: Only :func:`zones_changed_since` returns deleted zones.
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ZoneFilter:
    kind: ZoneKind | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class ZonePage:
    items: tuple[ZoneRecord, ...]
    next_cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class UpsertResult:
    created: int
    updated: int
    revision: int


_COLUMNS = (
    "id, name, kind, coalesce(geojson, ST_AsGeoJSON(geometry, 15)::jsonb) AS geometry, "
    "radius_m, rules, dwell_s, active, cells, revision, created_at, updated_at, deleted_at"
)

# One statement for one zone and for a batch: $1.. are arrays, one element per zone
# (a zone's cells joined by commas: asyncpg would read a list in a list as a 2-D array).
_UPSERT = f"""
INSERT INTO geofence_zones AS z (id, name, kind, geometry, geojson, radius_m, rules, dwell_s,
                                 active, cells, created_by)
SELECT u.id, u.name, u.kind, ST_SetSRID(ST_GeomFromGeoJSON(u.geometry::text), 4326), u.geometry,
       u.radius_m, u.rules, u.dwell_s, u.active, string_to_array(u.cells, ','), $10::uuid
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::float8[], $6::jsonb[],
              $7::int[], $8::boolean[], $9::text[])
       AS u(id, name, kind, geometry, radius_m, rules, dwell_s, active, cells)
{{conflict}}
RETURNING {_COLUMNS}, (xmax = 0) AS created
"""  # noqa: S608 (fixed fragments)

_INSERT = _UPSERT.format(conflict="")
_INSERT_OR_REPLACE = _UPSERT.format(
    conflict="""ON CONFLICT (id) DO UPDATE
   SET name = EXCLUDED.name, kind = EXCLUDED.kind, geometry = EXCLUDED.geometry,
       geojson = EXCLUDED.geojson, radius_m = EXCLUDED.radius_m, rules = EXCLUDED.rules,
       dwell_s = EXCLUDED.dwell_s, active = EXCLUDED.active, cells = EXCLUDED.cells,
       deleted_at = NULL"""
)

_REPLACE = f"""
UPDATE geofence_zones
   SET name = $2, kind = $3, geometry = ST_SetSRID(ST_GeomFromGeoJSON($4::jsonb::text), 4326),
       geojson = $4::jsonb, radius_m = $5, rules = $6, dwell_s = $7, active = $8, cells = $9
 WHERE id = $1 AND deleted_at IS NULL
RETURNING {_COLUMNS}
"""  # noqa: S608 (fixed fragments)


def _record(row: asyncpg.Record) -> ZoneRecord:
    return ZoneRecord(
        id=row["id"],
        name=row["name"],
        kind=ZoneKind(row["kind"]),
        geometry=row["geometry"],
        radius_m=row["radius_m"],
        rules=row["rules"],
        dwell_s=row["dwell_s"],
        active=row["active"],
        cells=tuple(row["cells"]),
        revision=row["revision"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        deleted_at=row["deleted_at"],
    )


def _translated(exc: BaseException) -> PersistenceError:
    # Class 22 (data exception) and XX000 (PostGIS' lwerror) on a write are
    # the geometry; anything else is what it is.
    if isinstance(exc, asyncpg.DataError | asyncpg.InternalServerError):
        return GeometryRejected(str(exc))
    return postgres.translate_error(exc)


#: The edge of the writes that store a geometry.
_GEOMETRY_EDGE = postgres.EDGE.with_translate(_translated)


async def _notify(conn: Connection, revision: int) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(revision))


def _columns(items: Sequence[tuple[UUID, ZoneValues]]) -> list[Any]:
    return [
        [zone_id for zone_id, _ in items],
        [f.name for _, f in items],
        [f.kind.value for _, f in items],
        [dict(f.geometry) for _, f in items],
        [f.radius_m for _, f in items],
        [dict(f.rules) for _, f in items],
        [f.dwell_s for _, f in items],
        [f.active for _, f in items],
        [",".join(f.cells) for _, f in items],
    ]


async def create_zone(
    pool: asyncpg.Pool, zone_id: UUID, fields: ZoneValues, *, created_by: UUID | None = None
) -> ZoneRecord:
    """Insert a new zone; ``Conflict`` if ``zone_id`` is taken (even by a deleted zone)."""
    with _GEOMETRY_EDGE:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_INSERT, *_columns([(zone_id, fields)]), created_by)
            assert row is not None
            await _notify(conn, row["revision"])
    return _record(row)


async def replace_zone(pool: asyncpg.Pool, zone_id: UUID, fields: ZoneValues) -> ZoneRecord | None:
    """Replace every field of a live zone (a PUT); None if unknown or deleted. Idempotent."""
    with _GEOMETRY_EDGE:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                _REPLACE,
                zone_id,
                fields.name,
                fields.kind.value,
                dict(fields.geometry),
                fields.radius_m,
                dict(fields.rules),
                fields.dwell_s,
                fields.active,
                list(fields.cells),
            )
            if row is not None:
                await _notify(conn, row["revision"])
    return None if row is None else _record(row)


async def delete_zone(pool: asyncpg.Pool, zone_id: UUID) -> bool:
    """Soft-delete a live zone; False if unknown or already deleted."""
    with postgres.EDGE:
        async with pool.acquire() as conn, conn.transaction():
            revision = await conn.fetchval(
                "UPDATE geofence_zones SET deleted_at = now() "
                "WHERE id = $1 AND deleted_at IS NULL RETURNING revision",
                zone_id,
            )
            if revision is not None:
                await _notify(conn, revision)
    return revision is not None


async def upsert_zones(
    pool: asyncpg.Pool,
    items: Sequence[tuple[UUID, ZoneValues]],
    *,
    created_by: UUID | None = None,
) -> UpsertResult:
    """Insert or fully replace each ``(id, fields)`` in one transaction (all or none).

    Idempotent: importing the same items again changes nothing but their
    revisions. A deleted zone whose id comes again is live again.
    """
    if not items:
        raise ValueError("nothing to upsert")
    with _GEOMETRY_EDGE:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(_INSERT_OR_REPLACE, *_columns(items), created_by)
            revision = max(r["revision"] for r in rows)
            await _notify(conn, revision)
    created = sum(1 for r in rows if r["created"])
    return UpsertResult(created=created, updated=len(rows) - created, revision=revision)


async def get_zone(pool: asyncpg.Pool, zone_id: UUID) -> ZoneRecord | None:
    """A live zone (active or not); None if unknown or deleted."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM geofence_zones WHERE id = $1 AND deleted_at IS NULL",  # noqa: S608
            zone_id,
        )
    return None if row is None else _record(row)


async def list_zones(
    pool: asyncpg.Pool, filters: ZoneFilter, *, limit: int, after: Cursor | None = None
) -> ZonePage:
    """One page of live zones, newest first."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    where = ["deleted_at IS NULL"]
    bind = Binds()
    if filters.kind is not None:
        where.append(f"kind = {bind(filters.kind.value)}")
    if filters.active is not None:
        where.append(f"active = {bind(filters.active)}")
    if after is not None:
        where.append(f"(created_at, id) < ({bind(after.created_at)}, {bind(after.id)})")
    sql = (
        f"SELECT {_COLUMNS} FROM geofence_zones WHERE {' AND '.join(where)} "  # noqa: S608 (fixed fragments)
        f"ORDER BY created_at DESC, id DESC LIMIT {bind(limit + 1)}"
    )
    with postgres.EDGE:
        rows = await pool.fetch(sql, *bind.values)
    records, next_cursor = page_of(
        rows, limit, _record, lambda last: Cursor(last.created_at, last.id)
    )
    return ZonePage(records, next_cursor)


async def zones_changed_since(pool: asyncpg.Pool, revision: int, limit: int) -> list[ZoneRecord]:
    """Up to ``limit`` zones written after ``revision``, oldest change first, deleted ones too.

    Each zone appears once, as it is now. Page on with the last one's revision.
    """
    with postgres.EDGE:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM geofence_zones WHERE revision > $1 "  # noqa: S608
            "ORDER BY revision LIMIT $2",
            revision,
            limit,
        )
    return [_record(r) for r in rows]


async def zone_ids_in_cell(pool: asyncpg.Pool, cell: str) -> frozenset[UUID]:
    """The live (active, not deleted) zones whose cells include ``cell``."""
    with postgres.EDGE:
        rows = await pool.fetch(
            "SELECT id FROM geofence_zones "
            "WHERE cells @> ARRAY[$1]::text[] AND deleted_at IS NULL AND active",
            cell,
        )
    return frozenset(r["id"] for r in rows)


async def region_snapshots_with_zones(pool: asyncpg.Pool) -> list[tuple[str, dict[str, Any]]]:
    """``(cell, snapshot)`` of every stored region that lists a zone (``actors.region``'s layout).

    For a shard starting: what its regions last stored, to push them only
    the zone changes they missed.
    """
    with postgres.EDGE:
        rows = await pool.fetch(
            "SELECT entity_id, state FROM entity_snapshots "
            "WHERE kind = 'region' AND state -> 'zone_ids' <> '[]'::jsonb"
        )
    return [(r["entity_id"], r["state"]) for r in rows]


class PostgresZones:
    """``gateway.ports.Zones`` on one pool; cursors are ``alerts.Cursor`` encoded."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def check_cursor(self, cursor: str) -> None:
        Cursor.decode(cursor)

    async def list_zones(
        self, *, kind: ZoneKind | None, active: bool | None, limit: int, cursor: str | None
    ) -> CursorPage[ZoneRecord]:
        after = None if cursor is None else Cursor.decode(cursor)
        page = await list_zones(
            self._pool, ZoneFilter(kind=kind, active=active), limit=limit, after=after
        )
        next_cursor = None if page.next_cursor is None else page.next_cursor.encode()
        return CursorPage(page.items, next_cursor)

    async def get_zone(self, zone_id: UUID) -> ZoneRecord | None:
        return await get_zone(self._pool, zone_id)

    async def create_zone(
        self, zone_id: UUID, fields: ZoneValues, *, created_by: UUID | None
    ) -> ZoneRecord:
        return await create_zone(self._pool, zone_id, fields, created_by=created_by)

    async def replace_zone(self, zone_id: UUID, fields: ZoneValues) -> ZoneRecord | None:
        return await replace_zone(self._pool, zone_id, fields)

    async def delete_zone(self, zone_id: UUID) -> bool:
        return await delete_zone(self._pool, zone_id)
