"""H3 helpers and haversine distance: pure, deterministic, checked against h3."""

from __future__ import annotations

import math
import pickle

import h3
import pytest

from geo.cells import (
    EARTH_RADIUS_M,
    cell_center,
    cell_of,
    check_point,
    haversine_m,
    is_valid_cell,
    is_valid_point,
    k_ring,
    resolution_of,
    ring,
)
from geo.errors import GeoError, InvalidCell, InvalidCoordinate

BERLIN = (52.5200, 13.4050)
PARIS = (48.8566, 2.3522)


def test_haversine_known_distances() -> None:
    one_degree = 2 * math.pi * EARTH_RADIUS_M / 360
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(one_degree, rel=1e-12)
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(one_degree, rel=1e-12)
    # Berlin to Paris is ~878 km on the sphere.
    assert haversine_m(*BERLIN, *PARIS) == pytest.approx(877_500, rel=2e-3)
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(90.0, 0.0, -90.0, 0.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_haversine_properties() -> None:
    points = [BERLIN, PARIS, (0.0, 0.0), (-33.87, 151.21), (89.9, -179.9), (-45.0, 179.99)]
    for a in points:
        assert haversine_m(*a, *a) == 0.0
        for b in points:
            d = haversine_m(*a, *b)
            assert d == haversine_m(*b, *a)
            assert 0.0 <= d <= math.pi * EARTH_RADIUS_M + 1e-6
            for c in points:  # triangle inequality
                assert d <= haversine_m(*a, *c) + haversine_m(*c, *b) + 1e-6


def test_haversine_agrees_with_h3() -> None:
    # h3 uses a slightly different mean radius; the shapes must agree.
    for a, b in [
        (BERLIN, PARIS),
        ((10.0, 10.0), (10.001, 10.001)),
        ((-60.0, -70.0), (60.0, 110.0)),
    ]:
        ours = haversine_m(*a, *b)
        theirs = h3.great_circle_distance(a, b, unit="m")
        assert ours == pytest.approx(theirs, rel=1e-6)


def test_antimeridian_is_short() -> None:
    assert haversine_m(0.0, 179.9, 0.0, -179.9) == pytest.approx(
        haversine_m(0.0, 0.0, 0.0, 0.2), rel=1e-9
    )


@pytest.mark.parametrize(
    ("lat", "lon"),
    [(90.0001, 0.0), (-91.0, 0.0), (0.0, 180.5), (float("nan"), 0.0), (0.0, float("-inf"))],
)
def test_bad_points_are_refused(lat: float, lon: float) -> None:
    assert is_valid_point(lat, lon) is False
    with pytest.raises(InvalidCoordinate):
        check_point(lat, lon)
    with pytest.raises(InvalidCoordinate):
        haversine_m(lat, lon, 0.0, 0.0)
    with pytest.raises(InvalidCoordinate):
        cell_of(lat, lon, 7)


def test_edges_of_the_valid_range_are_fine() -> None:
    for lat, lon in [(90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)]:
        assert is_valid_point(lat, lon)
        check_point(lat, lon)


def test_cell_of_matches_h3_and_contains_the_point() -> None:
    for res in (0, 5, 7, 9, 15):
        cell = cell_of(*BERLIN, res)
        assert cell == h3.latlng_to_cell(*BERLIN, res)
        assert isinstance(cell, str)
        assert resolution_of(cell) == res
        assert cell_of(*cell_center(cell), res) == cell
    with pytest.raises(InvalidCell):
        cell_of(*BERLIN, 16)
    with pytest.raises(InvalidCell):
        cell_of(*BERLIN, -1)


def test_cell_validation() -> None:
    assert is_valid_cell(cell_of(*PARIS, 8))
    for bad in ["", "zz", "8f2830828052d2", "not a cell"]:
        assert is_valid_cell(bad) is False
        with pytest.raises(InvalidCell):
            resolution_of(bad)


def test_k_ring_is_ordered_nearest_ring_first() -> None:
    cell = cell_of(*BERLIN, 7)
    assert k_ring(cell, 0) == (cell,)
    one = k_ring(cell, 1)
    assert len(one) == 7
    assert one[0] == cell
    assert list(one[1:]) == sorted(one[1:])
    three = k_ring(cell, 3)
    assert len(three) == 3 * 3 * 4 + 1
    assert len(set(three)) == len(three)
    assert set(three) == set(h3.grid_disk(cell, 3))
    distances = [h3.grid_distance(cell, c) for c in three]
    assert distances == sorted(distances)
    assert three[: len(one)] == one


def test_ring_is_the_hollow_ring() -> None:
    cell = cell_of(*PARIS, 6)
    assert ring(cell, 0) == (cell,)
    for k in (1, 2, 4):
        cells = ring(cell, k)
        assert len(cells) == 6 * k
        assert list(cells) == sorted(cells)
        assert {h3.grid_distance(cell, c) for c in cells} == {k}


def test_rings_next_to_a_pentagon() -> None:
    pentagon = sorted(h3.get_pentagons(5))[0]
    assert len(k_ring(pentagon, 1)) == 6
    assert len(ring(pentagon, 1)) == 5


def test_bad_ring_arguments() -> None:
    cell = cell_of(*BERLIN, 7)
    with pytest.raises(InvalidCell):
        k_ring(cell, -1)
    with pytest.raises(InvalidCell):
        ring(cell, -1)
    with pytest.raises(InvalidCell):
        k_ring("nope", 1)


def test_geo_errors_are_one_family_and_pickle() -> None:
    err = InvalidCoordinate(91.0, 0.0)
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert (back.latitude, back.longitude, str(back)) == (91.0, 0.0, str(err))
    assert isinstance(back, GeoError)
    assert isinstance(InvalidCell("x"), GeoError)
    assert GeoError.retriable is False
