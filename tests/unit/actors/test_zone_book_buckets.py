"""actors.zone_book: the bucketed ``near_point`` gives exactly the vector test's answer,
and ``near_fix`` (one grid over every zone, no H3 cell) gives every zone whose box
the fix's reach touches: ``near_point``'s zones and only certainly-outside others.

``CellZones.touching`` answers most fixes from a small bucket of a fine
lat/lon grid; the reference is the numpy test over every zone of the cell
that ``ZoneBook.near_point`` made before, copied. Random boxes and fixes
(seeded) at mid and high latitudes, south and west of zero, at the equator
and near the antimeridian; fixes on bucket edges and grazing zone bounds;
accuracies below, at and above the buckets' reach, and odd ones. No
PostgreSQL: the book is fed records directly.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import numpy as np
import pytest
from shapely.geometry import box

from actors.subject import NearZone
from actors.zone_book import GRID_MAX_BUCKETS, ZoneBook, ZoneFeed
from actors.zone_index import (
    _BUCKET_DEG,
    _BUCKET_REACH_M,
    _DEG_SLACK,
    _M_PER_DEG,
    _MAX_BUCKETS,
    _ROW,
    _TILES_FROM,
    CellZones,
    _row_and_column,
)
from actors.zone_rules import ZoneKind
from geo.cells import cell_of
from geo.fences import Fix, Zone, _position
from persistence.stores.zones import ZoneRecord

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _reference_near_point(
    listed: CellZones, latitude: float, longitude: float, accuracy_m: float
) -> tuple[NearZone, ...]:
    """``ZoneBook.near_point`` as it was: one vectorised test over the cell's zones."""
    reach_lat = accuracy_m / _M_PER_DEG + _DEG_SLACK
    reach_lon = reach_lat / max(math.cos(math.radians(latitude)), 1e-6)
    b = listed.bounds
    hit = np.flatnonzero(
        (b[:, 0] <= longitude + reach_lon)
        & (b[:, 2] >= longitude - reach_lon)
        & (b[:, 1] <= latitude + reach_lat)
        & (b[:, 3] >= latitude - reach_lat)
    )
    zones = listed.zones
    return tuple(zones[i] for i in hit)


def _boxes(rng: random.Random, lat0: float, lon0: float, count: int) -> tuple[NearZone, ...]:
    """Boxes of 1 m to 2 km within ~3 km of (lat0, lon0), listed in id order."""
    zones = []
    for n in range(count):
        m_lat = 1 / _M_PER_DEG
        m_lon = m_lat / math.cos(math.radians(lat0))
        lat = lat0 + rng.uniform(-3000, 3000) * m_lat
        lon = lon0 + rng.uniform(-3000, 3000) * m_lon
        w = rng.choice([1.0, 30.0, rng.uniform(10, 2000)]) * m_lon
        h = rng.choice([1.0, 30.0, rng.uniform(10, 2000)]) * m_lat
        zone = Zone(UUID(int=n + 1), box(lon, lat, lon + w, lat + h))
        zones.append(NearZone(zone=zone, kind="safe"))
    return tuple(zones)


def _circles(rng: random.Random, lat0: float, lon0: float, count: int) -> tuple[NearZone, ...]:
    """Circles of 5 m to 1 km within ~3 km of (lat0, lon0), after ``_boxes``' ids."""
    m_lat = 1 / _M_PER_DEG
    m_lon = m_lat / math.cos(math.radians(lat0))
    zones = []
    for n in range(count):
        lat = lat0 + rng.uniform(-3000, 3000) * m_lat
        lon = lon0 + rng.uniform(-3000, 3000) * m_lon
        radius = rng.choice([5.0, rng.uniform(20, 400), rng.uniform(400, 1000)])
        geometry = {"type": "Point", "coordinates": [lon, lat]}
        zone = Zone.from_geojson(UUID(int=10_000 + n), geometry, radius_m=radius)
        zones.append(NearZone(zone=zone, kind="danger"))
    return tuple(zones)


def _accuracy(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.02:
        return rng.choice([math.nan, math.inf, -math.inf, -20.0, 0.0, _BUCKET_REACH_M])
    if roll < 0.05:
        return math.nextafter(_BUCKET_REACH_M, rng.choice([0.0, math.inf]))
    if roll < 0.8:
        return rng.uniform(0, _BUCKET_REACH_M)
    return rng.uniform(_BUCKET_REACH_M, 2000)


def _fix(rng: random.Random, listed: CellZones, lat0: float, lon0: float) -> tuple[float, float]:
    roll = rng.random()
    m_lat = 1 / _M_PER_DEG
    m_lon = m_lat / math.cos(math.radians(lat0))
    lat = lat0 + rng.uniform(-3500, 3500) * m_lat
    lon = lon0 + rng.uniform(-3500, 3500) * m_lon
    if roll < 0.2:  # on a bucket's edge, or an ulp either side
        lat = round(lat / _BUCKET_DEG) * _BUCKET_DEG
        lat = rng.choice([lat, math.nextafter(lat, -90.0), math.nextafter(lat, 90.0)])
    elif roll < 0.4:
        lon = round(lon / _BUCKET_DEG) * _BUCKET_DEG
        lon = rng.choice([lon, math.nextafter(lon, -180.0), math.nextafter(lon, 180.0)])
    elif roll < 0.6:  # grazing a zone's bounds from outside
        min_lon, min_lat, max_lon, max_lat = rng.choice(listed.bounds.tolist())
        reach_lat = rng.uniform(0, _BUCKET_REACH_M) / _M_PER_DEG + _DEG_SLACK
        lat = rng.choice([min_lat - reach_lat, max_lat + reach_lat, (min_lat + max_lat) / 2])
        reach_lon = reach_lat / max(math.cos(math.radians(lat)), 1e-6)
        lon = rng.choice([min_lon - reach_lon, max_lon + reach_lon, (min_lon + max_lon) / 2])
    return max(-90.0, min(90.0, lat)), max(-180.0, min(180.0, lon))


PLACES = [
    (52.52, 13.405),
    (70.0, 25.0),
    (-33.87, -70.6),
    (0.001, -0.001),  # buckets either side of the equator and the meridian
    (84.9, 179.95),
    (-84.9, -179.95),
    (89.9, 0.0),  # past where zones may be, but a bucket's two edges differ most
]


@pytest.mark.parametrize("count", [150, _TILES_FROM + 344])  # the second: in tiles
@pytest.mark.parametrize(("lat0", "lon0"), PLACES)
def test_touching_gives_the_vector_tests_answer(lat0: float, lon0: float, count: int) -> None:
    rng = random.Random(int(lat0 * 1000) ^ int(lon0 * 1000))
    listed = CellZones(_boxes(rng, lat0, lon0, count))
    hits = 0
    for _ in range(6000):
        lat, lon = _fix(rng, listed, lat0, lon0)
        accuracy = _accuracy(rng)
        expected = _reference_near_point(listed, lat, lon, accuracy)
        got = listed.touching(lat, lon, accuracy)
        assert [n.zone.id for n in got] == [n.zone.id for n in expected], (lat, lon, accuracy)
        assert all(a is b for a, b in zip(got, expected, strict=True))
        hits += len(expected)
    assert hits > 6000  # most fixes touch some zone
    assert 20 < len(listed._buckets) <= _MAX_BUCKETS
    assert (len(listed._tiles) > 1) == (count > _TILES_FROM)


def test_bounds_exactly_on_the_reach_box_edges_count_as_touching() -> None:
    rng = random.Random(9)
    for _ in range(300):
        lat, lon = rng.uniform(-80, 80), rng.uniform(-170, 170)
        accuracy = rng.choice([0.0, rng.uniform(0, _BUCKET_REACH_M), _BUCKET_REACH_M])
        reach_lat = accuracy / _M_PER_DEG + _DEG_SLACK
        reach_lon = reach_lat / max(math.cos(math.radians(lat)), 1e-6)
        west, east = lon - reach_lon, lon + reach_lon
        south, north = lat - reach_lat, lat + reach_lat
        edges = [
            box(east, lat, east + 0.01, lat + 0.01),
            box(west - 0.01, lat, west, lat + 0.01),
            box(lon, north, lon + 0.01, north + 0.01),
            box(lon, south - 0.01, lon + 0.01, south),
        ]
        listed = CellZones(
            tuple(NearZone(Zone(UUID(int=n), g), "safe") for n, g in enumerate(edges, 1))
        )
        assert listed.touching(lat, lon, accuracy) == listed.zones
        assert _reference_near_point(listed, lat, lon, accuracy) == listed.zones


def test_a_bucket_lists_only_the_zones_near_it() -> None:
    rng = random.Random(3)
    listed = CellZones(_boxes(rng, 52.52, 13.405, 150))
    for _ in range(200):
        lat, lon = _fix(rng, listed, 52.52, 13.405)
        listed.touching(lat, lon, 10.0)
    sizes = [len(rows) for rows, _indexes in listed._buckets.values()]
    assert sum(sizes) / len(sizes) < len(listed.zones) / 4


def test_a_cell_keeps_at_most_max_buckets_and_still_answers_exactly() -> None:
    rng = random.Random(5)
    listed = CellZones(_boxes(rng, 10.0, 10.0, 5))
    for _ in range(_MAX_BUCKETS + 500):  # fixes all over: far more buckets than allowed
        lat, lon = rng.uniform(0, 20), rng.uniform(0, 20)
        accuracy = rng.uniform(0, _BUCKET_REACH_M)
        got = listed.touching(lat, lon, accuracy)
        assert got == _reference_near_point(listed, lat, lon, accuracy)
    assert len(listed._buckets) == _MAX_BUCKETS


@pytest.mark.parametrize(("lat0", "lon0"), PLACES[:4])  # circles stay off the antimeridian
def test_a_batch_gets_each_fixs_bucketed_zones_and_its_position_in_each(
    lat0: float, lon0: float
) -> None:
    """``near_many`` (a shard's batch, as arrays) against ``bucketed`` and
    ``_position`` fix by fix: the same zones, the same objects, the same answers,
    and None exactly where ``bucketed`` cannot answer (less accurate fixes,
    points off the map, a full grid)."""
    rng = random.Random(int(lat0 * 977) ^ int(lon0 * 13))
    listed = CellZones(_boxes(rng, lat0, lon0, 300) + _circles(rng, lat0, lon0, 200))
    positions: Counter[bool | None] = Counter()
    unanswered = 0
    for size in (1, 7, 250, 1000, 2000):
        fixes = []
        for _ in range(size):
            lat, lon = _fix(rng, listed, lat0, lon0)
            if rng.random() < 0.01:
                lat = rng.choice([91.0, -90.5, math.nan])
            fixes.append(Fix(lat, lon, _accuracy(rng), T0))
        got = listed.near_many(fixes)
        assert len(got) == len(fixes)
        for fix, answer in zip(fixes, got, strict=True):
            expected = listed.bucketed(fix.latitude, fix.longitude, fix.accuracy_m)
            if expected is None:
                assert answer is None, fix
                unanswered += 1
                continue
            assert answer is not None, fix
            near, where = answer
            assert len(near) == len(expected)
            assert all(a is b for a, b in zip(near, expected, strict=True)), fix
            assert where == tuple(_position(n.zone, fix) for n in near), fix
            positions.update(where)
    assert min(positions.values()) > 100, positions  # inside, outside and straddling
    assert unanswered > 50


def test_a_batch_past_max_buckets_leaves_the_new_buckets_fixes_unanswered() -> None:
    rng = random.Random(8)
    listed = CellZones(_boxes(rng, 10.0, 10.0, 5), max_buckets=10)
    fixes = [Fix(rng.uniform(0, 20), rng.uniform(0, 20), 5.0, T0) for _ in range(40)]
    got = listed.near_many(fixes)
    assert len(listed._buckets) == 10
    assert sum(answer is not None for answer in got) == 10
    assert [answer is None for answer in got] == [
        listed.bucketed(f.latitude, f.longitude, f.accuracy_m) is None for f in fixes
    ]


def _record(zone_id: int, geometry: dict[str, Any], revision: int, **changes: Any) -> ZoneRecord:
    values: dict[str, Any] = {
        "id": UUID(int=zone_id),
        "name": f"zone {zone_id}",
        "kind": ZoneKind.SAFE,
        "geometry": geometry,
        "radius_m": None,
        "rules": {},
        "dwell_s": None,
        "active": True,
        "cells": (),  # the book covers it itself
        "revision": revision,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(changes)
    return ZoneRecord(**values)


def _square(lon: float, lat: float, size: float) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def test_the_books_buckets_follow_zone_changes() -> None:
    book = ZoneBook(
        cast(ZoneFeed, None),  # never used: changes are applied directly
        resolution=7,
        owns=lambda _cell: True,
        tell=lambda _kind, _entity, _message: None,
    )
    cell = cell_of(52.501, 13.401, 7)
    book._apply([_record(1, _square(13.40, 52.50, 0.002), 1)])
    assert [n.zone.id.int for n in book.near_point(cell, 52.501, 13.401, 5.0)] == [1]
    assert book.near_point(cell, 52.501, 13.406, 5.0) == ()  # ~270 m east of it

    # A zone added where a bucket was already built: the cell's cache is dropped.
    book._apply([_record(2, _square(13.405, 52.50, 0.002), 2)])
    assert [n.zone.id.int for n in book.near_point(cell, 52.501, 13.406, 5.0)] == [2]
    assert [n.zone.id.int for n in book.near_point(cell, 52.501, 13.4045, 500.0)] == [1, 2]

    book._apply([_record(1, _square(13.40, 52.50, 0.002), 3, deleted_at=T0)])
    assert book.near_point(cell, 52.501, 13.401, 5.0) == ()
    assert book.near(cell) == book.near_point(cell, 52.501, 13.406, 5.0)


def _book() -> ZoneBook:
    return ZoneBook(
        cast(ZoneFeed, None),  # never used: changes are applied directly
        resolution=7,
        owns=lambda _cell: True,
        tell=lambda _kind, _entity, _message: None,
    )


def _circle(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


@pytest.mark.parametrize(("lat0", "lon0"), [(52.52, 13.405), (-33.87, -70.6), (0.0005, 179.99)])
def test_near_fix_gives_near_points_zones_and_only_certainly_outside_others(
    lat0: float, lon0: float
) -> None:
    """Against every zone's bounds (numpy) and against the fix's cell's answer."""
    rng = random.Random(int(lat0 * 100) ^ int(lon0 * 100))
    book = _book()
    records = []
    for n in range(1, 301):
        lat = lat0 + rng.uniform(-0.03, 0.03)
        lon = min(180.0, lon0 + rng.uniform(-0.03, 0.03))
        if n % 3:
            size = rng.choice([0.00001, 0.0005, rng.uniform(0.0001, 0.01)])
            records.append(_record(n, _square(min(lon, 180.0 - size), lat, size), n))
        else:
            records.append(_record(n, _circle(lon, lat), n, radius_m=rng.uniform(5, 800)))
    book._apply(records)
    live = [book.get(r.id) for r in sorted(records, key=lambda r: r.id)]
    every = CellZones(
        tuple(NearZone(zone=z.zone, kind=z.kind.value, name=z.name) for z in live if z)
    )
    answered = 0
    for _ in range(4000):
        lat = lat0 + rng.uniform(-0.035, 0.035)
        lon = min(180.0, lon0 + rng.uniform(-0.035, 0.035))
        accuracy = _accuracy(rng)
        got = book.near_fix(lat, lon, accuracy)
        if not (accuracy <= _BUCKET_REACH_M):  # NaN too: the cell's answer is wanted
            assert got is None
            continue
        assert got is not None
        answered += 1
        assert got == _reference_near_point(every, lat, lon, accuracy)
        ids = [n.zone.id for n in got]
        assert ids == sorted(ids)
        cell = cell_of(lat, lon, 7)
        by_cell = {n.zone.id for n in book.near_point(cell, lat, lon, accuracy)}
        assert by_cell <= set(ids), (lat, lon, accuracy)
        fix = Fix(lat, lon, max(accuracy, 0.0), T0)
        for near in got:
            if near.zone.id not in by_cell:
                assert _position(near.zone, fix) is False, (near.zone.id, lat, lon, accuracy)
    assert answered > 3000


def test_near_fix_lists_a_zone_whose_box_it_touches_far_from_the_zone() -> None:
    """A circle of 10 km: the corner of its box is ~4 km from it, so the cell there
    does not list it (more than MAX_FIX_ACCURACY_M away) and the grid does."""
    book = _book()
    book._apply([_record(1, _circle(13.405, 52.52), 1, radius_m=10_000.0)])
    zone = book.get(UUID(int=1))
    assert zone is not None
    min_lon, min_lat, _max_lon, _max_lat = zone.zone.geometry.bounds
    lat, lon = min_lat + 0.0001, min_lon + 0.0001  # just inside the box's south-west corner
    got = book.near_fix(lat, lon, 5.0)
    assert got is not None
    assert [n.zone.id.int for n in got] == [1]
    assert book.near_point(cell_of(lat, lon, 7), lat, lon, 5.0) == ()
    assert _position(zone.zone, Fix(lat, lon, 5.0, T0)) is False


def test_near_fix_refuses_what_only_a_cell_can_answer() -> None:
    book = _book()
    book._apply([_record(1, _square(13.40, 52.50, 0.002), 1)])
    assert book.near_fix(52.501, 13.401, 5.0) is not None
    for lat, lon, accuracy in [
        (52.501, 13.401, _BUCKET_REACH_M + 0.1),  # less accurate than the grid is built for
        (52.501, 13.401, math.nan),
        (91.0, 13.401, 5.0),  # off the map: the cell path rejects it
        (52.501, math.inf, 5.0),
        (math.nan, 13.401, 5.0),
    ]:
        assert book.near_fix(lat, lon, accuracy) is None


def test_near_fix_follows_zone_changes() -> None:
    book = _book()
    book._apply([_record(1, _square(13.40, 52.50, 0.002), 1)])
    assert [n.zone.id.int for n in book.near_fix(52.501, 13.401, 5.0) or ()] == [1]
    assert book.near_fix(52.501, 13.406, 5.0) == ()
    book._apply([_record(2, _square(13.405, 52.50, 0.002), 2)])  # where a bucket was built
    assert [n.zone.id.int for n in book.near_fix(52.501, 13.406, 5.0) or ()] == [2]
    book._apply([_record(1, _square(13.40, 52.50, 0.002), 3, deleted_at=T0)])
    assert book.near_fix(52.501, 13.401, 5.0) == ()


def test_near_fix_keeps_at_most_grid_max_buckets_then_leaves_new_ones_to_the_cell() -> None:
    book = _book()
    book._apply([_record(1, _square(13.40, 52.50, 0.002), 1)])
    assert book.near_fix(52.501, 13.401, 5.0) is not None
    grid = book._everywhere
    assert grid is not None
    for n in range(GRID_MAX_BUCKETS - 1):  # fill it with empty buckets elsewhere
        grid._buckets[(float(n), -1.0)] = ((), np.array([], np.intp))
    assert book.near_fix(10.0, 10.0, 5.0) is None  # a new bucket: full
    assert [n.zone.id.int for n in book.near_fix(52.501, 13.401, 5.0) or ()] == [1]  # kept
    fix = Fix(52.501, 13.401, 5.0, T0)
    elsewhere = Fix(10.0, 10.0, 5.0, T0)
    found = book.near_fixes([fix, elsewhere])
    assert found[1] is None
    assert found[0] is not None
    assert [n.zone.id.int for n in found[0][0]] == [1]


def test_a_buckets_key_gives_back_its_row_and_column_over_the_whole_map() -> None:
    rows = {round(-90 / _BUCKET_DEG), -1, 0, 1, round(90 / _BUCKET_DEG)}
    columns = {round(-180 / _BUCKET_DEG), -1, 0, 1, round(180 / _BUCKET_DEG)}
    keys = {row * _ROW + column for row in rows for column in columns}
    assert len(keys) == len(rows) * len(columns)  # no two buckets share a key
    for row in rows:
        for column in columns:
            assert _row_and_column(row * _ROW + column) == (row, column)
