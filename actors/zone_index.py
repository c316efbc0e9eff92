"""One cell's candidate zones for tracking, indexed for a fix's bounding-box test.

The zone book (``actors.zone_book``) keeps a :class:`CellZones` per H3 cell
that lists zones, built when a fix first lands there and dropped when the
cell's zones change. :meth:`CellZones.touching` answers which of them a
fix's accuracy circle can reach, from a fine lat/lon grid's buckets (four
comparisons per candidate) or, past their limits, a vectorised test over
every zone's bounds (numpy). Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from actors.subject import NearZone
from geo.fences import Fix, Frames, positions

#: Metres per degree of latitude, and a little more reach for rounding.
_M_PER_DEG: Final = 111_320.0
_DEG_SLACK: Final = 1e-6


#: The fine lat/lon grid ``near_point`` keeps candidates in (degrees; ~220 m
#: north-south), and the accuracy (metres) its buckets are built for.
_BUCKET_DEG: Final = 0.002
_BUCKET_REACH_M: Final = 150.0
#: Most buckets one cell keeps: a resolution-7 cell's fixes fill ~200 (its
#: area over a bucket's); past this (a coarse resolution) the vector test runs.
_MAX_BUCKETS: Final = 4096

#: Past this many zones (the book's grid over every zone), a new bucket tests only
#: the zones of its tile of ``_TILE_BUCKETS`` x ``_TILE_BUCKETS`` buckets (~3.5 km
#: north-south), each tile's pool found once, instead of every zone.
_TILES_FROM: Final = 256
_TILE_BUCKETS: Final = 16
_TILE_DEG: Final = _BUCKET_DEG * _TILE_BUCKETS
#: A bucket's key is one int, its row (latitude // ``_BUCKET_DEG``) times this plus
#: its column (longitude // ``_BUCKET_DEG``, within +/- 90,000): an int hashes and
#: compares in a dict for a fraction of a pair of floats, and a shard looks one up
#: for every fix (issue 20).
_ROW: Final = 1_000_000

#: A candidate zone with its lon/lat bounds (min_lon, min_lat, max_lon, max_lat).
_Row = tuple[NearZone, float, float, float, float]
#: A bucket's candidates: as rows (one fix's test) and as indexes into the
#: listing (a batch's test, :meth:`CellZones.near_many`).
_Bucket = tuple[tuple[_Row, ...], np.ndarray[Any, np.dtype[np.intp]]]
#: One fix's zones (:meth:`CellZones.touching`'s answer) and its position in
#: each (``geo.fences.positions``: True inside, False outside, None straddling).
Nearby = tuple[tuple[NearZone, ...], tuple[bool | None, ...]]
_NOWHERE: Final[Nearby] = ((), ())


class CellZones:
    """One cell's zones for tracking (in the book's listing order), with their
    lon/lat bounds (n x 4) for :meth:`touching`.

    Immutable but for a cache: buckets of a fine lat/lon grid, built when a fix
    first lands in one, each listing (in listing order) the zones whose bounds,
    grown by the reach of a ``_BUCKET_REACH_M`` fix (in longitude at the
    bucket's edge farthest from the equator, where it is largest) and a
    little slack, touch the bucket. Every zone such a fix, or a more accurate
    one, in the bucket can touch is listed, so testing only those with the
    same four comparisons the vector test makes gives the same answer. Less
    accurate fixes, and fixes in a cell that already holds ``_MAX_BUCKETS``,
    take the vector test. The book drops the whole object when the cell's
    zones change: the buckets never go stale.
    """

    __slots__ = ("_buckets", "_frames", "_max_buckets", "_rows", "_tiles", "bounds", "zones")

    def __init__(self, zones: tuple[NearZone, ...], *, max_buckets: int = _MAX_BUCKETS) -> None:
        self.zones = zones
        self._max_buckets = max_buckets
        self.bounds: np.ndarray[Any, np.dtype[np.float64]] = np.array(
            [n.zone.geometry.bounds for n in zones], dtype=np.float64
        ).reshape(-1, 4)
        self._rows: list[_Row] = [
            (zone, b[0], b[1], b[2], b[3])
            for zone, b in zip(zones, self.bounds.tolist(), strict=True)
        ]
        self._buckets: dict[int, _Bucket] = {}
        self._tiles: dict[tuple[int, int], np.ndarray[Any, np.dtype[np.intp]]] = {}
        self._frames: Frames | None = None

    def touching(
        self, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...]:
        """The zones whose lon/lat bounding box the fix's reach box touches
        (``accuracy_m`` in metres, ``_DEG_SLACK`` more), in listing order."""
        found = self.bucketed(latitude, longitude, accuracy_m)
        if found is not None:
            return found
        reach_lat = accuracy_m / _M_PER_DEG + _DEG_SLACK
        reach_lon = reach_lat / max(math.cos(math.radians(latitude)), 1e-6)
        hit = self._touching_box(
            longitude - reach_lon, latitude - reach_lat, longitude + reach_lon, latitude + reach_lat
        )
        zones = self.zones
        return tuple(zones[i] for i in hit)

    def bucketed(
        self, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...] | None:
        """:meth:`touching`'s answer from the fix's bucket; None when the buckets
        cannot give it (a fix less accurate than they are built for, a point
        off the map, or a new bucket once ``max_buckets`` are kept)."""
        if not (
            accuracy_m <= _BUCKET_REACH_M
            and -90.0 <= latitude <= 90.0
            and -180.0 <= longitude <= 180.0
        ):
            return None
        key = int(latitude // _BUCKET_DEG) * _ROW + int(longitude // _BUCKET_DEG)
        bucket = self._buckets.get(key) or self._new_bucket(key)
        if bucket is None:
            return None
        rows = bucket[0]
        if not rows:
            return ()
        reach_lat = accuracy_m / _M_PER_DEG + _DEG_SLACK
        reach_lon = reach_lat / max(math.cos(math.radians(latitude)), 1e-6)
        west, east = longitude - reach_lon, longitude + reach_lon
        south, north = latitude - reach_lat, latitude + reach_lat
        return tuple(
            [
                zone
                for zone, min_lon, min_lat, max_lon, max_lat in rows
                if min_lon <= east and max_lon >= west and min_lat <= north and max_lat >= south
            ]
        )

    def near_many(self, fixes: Sequence[Fix]) -> list[Nearby | None]:
        """For each fix, :meth:`bucketed`'s zones and the fix's position in each,
        found for the whole batch at once; None for a fix the buckets cannot
        answer (as :meth:`bucketed`).

        The same four comparisons per candidate as :meth:`bucketed`, with the
        same arithmetic, made over every (fix, candidate) pair of the batch as
        arrays; then ``geo.fences.positions`` over the pairs that touch. A
        shard's batch spends most of its per-fix time here otherwise, one
        fix and one zone at a time."""
        count = len(fixes)
        answers: list[Nearby | None] = [None] * count
        lat = np.array([f.latitude for f in fixes], np.float64)
        lon = np.array([f.longitude for f in fixes], np.float64)
        acc = np.array([f.accuracy_m for f in fixes], np.float64)
        with np.errstate(invalid="ignore"):  # NaNs are not usable: no warning
            usable = (
                (acc <= _BUCKET_REACH_M)
                & (lat >= -90.0)
                & (lat <= 90.0)
                & (lon >= -180.0)
                & (lon <= 180.0)
            )
            rows = np.where(usable, lat // _BUCKET_DEG, 0.0).astype(np.int64)
            columns = np.where(usable, lon // _BUCKET_DEG, 0.0).astype(np.int64)
        keys = (rows * _ROW + columns).tolist()
        buckets = self._buckets
        chosen: list[int] = []  # fixes with candidates
        pools: list[np.ndarray[Any, np.dtype[np.intp]]] = []
        for index in np.flatnonzero(usable).tolist():
            key = keys[index]
            bucket = buckets.get(key) or self._new_bucket(key)
            if bucket is None:
                continue
            answers[index] = _NOWHERE
            if bucket[0]:
                chosen.append(index)
                pools.append(bucket[1])
        if not chosen:
            return answers
        counts = np.fromiter(map(len, pools), np.intp, len(pools))
        picked = np.array(chosen, np.intp)
        pair_fix = np.repeat(picked, counts)
        zone = np.concatenate(pools)
        lats, lons, accs = lat[pair_fix], lon[pair_fix], acc[pair_fix]
        # As in ``bucketed``: its cosine is Python's, which numpy's may round apart.
        cosines = [max(math.cos(math.radians(v)), 1e-6) for v in lat[picked].tolist()]
        reach_lat = accs / _M_PER_DEG + _DEG_SLACK
        reach_lon = reach_lat / np.repeat(np.array(cosines, np.float64), counts)
        b = self.bounds[zone]
        touch = np.flatnonzero(
            (b[:, 0] <= lons + reach_lon)
            & (b[:, 2] >= lons - reach_lon)
            & (b[:, 1] <= lats + reach_lat)
            & (b[:, 3] >= lats - reach_lat)
        )
        if not len(touch):
            return answers
        pair_fix, zone = pair_fix[touch], zone[touch]
        frames = self._frames
        if frames is None:
            frames = self._frames = Frames([near.zone for near in self.zones])
        where = positions(frames, zone, lats[touch], lons[touch], accs[touch])
        zones = self.zones
        listed = [zones[j] for j in zone.tolist()]
        ends = [*(np.flatnonzero(np.diff(pair_fix)) + 1).tolist(), len(listed)]
        owners = pair_fix.tolist()
        start = 0
        for end in ends:
            answers[owners[start]] = (tuple(listed[start:end]), tuple(where[start:end]))
            start = end
        return answers

    def _new_bucket(self, key: int) -> _Bucket | None:
        """Bucket ``key``, made and kept (the first fix in it); None once
        ``max_buckets`` are kept (the caller then cannot answer from buckets).
        A bucket is never falsy: its rows and indexes are a pair even when empty."""
        if len(self._buckets) >= self._max_buckets:
            return None
        bucket = self._buckets[key] = self._bucket(key)
        return bucket

    def _bucket(self, key: int) -> _Bucket:
        """Every zone a fix in bucket ``key`` with accuracy up to ``_BUCKET_REACH_M``
        can touch (and maybe a few more), in listing order. Among many zones
        (the book's grid over all of them), only those of the bucket's tile are
        tested: a tile's pool holds every zone any of its buckets can list."""
        row, column = _row_and_column(key)
        pad = _BUCKET_DEG / 100  # covers rounding in ``//`` and below
        box = _reach_box(
            row * _BUCKET_DEG - pad,
            (row + 1) * _BUCKET_DEG + pad,
            column * _BUCKET_DEG - pad,
            (column + 1) * _BUCKET_DEG + pad,
        )
        if len(self.zones) <= _TILES_FROM:
            hit = self._touching_box(*box)
        else:
            tile = (row // _TILE_BUCKETS, column // _TILE_BUCKETS)
            pool = self._tiles.get(tile)
            if pool is None:
                tile_pad = 2 * pad  # a tile's box holds each of its buckets' boxes
                pool = self._tiles[tile] = self._touching_box(
                    *_reach_box(
                        tile[0] * _TILE_DEG - tile_pad,
                        (tile[0] + 1) * _TILE_DEG + tile_pad,
                        tile[1] * _TILE_DEG - tile_pad,
                        (tile[1] + 1) * _TILE_DEG + tile_pad,
                    )
                )
            hit = pool[self._touching_box(*box, among=pool)]
        rows = self._rows
        return tuple(rows[i] for i in hit), hit

    def _touching_box(
        self,
        west: float,
        south: float,
        east: float,
        north: float,
        among: np.ndarray[Any, np.dtype[np.intp]] | None = None,
    ) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Indexes (in listing order) of the zones whose bounds touch the box; of
        ``among`` (ascending indexes), the positions in it of those that do."""
        b = self.bounds if among is None else self.bounds[among]
        return np.flatnonzero(
            (b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south)
        )


def _row_and_column(key: int) -> tuple[int, int]:
    """The row and column a bucket's key (``_ROW``) was made of."""
    column = (key + _ROW // 2) % _ROW - _ROW // 2
    return (key - column) // _ROW, column


def _reach_box(
    south: float, north: float, west: float, east: float
) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a lat/lon box grown by the reach of a
    ``_BUCKET_REACH_M`` fix anywhere in it (in longitude at its edge farthest
    from the equator, where that reach is largest), and a little slack."""
    farthest = min(max(abs(south), abs(north)), 90.0)
    reach_lat = (_BUCKET_REACH_M / _M_PER_DEG + _DEG_SLACK) * 1.001
    reach_lon = reach_lat / max(math.cos(math.radians(farthest)), 1e-6) * 1.001
    return west - reach_lon, south - reach_lat, east + reach_lon, north + reach_lat
