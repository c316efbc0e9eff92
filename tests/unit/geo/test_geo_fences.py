"""Geofence decisions (geo.fences): hysteresis, order, baseline, dwell, holes, refusals."""

from __future__ import annotations

import math
import pickle
import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import shapely
from shapely.geometry import Point

from geo.cells import EARTH_RADIUS_M
from geo.fences import (
    NOWHERE,
    Crossing,
    FenceEvent,
    Fix,
    InvalidZone,
    Presence,
    Zone,
    _position,
    contains,
    track,
)

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
    presence = NOWHERE
    events: list[FenceEvent] = []
    for n, (east, north) in enumerate(points):
        lat, lon = at(east, north)
        fix = Fix(lat, lon, accuracy, T0 + timedelta(seconds=n * step_s))
        presence, crossings = track(presence, fix, [zone])
        events += [c.event for c in crossings]
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
    presence, _ = track(NOWHERE, Fix(*outside, 5, T0 + timedelta(seconds=10)), [ZONE])
    late = track(presence, Fix(*inside, 5, T0 + timedelta(seconds=5)), [ZONE])
    assert late == (presence, ())
    same_time = track(presence, Fix(*inside, 5, T0 + timedelta(seconds=10)), [ZONE])
    assert same_time == (presence, ())


def test_a_zone_created_around_someone_gives_a_baseline_not_an_enter() -> None:
    presence, crossings = track(NOWHERE, Fix(*at(0, 0), 5, T0), [ZONE])
    assert crossings == ()
    assert ZONE.id in presence.inside


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
        (  # GEOS itself refuses it (schemathesis found a 500 here)
            {"type": "MultiPolygon", "coordinates": [[[], [[0, 0], [0, 1], [1, 1], [0, 0]]]]},
            None,
            "shell is empty but holes are not",
        ),
    ],
)
def test_bad_zones_are_refused_with_a_clear_reason(
    geometry: dict[str, Any], radius: float | None, reason: str
) -> None:
    with pytest.raises(InvalidZone, match=reason):
        Zone.from_geojson(UUID(int=9), geometry, radius_m=radius)


# --- one subject across many zones (track) ------------------------------------------


def square_at(zone_id: int, east_m: float, half_m: float, since: datetime | None = None) -> Zone:
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
    ring = [
        [at(east_m + e * half_m, n * half_m)[1], at(east_m + e * half_m, n * half_m)[0]]
        for e, n in corners
    ]
    return Zone.from_geojson(
        UUID(int=zone_id), {"type": "Polygon", "coordinates": [ring]}, since=since
    )


def follow(
    path: list[tuple[float, float]],
    near: list[Zone],
    presence: Presence = NOWHERE,
    start: datetime = T0,
) -> tuple[Presence, list[tuple[int, FenceEvent]]]:
    events: list[tuple[int, FenceEvent]] = []
    for n, (east, north) in enumerate(path):
        presence, crossings = track(
            presence, Fix(*at(east, north), 5, start + timedelta(seconds=n)), near
        )
        events += [(c.zone_id.int, c.event) for c in crossings]
    return presence, events


def test_track_walks_through_overlapping_zones_in_order() -> None:
    a, b = square_at(1, 0, 300), square_at(2, 400, 300)  # overlap between 100 and 300 m east
    path = [(-1000 + 100 * i, 0) for i in range(25)]
    presence, events = follow(path, [a, b])
    assert events == [
        (1, FenceEvent.ENTER),
        (2, FenceEvent.ENTER),
        (1, FenceEvent.EXIT),
        (2, FenceEvent.EXIT),
    ]
    assert presence.inside == {}


def test_track_leaving_a_zones_neighbourhood_is_an_exit_unless_it_was_deleted() -> None:
    a = square_at(1, 0, 300)
    presence, events = follow([(-1000, 0), (0, 0)], [a])
    assert events == [(1, FenceEvent.ENTER)]
    far = Fix(*at(50_000, 0), 5, T0 + timedelta(minutes=5))
    _, crossings = track(presence, far, near=[])
    assert crossings == (Crossing(a.id, FenceEvent.EXIT),)
    dropped, crossings = track(presence, far, near=[], gone={a.id})
    assert (dropped.inside, crossings) == ({}, ())


def test_track_baseline_only_for_a_zone_newer_than_the_previous_fix() -> None:
    presence, _ = follow([(-5000, 0)], [])  # a first fix far from everything
    old = square_at(1, 0, 300, since=T0 - timedelta(days=1))
    new = square_at(2, 0, 300, since=T0 + timedelta(seconds=30))
    later = Fix(*at(0, 0), 5, T0 + timedelta(minutes=1))
    after, crossings = track(presence, later, [old, new])
    # Old zone: the subject was outside it before, so this is an enter; the new one
    # was made around the subject after its last fix: a baseline.
    assert crossings == (Crossing(old.id, FenceEvent.ENTER),)
    assert set(after.inside) == {old.id, new.id}


def test_track_ignores_a_whole_fix_older_than_the_last() -> None:
    a = square_at(1, 0, 300)
    presence, _ = follow([(-1000, 0)], [a], start=T0 + timedelta(seconds=10))
    late = Fix(*at(0, 0), 5, T0)
    assert track(presence, late, [a]) == (presence, ())


def test_track_dwell_is_told_once() -> None:
    a = Zone.from_geojson(UUID(int=1), square(300), dwell_s=5)
    _, events = follow([(-1000, 0)] + [(0, 0)] * 10, [a])
    assert events == [(1, FenceEvent.ENTER), (1, FenceEvent.DWELL)]


def test_contains_is_exact_and_takes_holes_out() -> None:
    donut = Zone.from_geojson(UUID(int=2), square(500, hole_half_m=200))
    assert contains(donut, *at(300, 0))
    assert not contains(donut, *at(0, 0))  # in the hole
    assert not contains(donut, *at(600, 0))
    assert contains(donut, *at(500, 0))  # on the edge


def _shapely_only_position(zone: Zone, fix: Fix) -> bool | None:
    """The decision from shapely alone (the reference the shortcuts must agree with)."""
    frame = zone._frame
    point = Point(*_local(zone, fix))
    if shapely.dwithin(frame.boundary, point, fix.accuracy_m):
        return None
    return bool(frame.shape.contains(point))


def _l_shape(size_m: float) -> dict[str, Any]:
    corners = [(0, 0), (size_m, 0), (size_m, size_m / 3), (size_m / 3, size_m / 3)]
    corners += [(size_m / 3, size_m), (0, size_m), (0, 0)]
    return {"type": "Polygon", "coordinates": [[[at(e, n)[1], at(e, n)[0]] for e, n in corners]]}


@pytest.mark.parametrize(
    ("geometry", "radius_m"),
    [
        ({"type": "Point", "coordinates": [LON0, LAT0]}, 300.0),  # a 64-gon
        (square(400), None),
        (square(400, hole_half_m=150), None),  # the origin is in the hole: no inner disk
        (_l_shape(600), None),  # concave; the frame's origin is outside it
    ],
)
def test_the_distance_shortcuts_agree_with_shapely_everywhere(
    geometry: dict[str, Any], radius_m: float | None
) -> None:
    zone = Zone.from_geojson(UUID(int=9), geometry, radius_m=radius_m)
    rng = random.Random(5)
    decided = {True: 0, False: 0, None: 0}
    for _ in range(4000):
        east, north = rng.uniform(-700, 700), rng.uniform(-700, 700)
        lat, lon = at(east, north)
        fix = Fix(lat, lon, rng.choice([0.0, 3.0, 10.0, 50.0, 250.0]), T0)
        expected = _shapely_only_position(zone, fix)
        assert _position(zone, fix) is expected, (east, north, fix.accuracy_m)
        assert contains(zone, lat, lon) == bool(zone._frame.shape.covers(Point(*_local(zone, fix))))
        decided[expected] += 1
    assert min(decided.values()) > 100  # inside, outside and straddling were all tried


def _local(zone: Zone, fix: Fix) -> tuple[float, float]:
    frame = zone._frame
    return (fix.longitude - frame.lon0) * frame.k_lon, (fix.latitude - frame.lat0) * frame.k_lat


def test_a_fix_survives_pickling() -> None:
    fix = Fix(52.5, 13.4, 12.5, T0)
    assert pickle.loads(pickle.dumps(fix)) == fix  # noqa: S301 (our own bytes)
