"""geo.fences.track and _position against the straightforward code they replaced.

``track`` decides every zone inline, and ``_position`` answers most fixes
near a boundary without shapely; both must give exactly what the old code
gave. The references below are that code, copied: ``track`` applying
``decide`` zone by zone, and ``_position`` with only the three original
distance shortcuts before shapely. Random walks (seeded) over circles,
squares, a square with a hole, a concave L and U, a diamond, a multipolygon,
with fixes bunched along the boundaries, times on a whole-second grid (so
equal times, out-of-order fixes and dwell limits reached exactly all occur),
random presences with and without a last fix, and deleted zones.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np
import pytest
import shapely
from shapely.geometry import Point

from geo.cells import EARTH_RADIUS_M, check_point
from geo.errors import GeoError
from geo.fences import (
    NOWHERE,
    Crossing,
    FenceEvent,
    Fix,
    Frames,
    Inside,
    Presence,
    Zone,
    _cheap_positions,
    _position,
    changes_nothing,
    positions,
    track,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


# --- the replaced code, as it was -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubjectInZone:
    """Where a subject is known to be relative to one zone (the old per-zone state)."""

    inside: bool
    since: datetime
    last_fix_at: datetime
    dwelled: bool = False


def _reference_position(zone: Zone, fix: Fix) -> bool | None:
    frame = zone._frame
    x = (fix.longitude - frame.lon0) * frame.k_lon
    y = (fix.latitude - frame.lat0) * frame.k_lat
    accuracy = max(0.0, fix.accuracy_m)
    min_x, min_y, max_x, max_y = frame.bounds
    if x < min_x - accuracy or x > max_x + accuracy or y < min_y - accuracy or y > max_y + accuracy:
        return False
    d = math.hypot(x, y)
    if d - accuracy > frame.r_out:
        return False
    if d + accuracy < frame.r_in:
        return True
    point = Point(x, y)
    if shapely.dwithin(frame.boundary, point, accuracy):
        return None
    return bool(frame.shape.contains(point))


def _reference_decide(
    zone: Zone, state: SubjectInZone | None, fix: Fix
) -> tuple[SubjectInZone | None, tuple[FenceEvent, ...]]:
    check_point(fix.latitude, fix.longitude)
    if state is not None and fix.recorded_at <= state.last_fix_at:
        return state, ()
    where = _reference_position(zone, fix)
    if state is None:
        if where is None:
            return None, ()
        return SubjectInZone(where, fix.recorded_at, fix.recorded_at), ()
    seen = replace(state, last_fix_at=fix.recorded_at)
    if where is None:
        return seen, ()
    if where != state.inside:
        event = FenceEvent.ENTER if where else FenceEvent.EXIT
        return SubjectInZone(where, fix.recorded_at, fix.recorded_at), (event,)
    if (
        where
        and zone.dwell_s is not None
        and not state.dwelled
        and fix.recorded_at - state.since >= timedelta(seconds=zone.dwell_s)
    ):
        return replace(seen, dwelled=True), (FenceEvent.DWELL,)
    return seen, ()


def _reference_track(
    presence: Presence,
    fix: Fix,
    near: Sequence[Zone],
    gone: Collection[UUID] = (),
) -> tuple[Presence, tuple[Crossing, ...]]:
    check_point(fix.latitude, fix.longitude)
    last = presence.last_fix_at
    if last is not None and fix.recorded_at <= last:
        return presence, ()
    inside: dict[UUID, Inside] = {}
    crossings: list[Crossing] = []
    for zone in near:
        held = presence.inside.get(zone.id)
        prior: SubjectInZone | None
        if held is not None:
            prior = SubjectInZone(True, held.since, last or held.since, held.dwelled)
        elif last is None or (zone.since is not None and zone.since > last):
            prior = None
        else:
            prior = SubjectInZone(False, last, last)
        state, events = _reference_decide(zone, prior, fix)
        if state is not None and state.inside:
            inside[zone.id] = Inside(state.since, state.dwelled)
        crossings += (Crossing(zone.id, event) for event in events)
    near_ids = {zone.id for zone in near}
    for zone_id in presence.inside:
        if zone_id not in near_ids and zone_id not in gone:
            crossings.append(Crossing(zone_id, FenceEvent.EXIT))
    return Presence(inside, fix.recorded_at), tuple(crossings)


# --- zones and fixes ------------------------------------------------------------------


class Place:
    """Metres east/north of an origin, as lon/lat."""

    def __init__(self, lat0: float, lon0: float) -> None:
        self.lat0, self.lon0 = lat0, lon0
        self.m_lat = 180 / math.pi / EARTH_RADIUS_M
        self.m_lon = self.m_lat / math.cos(math.radians(lat0))

    def lonlat(self, east_m: float, north_m: float) -> list[float]:
        return [self.lon0 + east_m * self.m_lon, self.lat0 + north_m * self.m_lat]

    def ring(self, corners: Sequence[tuple[float, float]]) -> list[list[float]]:
        ring = [self.lonlat(e, n) for e, n in corners]
        return [*ring, ring[0]]

    def square(self, east_m: float, north_m: float, half_m: float) -> list[list[float]]:
        e, n, h = east_m, north_m, half_m
        return self.ring([(e - h, n - h), (e + h, n - h), (e + h, n + h), (e - h, n + h)])


def _geometries(place: Place) -> list[tuple[dict[str, Any], float | None]]:
    """Overlapping shapes of every kind, within ~600 m of the origin."""
    p = place
    l_shape = [(0, 0), (600, 0), (600, 200), (200, 200), (200, 600), (0, 600)]
    diamond = [(0, -250), (250, 0), (0, 250), (-250, 0)]
    # Open to the north, wide: fixes around the frame's origin (in the gap)
    # may reach past the box without touching the zone.
    u_shape = [(-300, -300), (300, -300), (300, 300), (200, 300), (200, -200), (-200, -200)]
    u_shape += [(-200, 300), (-300, 300)]
    return [
        ({"type": "Point", "coordinates": p.lonlat(0, 0)}, 300.0),  # a 64-gon
        ({"type": "Point", "coordinates": p.lonlat(250, 100)}, 120.0),
        ({"type": "Point", "coordinates": p.lonlat(-150, -200)}, 15.0),  # smaller than most fixes
        ({"type": "Polygon", "coordinates": [p.square(100, -50, 250)]}, None),  # fills its box
        ({"type": "Polygon", "coordinates": [p.square(-300, 300, 40)]}, None),
        (
            {"type": "Polygon", "coordinates": [p.square(0, 0, 400), p.square(0, 0, 150)]},
            None,
        ),  # the origin is in the hole
        ({"type": "Polygon", "coordinates": [p.ring(l_shape)]}, None),  # origin outside it
        ({"type": "Polygon", "coordinates": [p.ring(diamond)]}, None),
        ({"type": "Polygon", "coordinates": [p.ring(u_shape)]}, None),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [[p.square(-400, -300, 60)], [p.square(-250, -300, 60)]],
            },
            None,
        ),
    ]


def _zones(rng: random.Random, place: Place) -> list[Zone]:
    zones = []
    for n, (geometry, radius_m) in enumerate(_geometries(place), start=1):
        dwell_s = rng.choice([None, None, 0, 5, 20])
        since = rng.choice([None, None, T0 - timedelta(days=1), T0 + _s(rng.randrange(0, 200))])
        zones.append(
            Zone.from_geojson(
                UUID(int=n), geometry, radius_m=radius_m, dwell_s=dwell_s, since=since
            )
        )
    return zones


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _accuracy(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.02:
        return rng.choice([math.inf, math.nan, -5.0, 1e-12, 5e6])
    return rng.choice(
        [0.0, 1.0, 5.0, 10.0, 30.0, 80.0, 250.0, rng.uniform(0, 60), rng.uniform(0, 400)]
    )


def _near_boundary(rng: random.Random, zone: Zone, accuracy: float) -> tuple[float, float]:
    """A lat/lon on, or up to a few accuracies off, the zone's boundary (or a vertex)."""
    boundary = zone.geometry.boundary
    if rng.random() < 0.1:
        lon, lat = rng.choice(shapely.get_coordinates(boundary).tolist())
        return lat, lon
    on = boundary.interpolate(rng.random(), normalized=True)
    if rng.random() < 0.05:
        return on.y, on.x
    spread = 3 * (accuracy if math.isfinite(accuracy) and 0 < accuracy < 1000 else 10.0) + 5
    off = rng.uniform(-spread, spread)
    angle = rng.uniform(0, 2 * math.pi)
    m_lat = 180 / math.pi / EARTH_RADIUS_M
    m_lon = m_lat / math.cos(math.radians(on.y))
    return on.y + off * math.sin(angle) * m_lat, on.x + off * math.cos(angle) * m_lon


def _fix_point(
    rng: random.Random, place: Place, zones: Sequence[Zone], accuracy: float
) -> tuple[float, float]:
    roll = rng.random()
    if roll < 0.7:
        return _near_boundary(rng, rng.choice(zones), accuracy)
    if roll < 0.85:  # around a zone's middle (the origin of its frame)
        min_lon, min_lat, max_lon, max_lat = rng.choice(zones).geometry.bounds
        return rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon)
    lon, lat = place.lonlat(rng.uniform(-800, 800), rng.uniform(-800, 800))
    return lat, lon


def _random_presence(rng: random.Random, zones: Sequence[Zone], around: datetime) -> Presence:
    """A presence as a subject may have stored it: any zones, times near ``around``."""
    held = rng.sample(list(zones), rng.randrange(0, 4))
    inside = {z.id: Inside(around + _s(rng.randrange(-30, 3)), rng.random() < 0.3) for z in held}
    last = rng.choice([None, around + _s(rng.randrange(-20, 2))])
    return Presence(inside, last)


# --- equivalence ----------------------------------------------------------------------


PLACES = [Place(52.52, 13.405), Place(-33.87, -70.6), Place(69.65, 18.96)]


@pytest.mark.parametrize("place", PLACES, ids=["berlin", "santiago", "tromso"])
def test_position_gives_the_old_answer_near_every_boundary(place: Place) -> None:
    rng = random.Random(7)
    zones = _zones(rng, place)
    decided: Counter[bool | None] = Counter()
    for _ in range(12_000):
        zone = rng.choice(zones)
        accuracy = _accuracy(rng)
        if rng.random() < 0.8:
            lat, lon = _near_boundary(rng, zone, accuracy)
        else:
            lat, lon = _fix_point(rng, place, [zone], accuracy)
        fix = Fix(lat, lon, accuracy, T0)
        expected = _reference_position(zone, fix)
        assert _position(zone, fix) is expected, (zone.id.int, lat, lon, accuracy)
        decided[expected] += 1
    assert min(decided.values()) > 1000  # inside, outside and straddling all tried


@pytest.mark.parametrize("place", PLACES, ids=["berlin", "santiago", "tromso"])
def test_positions_over_a_batch_give_position_s_answer_for_every_pair(place: Place) -> None:
    """``positions`` (numpy over a shard's batch) against ``_position`` pair by
    pair, on the same boundary-hugging fixes and odd accuracies; its first pass
    answers the pairs clear of a boundary itself, each answer ``_position``'s."""
    rng = random.Random(11)
    zones = _zones(rng, place)
    frames = Frames(zones)
    pairs: list[tuple[int, Fix]] = []
    for _ in range(12_000):
        index = rng.randrange(len(zones))
        accuracy = _accuracy(rng)
        if rng.random() < 0.8:
            lat, lon = _near_boundary(rng, zones[index], accuracy)
        else:
            lat, lon = _fix_point(rng, place, [zones[index]], accuracy)
        pairs.append((index, Fix(lat, lon, accuracy, T0)))
    zone = np.array([i for i, _fix in pairs], np.intp)
    lat = np.array([f.latitude for _i, f in pairs])
    lon = np.array([f.longitude for _i, f in pairs])
    acc = np.array([f.accuracy_m for _i, f in pairs])
    expected = [_position(zones[i], fix) for i, fix in pairs]
    assert positions(frames, zone, lat, lon, acc) == expected
    cheap = _cheap_positions(frames, zone, lat, lon, acc).tolist()
    cheap_answers: dict[int, bool | None] = {0: False, 1: True, 2: None}
    for code, answer, (i, fix) in zip(cheap, expected, pairs, strict=True):
        if code != 3:  # 3: left to ``_position``
            assert cheap_answers[code] is answer, (zones[i].id.int, fix)
    decided = Counter(cheap)
    assert min(decided[0], decided[1], decided[2], decided[3]) > 500, decided
    assert decided[3] < len(pairs) / 2, decided
    assert positions(frames, zone[:0], lat[:0], lon[:0], acc[:0]) == []


def _where(near: Sequence[Zone], fix: Fix) -> list[bool | None]:
    """The fix's position in each zone of ``near`` as a shard's batch finds it."""
    count = len(near)
    return positions(
        Frames(near),
        np.arange(count, dtype=np.intp),
        np.full(count, fix.latitude),
        np.full(count, fix.longitude),
        np.full(count, fix.accuracy_m),
    )


def _walk(
    seed: int, step: Callable[[random.Random, Sequence[Zone], Presence, Fix], Presence]
) -> None:
    """Random walks (120 of 25 fixes) among one place's zones; ``step`` checks a fix
    against the presence before it and gives the presence after it."""
    rng = random.Random(seed)
    place = PLACES[seed % len(PLACES)]
    zones = _zones(rng, place)
    for _ in range(120):
        presence = NOWHERE if rng.random() < 0.5 else _random_presence(rng, zones, T0)
        now = T0 + _s(rng.randrange(0, 100))
        for _ in range(25):
            roll = rng.random()
            if roll < 0.1:
                now -= _s(rng.randrange(0, 5))  # out of order, or the same time
            elif roll < 0.15:
                presence = _random_presence(rng, zones, now)
            else:
                now += _s(rng.randrange(1, 8))
            accuracy = _accuracy(rng)
            lat, lon = _fix_point(rng, place, zones, accuracy)
            presence = step(rng, zones, presence, Fix(lat, lon, accuracy, now))


@pytest.mark.parametrize("seed", range(4))
def test_track_gives_the_old_presence_and_crossings_on_random_walks(seed: int) -> None:
    tally: Counter[str] = Counter()

    def step(rng: random.Random, zones: Sequence[Zone], presence: Presence, fix: Fix) -> Presence:
        near = [z for z in zones if rng.random() < 0.85]
        rng.shuffle(near)
        if near and rng.random() < 0.05:
            near.append(rng.choice(near))  # listed twice
        gone = {z.id for z in zones if rng.random() < 0.1}

        expected = _reference_track(presence, fix, near, gone)
        got = track(presence, fix, near, gone)
        assert got == expected, (seed, presence, fix, [z.id.int for z in near], gone)
        if rng.random() < 0.3:  # as a shard's batch gives it, positions found
            assert track(presence, fix, near, gone, _where(near, fix)) == expected
        after = got[0]
        for zone_id, stay in after.inside.items():
            if presence.inside.get(zone_id) == stay:
                assert stay is presence.inside[zone_id]  # unchanged: the same object
        tally.update(c.event.value for c in got[1])
        tally["ignored"] += got == (presence, ())
        tally["baseline"] += len(set(after.inside) - set(presence.inside)) - sum(
            c.event is FenceEvent.ENTER for c in got[1]
        )
        return after

    _walk(seed, step)
    assert min(tally.values()) > 20, tally


@pytest.mark.parametrize("seed", range(4))
def test_changes_nothing_says_yes_exactly_when_track_keeps_the_zones_with_no_event(
    seed: int,
) -> None:
    """``changes_nothing`` (the hot path's question) against ``track`` itself, on the
    same random walks; ``near`` lists each zone once, as the zone book's do."""
    answers: Counter[bool | str] = Counter()

    def step(rng: random.Random, zones: Sequence[Zone], presence: Presence, fix: Fix) -> Presence:
        if rng.random() < 0.01:
            fix = replace(fix, latitude=rng.choice([math.nan, 91.0, -math.inf]))
        near = [z for z in zones if rng.random() < 0.85]
        rng.shuffle(near)
        try:
            after, crossings = track(presence, fix, near)
        except GeoError:
            assert not changes_nothing(presence, fix, near)
            answers["invalid"] += 1
            return presence
        same = after.inside == presence.inside and not crossings
        assert changes_nothing(presence, fix, near) is same, (seed, presence, fix)
        assert changes_nothing(presence, fix, near, _where(near, fix)) is same
        answers[same] += 1
        return after

    _walk(100 + seed, step)
    assert min(answers.values()) > 5, answers
