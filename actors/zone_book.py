"""The zone book: one shard's in-memory copy of the live geofence zones, kept current.

Each shard keeps every live (active, not deleted) zone in memory, validated
and indexed by the H3 cells it covers (``geo.coverage``: the zone grown by
``MAX_FIX_ACCURACY_M``), so tracking a fix needs no I/O: its cell's zones
are one dict lookup (:meth:`ZoneBook.near`). :meth:`ZoneBook.near_point`
narrows them to the zones whose bounding box the fix's accuracy reaches,
testing only the few listed in the fix's bucket of a fine lat/lon grid
(built per cell when a fix first lands in it, dropped with the cell's
listing when its zones change; fixes less accurate than the buckets allow
test every zone of the cell). :meth:`ZoneBook.near_fix` answers most fixes
without their cell: the same buckets over every zone of the book (dropped
at every change), which saves a tracked fix its H3 lookup;
:meth:`ZoneBook.near_fixes` answers a shard's whole batch of fixes at once,
with each fix's position in each of its zones (``CellZones.near_many``,
``geo.fences.positions``: numpy over the batch). The book also
keeps the shard's region entities told which zones cover their cell
(``actors.region``).

How it stays current: :meth:`ZoneBook.start` loads every zone, then a task
reads the changes after the newest revision seen from its :class:`ZoneFeed`
(``persistence.stores.zone_feed``: it wakes on ``NOTIFY geofence_zones`` and
after ``refresh_s`` anyway, so a lost notification delays a change by one
poll at most). Revisions are committed in order (migration 0006), so reading
"after the newest seen" misses nothing, deletions included.

What regions hear: after each batch of changes, every cell whose zones
changed (the old cells of a changed zone and its new ones) *that this shard
owns* gets :class:`~actors.region.ZonesChanged` with the cell's whole set
from the book and the book's revision, through ``tell`` (a region ignores a
set older than the one it holds). At start the book compares its index
with what the owned regions last stored and tells only those that differ,
so changes made while the shard was down reach them too, without waking
every region on every restart.

For tracking (``cluster.tracking``): :attr:`ZoneBook.gone` lists the zones
known deleted or inactive, and a zone's ``since`` (``geo.fences.Zone``) is
its row's ``updated_at`` when its shape last changed (at load: the row's
``updated_at``; a rename or new rules keep it).

Every shard runs its own book over the same table (``panic_alert.shard_root``
opens its feed): the books agree as soon
as each has read the same revision. Not thread-safe; one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol
from uuid import UUID

from actors.effects import EntityKind
from actors.errors import ActorError
from actors.region import RegionState, ZonesChanged
from actors.subject import NearZone
from actors.zone_index import CellZones, Nearby
from actors.zone_rules import ZoneKind, ZoneRow, ZoneRules
from geo.cells import resolution_of
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.errors import GeoError
from geo.fences import Fix, Zone

log = logging.getLogger(__name__)

#: Zones read per query: a zone may carry 10,000 vertices, so pages stay small.
PAGE_SIZE: Final = 200
#: Longest wait between attempts to read the changes after a failure.
MAX_BACKOFF_S: Final = 30.0

#: :meth:`ZoneBook.near_fix`'s grid: the most zones it is built over (each new
#: tile of buckets tests every zone's bounds once: ``actors.zone_index``), and
#: the most buckets it keeps (~200 bytes each; a 40 x 40 km city has ~50,000).
GRID_MAX_ZONES: Final = 50_000
GRID_MAX_BUCKETS: Final = 100_000

#: ``tell(kind, entity_id, message)``: hand a message to an entity, no reply.
Tell = Callable[[EntityKind, str, object], None]


class ZoneFeed(Protocol):
    """The zone table's changes, in revision order (``persistence.stores.zone_feed``)."""

    async def changed_since(self, revision: int, limit: int) -> Sequence[ZoneRow]:
        """Up to ``limit`` zones written after ``revision``, oldest change first."""
        ...

    async def region_snapshots(self) -> Sequence[tuple[str, Mapping[str, Any]]]:
        """``(cell, snapshot)`` of every stored region that lists a zone."""
        ...

    async def wait(self, revision: int, timeout_s: float) -> None:
        """Return once a revision after ``revision`` may exist, or after ``timeout_s``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LiveZone:
    """A live zone as the shard uses it: validated shape, kind, rules, cells, revision."""

    zone: Zone
    kind: ZoneKind
    rules: ZoneRules
    #: Every cell at the book's resolution that a fix near the zone can fall in.
    cells: tuple[str, ...]
    revision: int
    name: str = ""


class ZoneBook:
    """The live zones, by id and by cell, for one shard (see the module docstring)."""

    def __init__(
        self,
        feed: ZoneFeed,
        *,
        resolution: int,
        owns: Callable[[str], bool],
        tell: Tell,
        refresh_s: float = 5.0,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._feed = feed
        self._resolution = resolution
        self._owns = owns
        self._tell = tell
        self._refresh_s = refresh_s
        self._page_size = page_size
        self._zones: dict[UUID, LiveZone] = {}
        self._by_cell: dict[str, set[UUID]] = {}
        self._near: dict[str, CellZones] = {}
        #: Every live zone, for :meth:`near_fix` (dropped at every change).
        self._everywhere: CellZones | None = None
        self._gone: set[UUID] = set()
        self._gone_frozen: frozenset[UUID] | None = None
        self._revision = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.loaded = False
        #: Changes applied and region messages sent since start (for stats and tests).
        self.changes = 0
        self.told = 0

    # --- reads (synchronous, from memory) --------------------------------------------

    @property
    def revision(self) -> int:
        """The newest zone revision the book has applied."""
        return self._revision

    def __len__(self) -> int:
        return len(self._zones)

    def get(self, zone_id: UUID) -> LiveZone | None:
        """The live zone, or None (unknown, deleted or inactive)."""
        return self._zones.get(zone_id)

    def zone_ids_in(self, cell: str) -> frozenset[UUID]:
        """The live zones listed under ``cell``."""
        return frozenset(self._by_cell.get(cell, ()))

    def near(self, cell: str) -> tuple[NearZone, ...]:
        """Every live zone listed under ``cell``, as tracking takes them (by id).

        Built once per cell and change (every fix asks); cells without zones
        are not remembered, so fixes from everywhere cost no memory.
        """
        listed = self._listed(cell)
        return () if listed is None else listed.zones

    def near_point(
        self, cell: str, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...]:
        """The zones of ``cell`` whose bounding box the fix's accuracy circle touches,
        in the cell's listing order.

        A zone it does not touch is one the subject is certainly outside of,
        so tracking needs only these (a cell lists ~100 zones in a dense city,
        a fix touches a few). Most fixes test only their bucket's zones (see
        ``CellZones``); the answer is the same as testing every zone.
        """
        listed = self._listed(cell)
        if listed is None:
            return ()
        return listed.touching(latitude, longitude, accuracy_m)

    def near_fix(
        self, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...] | None:
        """Every live zone whose bounding box the fix's accuracy circle touches, in
        id order, from the fix's bucket of one grid over every zone (no H3 cell
        needed); None when the grid cannot answer (see ``CellZones.bucketed``):
        the caller then asks :meth:`near_point` of the fix's cell.

        Its answer may hold a zone more than ``near_point``'s: one whose box the
        circle touches although the zone is not listed in the fix's cell (the
        zone itself is then farther than ``MAX_FIX_ACCURACY_M`` from the fix, so
        tracking finds the subject outside it either way)."""
        grid = self._grid()
        return None if grid is None else grid.bucketed(latitude, longitude, accuracy_m)

    def near_fixes(self, fixes: Sequence[Fix]) -> list[Nearby | None]:
        """:meth:`near_fix` of each fix of a batch, found for all of them at once,
        with the fix's position in each of its zones (``CellZones.near_many``)."""
        grid = self._grid()
        return [None] * len(fixes) if grid is None else grid.near_many(fixes)

    def _grid(self) -> CellZones | None:
        """The grid over every live zone, built at the first fix after a change;
        None past ``GRID_MAX_ZONES``."""
        everywhere = self._everywhere
        if everywhere is None:
            if len(self._zones) > GRID_MAX_ZONES:
                return None
            zones = tuple(_near_zone(self._zones[z]) for z in sorted(self._zones))
            everywhere = self._everywhere = CellZones(zones, max_buckets=GRID_MAX_BUCKETS)
        return everywhere

    def _listed(self, cell: str) -> CellZones | None:
        """The cell's zones and their bounds, built once per cell and change (every
        fix asks); cells without zones are not remembered, so fixes from everywhere
        cost no memory."""
        found = self._near.get(cell)
        if found is None:
            ids = self._by_cell.get(cell)
            if not ids:
                return None
            zones = tuple(_near_zone(self._zones[z]) for z in sorted(ids))
            found = self._near[cell] = CellZones(zones)
        return found

    @property
    def gone(self) -> frozenset[UUID]:
        """Zones the book knows were deleted or deactivated: trackers drop them."""
        if self._gone_frozen is None:
            self._gone_frozen = frozenset(self._gone)
        return self._gone_frozen

    # --- following the table ---------------------------------------------------------

    async def start(self) -> None:
        """Load every zone, tell owned regions what they missed, then follow changes.

        Raises (a translated ``PersistenceError``) if the load fails: the
        caller retries, and the load goes on from the last page read. Once
        started, the follow task logs and retries on its own.
        """
        async with self._lock:
            while await self._read_page(tell=False):
                pass
            await self._reconcile()
            self.loaded = True
        log.info(
            "zone book loaded %d live zones over %d cells (revision %d)",
            len(self._zones),
            len(self._by_cell),
            self._revision,
        )
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def refresh(self) -> int:
        """Apply every change after the book's revision; returns how many. Safe to call any time."""
        async with self._lock:
            applied = 0
            while count := await self._read_page(tell=True):
                applied += count
            return applied

    async def _read_page(self, *, tell: bool) -> int:
        records = await self._feed.changed_since(self._revision, self._page_size)
        if not records:
            return 0
        affected = self._apply(records)
        self.changes += len(records)
        if tell:
            self._tell_regions(affected)
        return len(records)

    def _apply(self, records: Iterable[ZoneRow]) -> set[str]:
        """Apply changes in revision order; the cells whose zone sets may have changed."""
        affected: set[str] = set()
        for record in records:
            self._revision = max(self._revision, record.revision)
            old = self._zones.pop(record.id, None)
            if old is not None:
                affected.update(old.cells)
                for cell in old.cells:
                    ids = self._by_cell.get(cell)
                    if ids is not None:
                        ids.discard(record.id)
                        if not ids:
                            del self._by_cell[cell]
            live = self._live(record, old) if record.deleted_at is None and record.active else None
            self._gone_frozen = None
            if live is None:
                self._gone.add(record.id)
                continue
            self._gone.discard(record.id)
            self._zones[record.id] = live
            affected.update(live.cells)
            for cell in live.cells:
                self._by_cell.setdefault(cell, set()).add(record.id)
        for cell in affected:
            self._near.pop(cell, None)
        self._everywhere = None
        return affected

    def _live(self, record: ZoneRow, old: LiveZone | None) -> LiveZone | None:
        """The record as a live zone; None (logged) if it does not validate any more."""
        try:
            rules = ZoneRules.from_json(record.rules)
            zone = Zone.from_geojson(
                record.id,
                record.geometry,
                radius_m=record.radius_m,
                dwell_s=rules.dwell_s,
                since=record.updated_at,
            )
            if old is not None and old.zone.geometry == zone.geometry:
                # Renamed or new rules, same shape: subjects inside stay inside.
                zone = replace(zone, since=old.zone.since)
            cells = record.cells
            if not cells or resolution_of(cells[0]) != self._resolution:
                # Stored before cells were, or for another resolution: cover it here.
                cells = covering_cells(zone.geometry, self._resolution, MAX_FIX_ACCURACY_M)
        except (GeoError, ValueError) as exc:
            log.warning("zone %s cannot be used and is ignored: %s", record.id, exc)
            return None
        return LiveZone(zone, record.kind, rules, cells, record.revision, record.name)

    def _tell_regions(self, cells: Iterable[str]) -> None:
        for cell in sorted(cells):
            if self._owns(cell):
                self._tell(
                    EntityKind.REGION, cell, ZonesChanged(self.zone_ids_in(cell), self._revision)
                )
                self.told += 1

    async def _reconcile(self) -> None:
        """Tell the owned regions whose stored zones differ from the book's."""
        stored: dict[str, frozenset[UUID] | None] = {}
        for cell, snapshot in await self._feed.region_snapshots():
            if not self._owns(cell):
                continue
            try:
                stored[cell] = RegionState.from_snapshot(snapshot).zone_ids
            except (ActorError, GeoError, ValueError) as exc:
                log.warning("region %s snapshot unreadable (%s); telling it anew", cell, exc)
                stored[cell] = None
        cells = {cell for cell in self._by_cell if self._owns(cell)} | set(stored)
        self._tell_regions(c for c in cells if stored.get(c, frozenset()) != self.zone_ids_in(c))

    async def _follow(self) -> None:
        """Wake on news from the feed or every ``refresh_s``; read the changes. Logs and retries."""
        backoff = 1.0
        try:
            while True:
                await self._feed.wait(self._revision, self._refresh_s)
                try:
                    await self.refresh()
                    backoff = 1.0
                except Exception as exc:
                    log.warning("zone book cannot read zone changes (%s); retrying", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            await self._feed.close()


def _near_zone(live: LiveZone) -> NearZone:
    return NearZone(
        zone=live.zone,
        kind=live.kind.value,
        name=live.name,
        notify_subject=live.rules.notify_subject,
        notify_admins=live.rules.notify_admins,
        end_check_in=live.rules.end_check_in,
    )


__all__ = ["LiveZone", "Tell", "ZoneBook", "ZoneFeed"]
