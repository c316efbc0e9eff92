"""H3 cells and great-circle distance: the pure helpers regions are built on.

Every function here is pure and deterministic: the same arguments give the
same answer on every machine, and collections come back in a documented
order (never in the hash order ``h3`` happens to return), so callers may use
them for placement and tests may compare them exactly.

Coordinates are WGS84 decimal degrees; distances are metres on a sphere of the
Earth's mean radius (IUGG, 6,371,008.8 m). The spherical model is off by at
most ~0.5 % from the ellipsoid, which is far below GPS accuracy for ranking
nearby responders.
"""

from __future__ import annotations

import functools
import math

import h3

from geo.errors import InvalidCell, InvalidCoordinate

#: Mean Earth radius in metres (IUGG), the sphere ``haversine_m`` works on.
EARTH_RADIUS_M = 6_371_008.8
MIN_RESOLUTION = 0
MAX_RESOLUTION = 15


def is_valid_point(latitude: float, longitude: float) -> bool:
    """True when both are finite and within [-90, 90] and [-180, 180] (NaN is
    within no range: every comparison with it is false)."""
    return -90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0


def check_point(latitude: float, longitude: float) -> None:
    """Raise :class:`InvalidCoordinate` unless :func:`is_valid_point` holds."""
    if not is_valid_point(latitude, longitude):
        raise InvalidCoordinate(latitude, longitude)


def _check_resolution(resolution: int) -> None:
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise InvalidCell(
            f"H3 resolution must be {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution!r}"
        )


def is_valid_cell(cell: str) -> bool:
    """True when ``cell`` is a valid H3 cell index in its string form."""
    try:
        return bool(h3.is_valid_cell(cell))
    except (TypeError, ValueError):
        return False


def _check_cell(cell: str) -> None:
    if not is_valid_cell(cell):
        raise InvalidCell(f"not an H3 cell: {cell!r}")


def cell_of(latitude: float, longitude: float, resolution: int) -> str:
    """The H3 cell (string index) that contains the point at ``resolution``.

    Raises :class:`InvalidCoordinate` or :class:`InvalidCell` (bad resolution).
    """
    check_point(latitude, longitude)
    _check_resolution(resolution)
    return str(h3.latlng_to_cell(latitude, longitude, resolution))


def resolution_of(cell: str) -> int:
    """The resolution of a valid cell; :class:`InvalidCell` otherwise."""
    _check_cell(cell)
    return int(h3.get_resolution(cell))


def cell_center(cell: str) -> tuple[float, float]:
    """The (latitude, longitude) of the cell's centre."""
    _check_cell(cell)
    latitude, longitude = h3.cell_to_latlng(cell)
    return float(latitude), float(longitude)


def _disk(cell: str, k: int) -> set[str]:
    return {str(c) for c in h3.grid_disk(cell, k)}


@functools.lru_cache(maxsize=4096)
def ring(cell: str, k: int) -> tuple[str, ...]:
    """Cells at grid distance exactly ``k`` from ``cell``, sorted by index.

    ``ring(cell, 0)`` is ``(cell,)``. Computed as the difference of two disks,
    which, unlike H3's "unsafe" ring walk, is correct next to pentagons.
    Remembered for recent cells: every search around a place asks the same rings.
    """
    _check_cell(cell)
    if k < 0:
        raise InvalidCell(f"ring size must be >= 0, got {k!r}")
    if k == 0:
        return (cell,)
    return tuple(sorted(_disk(cell, k) - _disk(cell, k - 1)))


@functools.lru_cache(maxsize=4096)
def k_ring(cell: str, k: int) -> tuple[str, ...]:
    """The filled disk of cells within grid distance ``k`` of ``cell``.

    Ordered nearest ring first: ``cell`` itself, then ring 1 sorted by index,
    then ring 2, ... so a caller searching outwards can stop early. The result
    has ``3k(k+1)+1`` cells (fewer next to a pentagon). Remembered like ``ring``.
    """
    _check_cell(cell)
    if k < 0:
        raise InvalidCell(f"ring size must be >= 0, got {k!r}")
    ordered: list[str] = [cell]
    inner = {cell}
    for distance in range(1, k + 1):
        outer = _disk(cell, distance)
        ordered.extend(sorted(outer - inner))
        inner = outer
    return tuple(ordered)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two points (haversine formula).

    Symmetric, zero for identical points, never negative, and at most half the
    Earth's circumference. Raises :class:`InvalidCoordinate` for bad input.
    """
    check_point(lat1, lon1)
    check_point(lat2, lon2)
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    d_phi = phi2 - phi1
    d_lambda = math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    # Rounding can push ``a`` a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, max(0.0, a))))
