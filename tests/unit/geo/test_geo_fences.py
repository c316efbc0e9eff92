"""Geofence decisions (geo.fences): hysteresis, order, baseline, dwell, holes, refusals."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from geo.cells import EARTH_RADIUS_M
from geo.fences import FenceEvent, Fix, InvalidZone, SubjectInZone, Zone, decide

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LAT0, LON0 = 52.52, 13.405
M_LAT = 180 / math.pi / EARTH_RADIUS_M  # degrees per metre north
M_LON = M_LAT / math.cos(math.radians(LAT0))


def at(east_m: float, north_m: float) -> tuple[float, float]:
    return LAT0 + north_m * M_LAT, LON0 + east_m * M_LON


def square(half_m: float, hole_half_m: float | None = None) -> dict[str, Any]:
    def ring(h: float) -> list[list[float]]:
        corners = [(-h, -h), (h, -h), (h, h), (-h, h), (-h, -h)]
        return [[at(e, n)[1], at(e, n)[0]] for e, n in corners]

    rings = [ring(half_m)] + ([ring(hole_half_m)] if hole_half_m else [])
    return {"type": "Polygon", "coordinates": rings}


ZONE = Zone.from_geojson(UUID(int=1), square(500), dwell_s=60)


def walk(
    zone: Zone, points: list[tuple[float, float]], accuracy: float = 10, step_s: float = 10
) -> list[FenceEvent]:
    state: SubjectInZone | None = None
    events: list[FenceEvent] = []
    for n, (east, north) in enumerate(points):
        lat, lon = at(east, north)
        state, new = decide(
            zone, state, Fix(lat, lon, accuracy, T0 + timedelta(seconds=n * step_s))
        )
        events += new
    return events


def test_a_straight_path_through_the_zone_gives_one_enter_and_one_exit() -> None:
    path = [(-1000 + 50 * i, 0) for i in range(41)]  # west to east through the square
    assert walk(ZONE, path, step_s=1) == [FenceEvent.ENTER, FenceEvent.EXIT]


def test_boundary_jitter_within_the_accuracy_gives_no_events() -> None:
    jitter = [(-1000, 0)] + [(500 + (8 if i % 2 else -8), 0) for i in range(30)]
    assert walk(ZONE, jitter, accuracy=15, step_s=1) == []


def test_dwell_fires_once_per_stay() -> None:
    stay = [(-1000, 0)] + [(0, 0)] * 20 + [(-1000, 0)] + [(0, 0)] * 10
    events = walk(ZONE, stay, step_s=10)
    assert events == [
        FenceEvent.ENTER,
        FenceEvent.DWELL,
        FenceEvent.EXIT,
        FenceEvent.ENTER,
        FenceEvent.DWELL,
    ]


def test_fixes_older_than_the_last_one_are_ignored() -> None:
    outside, inside = at(-1000, 0), at(0, 0)
    state, _ = decide(ZONE, None, Fix(*outside, 5, T0 + timedelta(seconds=10)))
    late, events = decide(ZONE, state, Fix(*inside, 5, T0 + timedelta(seconds=5)))
    assert (late, events) == (state, ())
    same_time, events = decide(ZONE, state, Fix(*inside, 5, T0 + timedelta(seconds=10)))
    assert (same_time, events) == (state, ())


def test_a_zone_created_around_someone_gives_a_baseline_not_an_enter() -> None:
    state, events = decide(ZONE, None, Fix(*at(0, 0), 5, T0))
    assert events == ()
    assert state is not None
    assert state.inside is True


def test_a_polygon_with_a_hole_treats_the_hole_as_outside() -> None:
    donut = Zone.from_geojson(UUID(int=2), square(500, hole_half_m=200))
    path = [(-1000 + 50 * i, 0) for i in range(41)]
    assert walk(donut, path, step_s=1) == [
        FenceEvent.ENTER,
        FenceEvent.EXIT,
        FenceEvent.ENTER,
        FenceEvent.EXIT,
    ]


def test_a_circle_zone_from_a_point_and_radius() -> None:
    lat, lon = at(0, 0)
    circle = Zone.from_geojson(
        UUID(int=3), {"type": "Point", "coordinates": [lon, lat]}, radius_m=300
    )
    assert walk(circle, [(-1000, 0), (0, 0), (250, 0), (400, 0)]) == [
        FenceEvent.ENTER,
        FenceEvent.EXIT,
    ]


@pytest.mark.parametrize(
    ("geometry", "radius", "reason"),
    [
        (
            {
                "type": "Polygon",
                "coordinates": [[[179, 0], [-179, 0], [-179, 1], [179, 1], [179, 0]]],
            },
            None,
            "antimeridian",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 86], [10, 86], [10, 87], [0, 87], [0, 86]]]},
            None,
            "pole",
        ),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]},
            None,
            "Self-intersection",
        ),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, None, "closed"),
        ({"type": "Point", "coordinates": [13.4, 52.5]}, None, "radius_m"),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, None, "Polygon"),
        (
            {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5], [0, 5], [0, 0]]]},
            None,
            "larger",
        ),
    ],
)
def test_bad_zones_are_refused_with_a_clear_reason(
    geometry: dict[str, Any], radius: float | None, reason: str
) -> None:
    with pytest.raises(InvalidZone, match=reason):
        Zone.from_geojson(UUID(int=9), geometry, radius_m=radius)
