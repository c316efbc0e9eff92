"""Which H3 cells a zone covers, grown by a distance: the index shards look zones up by. Pure.

A shard finds the zones near a fix by the fix's cell alone, so a zone must
be listed under every cell that a fix touching it can fall in.
:func:`covering_cells` gives every cell that intersects the zone grown by
``buffer_m`` metres; with ``buffer_m = MAX_FIX_ACCURACY_M``, the centre of
any fix whose accuracy circle touches the zone lies in one of them.

**Never a missed cell.** Extra cells cost a shard one zone test each; a
missed one loses an event. So every approximation here errs outwards:

* The buffer is drawn in degrees after scaling longitude by the cosine of
  the highest latitude the grown zone reaches. A metre east is then never
  more than one scaled unit, so the grown shape contains the true one
  (exactly so on the sphere ``geo.cells`` measures on), plus a safety
  margin; closer to the equator it is a little wider than needed.
* Cells are those H3 finds overlapping the grown shape (``contain=
  "overlap"``; with an ``h3`` lacking it, cell centres within the shape grown
  by two cell edges more), plus the cell of every vertex of the grown shape.
* Near the antimeridian the grown shape is split there and each side
  covered on its own, so a zone at longitude 179.99 also lists the cells
  just past -180.

The answer is sorted, so equal zones give equal lists on every machine.
Zone validation (sizes, poles, the antimeridian) is ``geo.fences``'s; a
zone of the largest allowed area covers about 2,000 cells at the default
resolution 7, 100,000 at resolution 9.
"""

from __future__ import annotations

import math
from typing import Final

import h3
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.geometry.base import BaseGeometry

from geo.cells import EARTH_RADIUS_M, MAX_RESOLUTION, MIN_RESOLUTION
from geo.errors import InvalidCell, InvalidCoordinate

#: Fixes less accurate than this (metres) are not used for geofencing; zones
#: are indexed under the cells their outline grown by this much touches.
MAX_FIX_ACCURACY_M: Final = 1000.0

#: Added to every buffer: the polygon shapely draws for a round buffer lies
#: up to 0.12 % inside the circle (16 segments a quarter), and rounding in H3
#: and shapely is far below a metre.
_SAFETY_M: Final = 1.0
_SAFETY_FRACTION: Final = 0.01
#: Metres per degree of latitude on the sphere of ``geo.cells``.
_M_PER_DEG: Final = math.pi / 180 * EARTH_RADIUS_M
_WORLD: Final = box(-180.0, -90.0, 180.0, 90.0)

_OVERLAP = getattr(h3, "h3shape_to_cells_experimental", None)


def covering_cells(
    zone_geometry: BaseGeometry, resolution: int, buffer_m: float
) -> tuple[str, ...]:
    """Every H3 cell at ``resolution`` that intersects the zone grown by ``buffer_m``, sorted.

    ``zone_geometry`` is a (Multi)Polygon in lon/lat degrees, as
    ``geo.fences.Zone.geometry`` holds it. Raises :class:`InvalidCell` for a
    bad resolution, :class:`InvalidCoordinate` for a geometry beyond latitude
    ±90, and ``ValueError`` for an empty geometry or a negative or non-finite
    buffer.
    """
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise InvalidCell(
            f"H3 resolution must be {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution!r}"
        )
    if not (math.isfinite(buffer_m) and buffer_m >= 0):
        raise ValueError(f"buffer_m must be a finite number >= 0, got {buffer_m!r}")
    if zone_geometry.is_empty:
        raise ValueError("an empty geometry covers no cell")
    grown = _grown(zone_geometry, buffer_m)
    cells: set[str] = set()
    for part in _within_the_world(grown):
        cells.update(_overlapping(part, resolution))
        cells.update(_vertex_cells(part, resolution))
    return tuple(sorted(cells))


def _grown(geometry: BaseGeometry, buffer_m: float) -> BaseGeometry:
    """The geometry grown by at least ``buffer_m`` metres everywhere (see the module docstring)."""
    reach_m = buffer_m * (1 + _SAFETY_FRACTION) + _SAFETY_M
    reach_deg = reach_m / _M_PER_DEG
    min_lon, min_lat, _max_lon, max_lat = geometry.bounds
    if min_lat < -90.0 or max_lat > 90.0:
        raise InvalidCoordinate(max(abs(min_lat), abs(max_lat)), min_lon)
    top = min(90.0, max(abs(min_lat), abs(max_lat)) + reach_deg)
    # cos(top) only shrinks towards a pole; past 89.9° the cells around the pole
    # are all taken (a longitude scale that small would make the buffer useless).
    scale = math.cos(math.radians(min(top, 89.9)))
    scaled = shapely.transform(geometry, lambda xy: xy * (scale, 1.0))
    grown = scaled.buffer(reach_deg, quad_segs=16)
    return shapely.transform(grown, lambda xy: xy / (scale, 1.0))


def _within_the_world(geometry: BaseGeometry) -> list[BaseGeometry]:
    """The geometry's parts within longitude ±180, those past it shifted back by 360°."""
    parts = [geometry.intersection(_WORLD)]
    min_lon, _min_lat, max_lon, _max_lat = geometry.bounds
    if min_lon < -180.0:
        west = geometry.intersection(box(-540.0, -90.0, -180.0, 90.0))
        parts.append(shapely.transform(west, lambda xy: xy + np.array((360.0, 0.0))))
    if max_lon > 180.0:
        east = geometry.intersection(box(180.0, -90.0, 540.0, 90.0))
        parts.append(shapely.transform(east, lambda xy: xy - np.array((360.0, 0.0))))
    return [p for p in (_areal(part) for part in parts) if p is not None]


def _areal(geometry: BaseGeometry) -> Polygon | MultiPolygon | None:
    """Only the (Multi)Polygon pieces of a clip (a clip can leave lines or points)."""
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if isinstance(g, Polygon)]
    polygons += [
        p for g in getattr(geometry, "geoms", []) if isinstance(g, MultiPolygon) for p in g.geoms
    ]
    polygons = [p for p in polygons if not p.is_empty]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _overlapping(geometry: Polygon | MultiPolygon, resolution: int) -> list[str]:
    if _OVERLAP is not None:
        return [str(c) for c in _OVERLAP(h3.geo_to_h3shape(geometry), resolution, "overlap")]
    # Older h3: a cell overlapping the shape has its centre within one
    # circumradius (an edge length) of it; two edges leave room for distortion.
    edge_deg = 2 * h3.average_hexagon_edge_length(resolution, unit="m") / _M_PER_DEG
    wider = _areal(geometry.buffer(edge_deg / math.cos(math.radians(_top(geometry)))))
    assert wider is not None
    return [str(c) for c in h3.h3shape_to_cells(h3.geo_to_h3shape(wider), resolution)]


def _top(geometry: BaseGeometry) -> float:
    _min_lon, min_lat, _max_lon, max_lat = geometry.bounds
    return min(89.9, max(abs(float(min_lat)), abs(float(max_lat))))


def _vertex_cells(geometry: Polygon | MultiPolygon, resolution: int) -> set[str]:
    """The cell of every vertex (valid by construction: clipped to the world)."""
    coords = np.clip(shapely.get_coordinates(geometry), (-180.0, -90.0), (180.0, 90.0))
    return {str(h3.latlng_to_cell(lat, lon, resolution)) for lon, lat in coords.tolist()}


__all__ = ["MAX_FIX_ACCURACY_M", "covering_cells"]
