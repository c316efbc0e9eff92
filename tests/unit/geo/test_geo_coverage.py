"""Zone coverage (geo.coverage): never a missed cell, no needless ones, the antimeridian."""

from __future__ import annotations

import math
import random
from typing import Any

import h3
import pytest
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from geo.cells import EARTH_RADIUS_M, cell_center, cell_of, k_ring, ring
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.errors import InvalidCell
from geo.fences import validate_geometry
from tests.geodesy import destination

RES = 7
M_LAT = 180 / math.pi / EARTH_RADIUS_M  # degrees per metre north


def polygon_around(lat: float, lon: float, points: list[tuple[float, float]]) -> dict[str, Any]:
    """A GeoJSON Polygon of (east_m, north_m) offsets from (lat, lon)."""
    m_lon = M_LAT / math.cos(math.radians(lat))
    ring_ = [[lon + e * m_lon, lat + n * M_LAT] for e, n in points]
    return {"type": "Polygon", "coordinates": [[*ring_, ring_[0]]]}


def circle(lat: float, lon: float, radius_m: float) -> BaseGeometry:
    return validate_geometry({"type": "Point", "coordinates": [lon, lat]}, radius_m=radius_m)


#: A concave "L" of a few kilometres: its notch tests that cells come from the shape, not its box.
L_SHAPE = [(0, 0), (6000, 0), (6000, 1500), (1500, 1500), (1500, 7000), (0, 7000)]


def near_points(
    geometry: BaseGeometry, buffer_m: float, n: int, seed: int
) -> list[tuple[float, float]]:
    """Points within ``buffer_m`` of the zone: from points on its outline (and inside it),
    a walk of at most ``buffer_m`` in a random direction, mostly near the full length."""
    rng = random.Random(seed)
    outline = geometry.boundary
    points: list[tuple[float, float]] = []
    for _ in range(n):
        on = outline.interpolate(rng.random(), normalized=True)
        distance = buffer_m * (1 - rng.random() ** 3)  # crowded towards the edge of the buffer
        points.append(destination(on.y, on.x, distance, rng.uniform(0, 360)))
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    while len(points) < n * 1.2:
        lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
        if geometry.contains(shapely.Point(lon, lat)):
            points.append((lat, lon))
    return points


@pytest.mark.parametrize(
    ("lat", "lon", "res"),
    [(52.52, 13.405, 7), (-33.92, 18.42, 8), (0.3, 36.8, 7), (78.2, 15.6, 7), (-84.0, 40.0, 6)],
    ids=["berlin", "cape-town-r8", "equator", "svalbard", "near-south-pole"],
)
def test_every_point_near_the_zone_lies_in_a_covering_cell(
    lat: float, lon: float, res: int
) -> None:
    zone = validate_geometry(polygon_around(lat, lon, L_SHAPE))
    cells = set(covering_cells(zone, res, MAX_FIX_ACCURACY_M))
    missed = [
        p
        for p in near_points(zone, MAX_FIX_ACCURACY_M, 3000, seed=res)
        if cell_of(p[0], p[1], res) not in cells
    ]
    assert missed == []
    # And nothing far: every cell is within the buffer (plus one cell's reach) of the zone.
    for cell in cells:
        c_lat, c_lon = cell_center(cell)
        assert _distance_m(zone, c_lat, c_lon) < MAX_FIX_ACCURACY_M * 1.02 + 2 * _edge_m(res)


def test_the_notch_of_a_concave_zone_is_not_covered() -> None:
    lat, lon = 52.52, 13.405
    zone = validate_geometry(polygon_around(lat, lon, L_SHAPE))
    cells = covering_cells(zone, 9, 100.0)  # ~170 m cells, a 100 m buffer
    notch = destination(*destination(lat, lon, 4500, 0), 4000, 90)  # 3 km from either arm
    assert cell_of(*notch, 9) not in cells
    assert cell_of(*destination(lat, lon, 500, 45), 9) in cells


def test_a_small_zone_inside_one_cell() -> None:
    cell = cell_of(52.52, 13.405, RES)
    lat, lon = cell_center(cell)
    small = circle(lat, lon, 50)
    assert covering_cells(small, RES, 0) == (cell,)
    # ~1.2 km from the centre to any edge at resolution 7: 300 m more stays inside.
    assert covering_cells(small, RES, 300) == (cell,)
    # 1.5 km reaches every neighbour, and no cell beyond them.
    assert covering_cells(small, RES, 1500) == tuple(sorted(k_ring(cell, 1)))


def test_a_small_zone_near_an_edge_adds_the_neighbour_across_it() -> None:
    cell = cell_of(52.52, 13.405, RES)
    lat, lon = cell_center(cell)
    neighbour = ring(cell, 1)[0]
    n_lat, n_lon = cell_center(neighbour)
    # 40 % of the way to the neighbour's centre: ~0.25 km short of the shared edge.
    spot = (lat + 0.4 * (n_lat - lat), lon + 0.4 * (n_lon - lon))
    assert cell_of(*spot, RES) == cell
    cells = covering_cells(circle(*spot, 30), RES, 500)
    assert {cell, neighbour} <= set(cells) <= set(k_ring(cell, 1))
    opposite = cell_of(lat - (n_lat - lat), lon - (n_lon - lon), RES)
    assert opposite not in cells


def test_a_zone_at_the_antimeridian_covers_cells_past_it() -> None:
    lat = -17.0
    zone = validate_geometry(
        {
            "type": "Polygon",
            "coordinates": [
                [
                    [179.99, lat],
                    [179.998, lat],
                    [179.998, lat + 0.01],
                    [179.99, lat + 0.01],
                    [179.99, lat],
                ]
            ],
        }
    )
    cells = covering_cells(zone, RES, MAX_FIX_ACCURACY_M)
    assert cell_of(lat + 0.005, -179.997, RES) in cells  # ~0.5 km east, over the line
    assert cell_of(lat + 0.005, 179.995, RES) in cells
    assert all(-180 <= cell_center(c)[1] <= 180 for c in cells)


def test_holes_are_not_covered_but_their_rim_is() -> None:
    lat, lon = 10.0, 10.0
    outer = [(-15000, -15000), (15000, -15000), (15000, 15000), (-15000, 15000)]
    hole = [(-8000, -8000), (-8000, 8000), (8000, 8000), (8000, -8000)]
    shell = polygon_around(lat, lon, outer)["coordinates"][0]
    inner = polygon_around(lat, lon, hole)["coordinates"][0]
    zone = validate_geometry({"type": "Polygon", "coordinates": [shell, inner]})
    cells = covering_cells(zone, RES, MAX_FIX_ACCURACY_M)
    assert cell_of(lat, lon, RES) not in cells  # the middle of the 16 km hole
    assert cell_of(*destination(lat, lon, 7500, 0), RES) in cells  # 0.5 km from the rim


def test_deterministic_and_sorted_and_multipolygons() -> None:
    a = Polygon(polygon_around(1.0, 1.0, L_SHAPE)["coordinates"][0])
    b = Polygon(polygon_around(1.5, 1.5, L_SHAPE)["coordinates"][0])
    both = covering_cells(shapely.MultiPolygon([a, b]), RES, 200)
    assert list(both) == sorted(both)
    assert set(both) == set(covering_cells(a, RES, 200)) | set(covering_cells(b, RES, 200))
    assert covering_cells(a, RES, 200) == covering_cells(a, RES, 200)


def test_bad_arguments_are_refused() -> None:
    zone = circle(0.0, 0.0, 100)
    with pytest.raises(InvalidCell):
        covering_cells(zone, 16, 0)
    with pytest.raises(ValueError, match="buffer_m"):
        covering_cells(zone, RES, -1)
    with pytest.raises(ValueError, match="buffer_m"):
        covering_cells(zone, RES, math.inf)
    with pytest.raises(ValueError, match="empty"):
        covering_cells(Polygon(), RES, 0)


def _edge_m(res: int) -> float:
    return float(h3.average_hexagon_edge_length(res, unit="m"))


def _distance_m(zone: BaseGeometry, lat: float, lon: float) -> float:
    """Metres from (lat, lon) to the zone, on a projection around the point."""
    k_lat = 1 / M_LAT
    k_lon = k_lat * math.cos(math.radians(lat))
    local = shapely.transform(zone, lambda xy: (xy - (lon, lat)) * (k_lon, k_lat))
    return float(local.distance(shapely.Point(0, 0)))
