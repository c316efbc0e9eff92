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
from typing import Any, Final

import numpy as np

from actors.subject import NearZone

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

#: A candidate zone with its lon/lat bounds (min_lon, min_lat, max_lon, max_lat).
_Row = tuple[NearZone, float, float, float, float]


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

    __slots__ = ("_buckets", "_max_buckets", "_rows", "_tiles", "bounds", "zones")

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
        self._buckets: dict[tuple[float, float], tuple[_Row, ...]] = {}
        self._tiles: dict[tuple[float, float], np.ndarray[Any, np.dtype[np.intp]]] = {}

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
        key = (latitude // _BUCKET_DEG, longitude // _BUCKET_DEG)
        rows = self._buckets.get(key)
        if rows is None:
            if len(self._buckets) >= self._max_buckets:
                return None
            rows = self._buckets[key] = self._bucket(key)
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

    def _bucket(self, key: tuple[float, float]) -> tuple[_Row, ...]:
        """Every zone a fix in bucket ``key`` with accuracy up to ``_BUCKET_REACH_M``
        can touch (and maybe a few more), in listing order. Among many zones
        (the book's grid over all of them), only those of the bucket's tile are
        tested: a tile's pool holds every zone any of its buckets can list."""
        pad = _BUCKET_DEG / 100  # covers rounding in ``//`` and below
        box = _reach_box(
            key[0] * _BUCKET_DEG - pad,
            (key[0] + 1) * _BUCKET_DEG + pad,
            key[1] * _BUCKET_DEG - pad,
            (key[1] + 1) * _BUCKET_DEG + pad,
        )
        if len(self.zones) <= _TILES_FROM:
            hit = self._touching_box(*box)
        else:
            tile = (key[0] // _TILE_BUCKETS, key[1] // _TILE_BUCKETS)
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
        return tuple(rows[i] for i in hit)

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
