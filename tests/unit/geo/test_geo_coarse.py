"""Coarse positions (geo.coarse): what an offered agent is told of where an alert is."""

from __future__ import annotations

import math
import random

import pytest

from geo.cells import haversine_m
from geo.coarse import (
    COARSE_PRECISION_M,
    DISTANCE_STEP_M,
    coarse_distance_m,
    coarse_point,
)
from geo.errors import InvalidCoordinate


def points(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    # Uniform on the sphere, so the polar and equatorial cells are both met.
    return [(math.degrees(math.asin(rng.uniform(-1, 1))), rng.uniform(-180, 180)) for _ in range(n)]


def test_the_coarse_point_is_within_the_published_precision_of_the_truth() -> None:
    assert COARSE_PRECISION_M <= 600
    for lat, lon in points(20_000, seed=1):
        c_lat, c_lon = coarse_point(lat, lon)
        assert haversine_m(lat, lon, c_lat, c_lon) <= COARSE_PRECISION_M


def test_the_coarse_point_is_not_the_exact_point() -> None:
    offsets = [haversine_m(lat, lon, *coarse_point(lat, lon)) for lat, lon in points(2_000, 2)]
    # Uniformly spread in a ~500 m cell: almost never within a few metres of its centre.
    assert sum(d < 10 for d in offsets) <= len(offsets) // 100
    assert sorted(offsets)[len(offsets) // 2] > 100


def test_the_same_point_always_gives_the_same_coarse_point() -> None:
    """No noise: repeated offers cannot be averaged back to the truth."""
    for lat, lon in points(200, seed=3):
        assert coarse_point(lat, lon) == coarse_point(lat, lon)


def test_nearby_points_share_one_coarse_point() -> None:
    lat, lon = 52.4986, 13.4030
    shared = {coarse_point(lat + d, lon + d) for d in (0.0, 1e-6, 2e-6, 1e-5)}
    assert len(shared) == 1


def test_a_bad_point_is_refused() -> None:
    with pytest.raises(InvalidCoordinate):
        coarse_point(91.0, 0.0)


@pytest.mark.parametrize(
    ("exact", "told"),
    [(None, None), (0.0, 0.0), (49.9, 0.0), (50.0, 100.0), (250.0, 300.0), (420.5, 400.0)],
)
def test_distances_are_told_to_the_step(exact: float | None, told: float | None) -> None:
    assert DISTANCE_STEP_M == 100
    assert coarse_distance_m(exact) == told
