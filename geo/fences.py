"""Geofence decisions: zones, and enter / exit / dwell from a subject's fixes. Pure.

A :class:`Zone` is a validated polygon (holes allowed), multipolygon, or a
circle (a point and a radius). :func:`decide` takes a subject's state in one
zone and a new fix and returns the new state and the events, by these rules:

* **Hysteresis from accuracy.** A fix counts as inside only if its whole
  accuracy circle is inside the zone, as outside only if the whole circle is
  outside; a fix whose circle straddles the boundary changes nothing. So GPS
  jitter along a boundary, within the fix's accuracy, gives no events.
* **Order.** A fix not newer (``recorded_at``) than the last one seen for
  the subject in the zone is ignored.
* **Baseline.** The first certain fix of a subject in a zone sets where it
  is without an event: a zone created around someone does not "enter" them.
* **Dwell.** Inside for at least the zone's ``dwell_s`` (by fix times) gives
  one ``dwell`` event per stay. (When no fix comes, the subject entity's
  timer tells it: ``actors.subject``.)

Geometry is measured in metres on an equirectangular projection around each
zone's centre, computed once per zone (a fix is projected with two
multiplications). The projection is affine in longitude and latitude, so
inside/outside is exactly the planar answer PostGIS gives; distances near a
fix are off by the change of ``cos(latitude)`` across the zone, under 1 %
of the margin for the largest zone allowed here (a 10 m margin is measured
within 10 cm). Zones that cross the antimeridian or come near a pole are
refused with :class:`InvalidZone` rather than measured wrongly. Most fixes
are decided by a few distances (to the zone's box, to disks around its
centre that hold it or that it holds, and for a rectangle to its box);
shapely decides only what those leave open, so near the boundary as well,
the answer is shapely's.

:func:`track` gives one subject's answer across every zone near a fix,
keeping only the zones the subject is inside (:class:`Presence`). It is
:func:`decide` zone by zone, applied inline (one check of the fix, no
per-zone state objects): in a zone it is inside, a straddling fix keeps
the stay, an outside one is an exit, an inside one may be the stay's dwell;
a zone it is not inside is one it is outside of (inside is an enter),
unless it has no previous fix or the zone is newer than it, when the
baseline rule applies instead. Leaving the neighbourhood of a zone it was
inside is an exit.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, Final
from uuid import UUID

import numpy as np
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import Point, Polygon, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from geo.cells import EARTH_RADIUS_M, check_point, is_valid_point
from geo.errors import GeoError
from geo.fence_events import FenceEvent as FenceEvent
from geo.records import by_position, record

MAX_VERTICES: Final = 10_000
MAX_AREA_KM2: Final = 10_000.0
MAX_RADIUS_M: Final = 50_000.0
#: Zones must stay within these latitudes (the local projection degrades at the poles).
MAX_ABS_LATITUDE: Final = 85.0
#: A zone wider than this in longitude is taken to cross the antimeridian.
MAX_LONGITUDE_SPAN: Final = 180.0
#: A distance shortcut stands in for shapely only when it holds by this
#: fraction of the distances involved; rounding in either is ~1e-16 of them.
_MARGIN: Final = 1e-9


class InvalidZone(GeoError, ValueError):
    """A zone geometry that is malformed, too large, or one this module refuses."""


# A plain dataclass, not a @record: compiled (panic_alert.compiled), a @record
# class's classmethod with a lambda crashed mypyc 2.4, and a frozen dataclass's
# pickle cannot be loaded (zones cross processes in tests). Private: made by ``of``.
@dataclass(slots=True)
class _Frame:
    """A zone in metres east/north of its centre, prepared for repeated tests."""

    lat0: float
    lon0: float
    k_lat: float
    k_lon: float
    shape: BaseGeometry
    boundary: BaseGeometry
    bounds: tuple[float, float, float, float]
    #: Every point of the zone is within ``r_out`` of the frame's origin.
    r_out: float
    #: The disk of radius ``r_in`` around the origin lies inside the zone (0: none).
    r_in: float
    #: The zone is its bounding box (an axis-aligned rectangle): covers it, same boundary.
    filled: bool

    @classmethod
    def of(cls, geometry: BaseGeometry) -> _Frame:
        min_lon, min_lat, max_lon, max_lat = geometry.bounds
        lat0, lon0 = (min_lat + max_lat) / 2, (min_lon + max_lon) / 2
        k_lat = math.pi / 180 * EARTH_RADIUS_M
        k_lon = k_lat * math.cos(math.radians(lat0))
        local = shapely.transform(geometry, lambda xy: (xy - (lon0, lat0)) * (k_lon, k_lat))
        boundary = local.boundary
        shapely.prepare(local)
        shapely.prepare(boundary)
        bounds = local.bounds
        # Two disks around the origin, so that most fixes are decided by one
        # distance instead of shapely calls (~5 µs each, most of a shard's
        # time per fix): the vertices' farthest distance bounds the zone from
        # outside; the boundary's nearest distance, when the origin is inside,
        # bounds it from inside (a disk that meets no boundary and holds an
        # inside point is inside, holes included). A 64-gon circle zone
        # leaves only a 0.1 % band of its radius to shapely.
        r_out = float(np.hypot(*shapely.get_coordinates(local).T).max())
        origin = Point(0.0, 0.0)
        r_in = float(shapely.distance(boundary, origin)) if local.contains(origin) else 0.0
        # A zone that is its bounding box (a rectangle drawn in lon/lat) is
        # decided by the box alone, corners included.
        frame_box = box(*bounds)
        filled = bool(local.covers(frame_box) and boundary.equals(frame_box.boundary))
        return cls(lat0, lon0, k_lat, k_lon, local, boundary, tuple(bounds), r_out, r_in, filled)


@dataclass(slots=True, init=False, unsafe_hash=True)
class Zone:
    """A zone's geometry, for the decisions (a hot record, ``geo.records``)."""

    id: Final[UUID]
    geometry: Final[BaseGeometry]  # Polygon or MultiPolygon, in lon/lat degrees
    dwell_s: Final[float | None]
    #: Since when the zone has had this shape (None: always). A subject whose
    #: previous fix is older than that gets a baseline in it, not an event.
    since: Final[datetime | None]
    #: Made from ``geometry`` (not compared, not given: ``replace`` makes it again).
    _frame: _Frame = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        id: UUID,
        geometry: BaseGeometry,
        dwell_s: float | None = None,
        since: datetime | None = None,
    ) -> None:
        self.id = id
        self.geometry = geometry
        self.dwell_s = dwell_s
        self.since = since
        self._frame = _Frame.of(geometry)

    def __reduce__(self) -> tuple[type[Zone], tuple[Any, ...]]:
        return Zone, by_position(self)

    @classmethod
    def from_geojson(
        cls,
        zone_id: UUID,
        geometry: Mapping[str, Any],
        *,
        radius_m: float | None = None,
        dwell_s: float | None = None,
        since: datetime | None = None,
    ) -> Zone:
        """A validated zone from a GeoJSON Polygon, MultiPolygon, or Point with ``radius_m``."""
        return cls(zone_id, validate_geometry(geometry, radius_m=radius_m), dwell_s, since)


@dataclass(slots=True, init=False, unsafe_hash=True)
class Fix:
    """A location fix (a hot record, ``geo.records``)."""

    latitude: Final[float]
    longitude: Final[float]
    accuracy_m: Final[float]
    recorded_at: Final[datetime]

    def __init__(
        self, latitude: float, longitude: float, accuracy_m: float, recorded_at: datetime
    ) -> None:
        self.latitude = latitude
        self.longitude = longitude
        self.accuracy_m = accuracy_m
        self.recorded_at = recorded_at

    def __reduce__(self) -> tuple[type[Fix], tuple[float, float, float, datetime]]:
        # Fixes cross Ray to the shards thousands a second: unpickled by
        # position they cost less than half of a slotted dataclass's default
        # state restore (which looks up its fields for every object).
        return Fix, (self.latitude, self.longitude, self.accuracy_m, self.recorded_at)


def validate_geometry(
    geometry: Mapping[str, Any], *, radius_m: float | None = None
) -> BaseGeometry:
    """The zone's shape in lon/lat degrees; :class:`InvalidZone` with the reason otherwise."""
    kind = geometry.get("type") if isinstance(geometry, Mapping) else None
    if kind == "Point":
        if radius_m is None or not 0 < radius_m <= MAX_RADIUS_M:
            raise InvalidZone(f"a Point zone needs radius_m in (0, {MAX_RADIUS_M:.0f}] metres")
        lon, lat = _coordinates(geometry)
        _check_latitude(lat)
        shaped: BaseGeometry = _circle(lat, lon, radius_m)
    elif kind in ("Polygon", "MultiPolygon"):
        try:
            shaped = shape(geometry)
        except (ValueError, TypeError, AttributeError, IndexError, ShapelyError) as exc:
            # ShapelyError: GEOS refuses some shapes outright (an empty shell with holes).
            raise InvalidZone(f"malformed {kind}: {exc}") from exc
        rings = _rings(geometry)
        if any(len(r) < 4 or r[0] != r[-1] for r in rings):
            raise InvalidZone(
                "every ring must be closed (first point repeated last) with 3+ points"
            )
        if sum(len(r) for r in rings) > MAX_VERTICES:
            raise InvalidZone(f"more than {MAX_VERTICES} vertices")
        if not shaped.is_valid:
            raise InvalidZone(f"invalid geometry: {explain_validity(shaped)}")
    else:
        raise InvalidZone("geometry must be a GeoJSON Polygon, MultiPolygon or Point")
    if shaped.is_empty:
        raise InvalidZone("empty geometry")
    min_lon, min_lat, max_lon, max_lat = shaped.bounds
    for lat, lon in ((min_lat, min_lon), (max_lat, max_lon)):
        try:
            check_point(lat, lon)
        except GeoError as exc:
            raise InvalidZone(f"coordinates out of range: {exc}") from exc
    _check_latitude(min_lat)
    _check_latitude(max_lat)
    if max_lon - min_lon >= MAX_LONGITUDE_SPAN:
        raise InvalidZone(
            "zones crossing the antimeridian are not supported; split it into two zones"
        )
    if _area_km2(shaped) > MAX_AREA_KM2:
        raise InvalidZone(f"zone larger than {MAX_AREA_KM2:.0f} km²")
    return shaped


def _position(zone: Zone, fix: Fix) -> bool | None:
    """True inside, False outside, None when the accuracy circle straddles the boundary.

    Exactly shapely's answer (``dwithin`` the boundary, else ``contains``);
    the shortcuts before it only answer where shapely's is certain by a
    margin far above float rounding (``_MARGIN``), and leave the rest to it.
    :func:`positions` makes the same tests over many pairs at once.
    """
    return _position_at(zone, fix.latitude, fix.longitude, fix.accuracy_m)


def _position_at(zone: Zone, latitude: float, longitude: float, accuracy_m: float) -> bool | None:
    frame = zone._frame
    x = (longitude - frame.lon0) * frame.k_lon
    y = (latitude - frame.lat0) * frame.k_lat
    accuracy = max(0.0, accuracy_m)
    min_x, min_y, max_x, max_y = frame.bounds
    if x < min_x - accuracy or x > max_x + accuracy or y < min_y - accuracy or y > max_y + accuracy:
        return False  # the whole circle is off the zone's bounding box
    d = math.hypot(x, y)
    if d - accuracy > frame.r_out:
        return False  # the whole circle is beyond the zone's farthest point
    if d + accuracy < frame.r_in:
        return True  # the whole circle is in the disk the zone holds
    # Near the boundary. The circle straddles it if it holds both a point
    # certainly outside (beyond the box or the outer disk) and one certainly
    # inside (in the inner disk, or in the box of a zone that fills it).
    slack = (frame.r_out + accuracy) * _MARGIN
    edge = min(x - min_x, max_x - x, y - min_y, max_y - y)  # < 0: off the box
    off_box = math.hypot(max(min_x - x, x - max_x, 0.0), max(min_y - y, y - max_y, 0.0))
    if off_box > accuracy + slack:
        return False  # the whole circle is off the box, near one of its corners
    if frame.filled and edge > accuracy + slack:
        return True  # the whole circle is inside the box the zone fills
    reaches_out = edge < accuracy - slack or d + accuracy > frame.r_out + slack
    reaches_in = (frame.r_in > 0.0 and d - accuracy < frame.r_in - slack) or (
        frame.filled and off_box < accuracy - slack
    )
    if reaches_out and reaches_in:
        return None
    point = shapely.points((x, y))
    if shapely.dwithin(frame.boundary, point, accuracy):
        return None
    return bool(frame.shape.contains(point))


#: :func:`_cheap_positions`' answers: outside, inside, straddling, and left to
#: ``_position`` (shapely's to give, or a distance too close to call).
_OUTSIDE, _INSIDE, _STRADDLING, _UNDECIDED = 0, 1, 2, 3
_ANSWERS: Final[tuple[bool | None, ...]] = (False, True, None, None)


class Frames:
    """A listing of zones with their frames as columns, for :func:`positions`."""

    __slots__ = (
        "filled",
        "k_lat",
        "k_lon",
        "lat0",
        "lon0",
        "max_x",
        "max_y",
        "min_x",
        "min_y",
        "r_in",
        "r_out",
        "zones",
    )

    def __init__(self, zones: Sequence[Zone]) -> None:
        self.zones = tuple(zones)
        frames = [zone._frame for zone in zones]

        def column(values: list[float]) -> np.ndarray[Any, np.dtype[np.float64]]:
            return np.array(values, dtype=np.float64)

        self.lat0 = column([f.lat0 for f in frames])
        self.lon0 = column([f.lon0 for f in frames])
        self.k_lat = column([f.k_lat for f in frames])
        self.k_lon = column([f.k_lon for f in frames])
        self.min_x = column([f.bounds[0] for f in frames])
        self.min_y = column([f.bounds[1] for f in frames])
        self.max_x = column([f.bounds[2] for f in frames])
        self.max_y = column([f.bounds[3] for f in frames])
        self.r_out = column([f.r_out for f in frames])
        self.r_in = column([f.r_in for f in frames])
        self.filled = np.array([f.filled for f in frames], dtype=bool)


_Floats = np.ndarray[Any, np.dtype[np.float64]]


def positions(
    frames: Frames,
    zone: np.ndarray[Any, np.dtype[np.intp]],
    latitude: _Floats,
    longitude: _Floats,
    accuracy_m: _Floats,
) -> list[bool | None]:
    """``_position`` of many (fix, zone) pairs at once, each answer exactly its
    own: pair ``i`` is the fix at ``latitude[i]``, ``longitude[i]`` with
    ``accuracy_m[i]``, in zone ``zone[i]`` (an index into ``frames.zones``).

    A shard tracks fixes in batches, and most of a fix's zones are decided by
    ``_position``'s tests before shapely (the box, the outer and inner disks, a
    filled box, a circle reaching both sides): :func:`_cheap_positions` makes
    them over the whole batch as arrays, and only the pairs they leave go to
    ``_position`` one by one."""
    codes = _cheap_positions(frames, zone, latitude, longitude, accuracy_m)
    answers = [_ANSWERS[c] for c in codes.tolist()]
    for i in np.flatnonzero(codes == _UNDECIDED).tolist():
        answers[i] = _position_at(
            frames.zones[int(zone[i])],
            float(latitude[i]),
            float(longitude[i]),
            float(accuracy_m[i]),
        )
    return answers


def _cheap_positions(
    frames: Frames,
    zone: np.ndarray[Any, np.dtype[np.intp]],
    latitude: _Floats,
    longitude: _Floats,
    accuracy_m: _Floats,
) -> np.ndarray[Any, np.dtype[np.int8]]:
    """:func:`positions`' first pass: 0 (outside), 1 (inside) or 2 (straddling)
    exactly as ``_position`` answers, or 3 where it must be asked.

    The same tests as ``_position``'s before shapely, in its order, with the same
    arithmetic: those made of subtractions, multiplications and comparisons
    round the same way in numpy as in Python, so they answer alike. A test on
    a distance (``hypot``, whose last bit numpy's and Python's may round
    apart) answers only where it holds by ``_MARGIN`` of the distances
    involved; a pair it cannot call is undecided, and so is every pair the
    tests leave (shapely's answer)."""
    count = len(zone)
    code = np.full(count, _UNDECIDED, dtype=np.int8)
    # An infinite or NaN accuracy makes NaNs here (a test on one answers
    # nothing: the pair is left to ``_position``), not a warning per batch.
    with np.errstate(invalid="ignore", over="ignore"):
        x = (longitude - frames.lon0[zone]) * frames.k_lon[zone]
        y = (latitude - frames.lat0[zone]) * frames.k_lat[zone]
        accuracy = np.maximum(0.0, accuracy_m)
        min_x, min_y = frames.min_x[zone], frames.min_y[zone]
        max_x, max_y = frames.max_x[zone], frames.max_y[zone]
        r_out, r_in = frames.r_out[zone], frames.r_in[zone]
        # Each step answers the pairs no earlier step answered, as ``_position``
        # returns at its first answer; ``open_`` is what is left for the next.
        open_ = np.ones(count, dtype=bool)

        def answer(holds: np.ndarray[Any, np.dtype[np.bool_]], value: int) -> None:
            code[open_ & holds] = value
            open_[holds] = False

        def unsure(close: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
            open_[close] = False  # left undecided

        answer(
            (x < min_x - accuracy)
            | (x > max_x + accuracy)
            | (y < min_y - accuracy)
            | (y > max_y + accuracy),
            _OUTSIDE,
        )
        d = np.hypot(x, y)
        tolerance = (d + r_out + accuracy) * _MARGIN
        beyond = d - accuracy - r_out
        unsure(np.abs(beyond) <= tolerance)
        answer(beyond > tolerance, _OUTSIDE)
        within = r_in - (d + accuracy)
        unsure(np.abs(within) <= tolerance)
        answer(within > tolerance, _INSIDE)
        slack = (r_out + accuracy) * _MARGIN
        edge = np.minimum(np.minimum(x - min_x, max_x - x), np.minimum(y - min_y, max_y - y))
        off_box = np.hypot(
            np.maximum(np.maximum(min_x - x, x - max_x), 0.0),
            np.maximum(np.maximum(min_y - y, y - max_y), 0.0),
        )
        past = off_box - (accuracy + slack)
        unsure(np.abs(past) <= tolerance)
        answer(past > tolerance, _OUTSIDE)
        filled = frames.filled[zone]
        answer(filled & (edge > accuracy + slack), _INSIDE)
        # The circle holds a point certainly outside and one certainly inside.
        out_reach = (d + accuracy) - (r_out + slack)
        in_reach = (r_in - slack) - (d - accuracy)
        box_reach = (accuracy - slack) - off_box
        has_in = r_in > 0.0
        unsure(
            (np.abs(out_reach) <= tolerance)
            | (has_in & (np.abs(in_reach) <= tolerance))
            | (filled & (np.abs(box_reach) <= tolerance))
        )
        reaches_out = (edge < accuracy - slack) | (out_reach > tolerance)
        reaches_in = (has_in & (in_reach > tolerance)) | (filled & (box_reach > tolerance))
        answer(reaches_out & reaches_in, _STRADDLING)

    return code


def contains(zone: Zone, latitude: float, longitude: float) -> bool:
    """Whether the point is in the zone (its boundary included); no accuracy involved."""
    frame = zone._frame
    x = (longitude - frame.lon0) * frame.k_lon
    y = (latitude - frame.lat0) * frame.k_lat
    min_x, min_y, max_x, max_y = frame.bounds
    if x < min_x or x > max_x or y < min_y or y > max_y:
        return False
    d = math.hypot(x, y)
    if d > frame.r_out:
        return False
    if d < frame.r_in:
        return True
    return bool(frame.shape.covers(Point(x, y)))


@dataclass(slots=True, init=False, unsafe_hash=True)
class Inside:
    """A subject inside one zone: since when, and whether its dwell was told (a hot
    record, ``geo.records``)."""

    since: Final[datetime]
    dwelled: Final[bool]

    def __init__(self, since: datetime, dwelled: bool = False) -> None:
        self.since = since
        self.dwelled = dwelled

    def __reduce__(self) -> tuple[type[Inside], tuple[Any, ...]]:
        return Inside, by_position(self)


@dataclass(slots=True, init=False, unsafe_hash=True)
class Presence:
    """One subject's geofence state: the zones it is inside, and its newest fix (a
    hot record, ``geo.records``)."""

    inside: Final[Mapping[UUID, Inside]]
    last_fix_at: Final[datetime | None]

    def __init__(self, inside: Mapping[UUID, Inside], last_fix_at: datetime | None = None) -> None:
        self.inside = inside
        self.last_fix_at = last_fix_at

    def __reduce__(self) -> tuple[type[Presence], tuple[Any, ...]]:
        return Presence, by_position(self)


NOWHERE: Final = Presence({})


@record
class Crossing:
    """An event of one subject in one zone, from one fix."""

    zone_id: UUID
    event: FenceEvent


def track(
    presence: Presence,
    fix: Fix,
    near: Sequence[Zone],
    gone: Collection[UUID] = (),
    where: Sequence[bool | None] | None = None,
) -> tuple[Presence, tuple[Crossing, ...]]:
    """The subject's presence after ``fix``, and its events, in ``near``'s order.

    ``near`` holds every zone whose boundary could be within the fix's
    accuracy (the caller's spatial index); a zone the subject was inside that
    is not near any more is left (an exit), unless it is in ``gone`` (deleted:
    dropped without an event). A fix not newer than the last one is ignored.
    ``where``, when given, is the fix's position in each zone of ``near``, in
    its order (:func:`positions`, over a batch of fixes); else it is found here.

    Per zone: a zone held from ``presence`` starts inside since its
    ``since``, any other outside since the previous fix, or, with no previous
    fix (or a zone newer than it), as a baseline that gives no event; a fix
    straddling a boundary (within its accuracy) changes nothing there;
    otherwise a change of side is an enter or an exit, and a stay of the
    zone's ``dwell_s`` one dwell. Computed inline: a zone whose
    :class:`Inside` does not change keeps the same object
    (``tests/unit/geo/test_fences_track_fast.py`` checks it against the
    zone-by-zone code it replaced).
    """
    check_point(fix.latitude, fix.longitude)
    last = presence.last_fix_at
    at = fix.recorded_at
    if last is not None and at <= last:
        return presence, ()
    held_zones = presence.inside
    inside: dict[UUID, Inside] = {}
    crossings: list[Crossing] = []
    left: list[UUID] = []  # held zones near the fix that it is outside of
    for zone, place in zip(near, _positions_of(near, fix, where), strict=True):
        zone_id = zone.id
        held = held_zones.get(zone_id) if held_zones else None
        if held is not None:
            if last is None and at <= held.since:
                # No fix seen but the stay's start: decide's order rule, with
                # the stay's start as the last fix, ignores this one.
                inside[zone_id] = held
                continue
            if place is False:
                left.append(zone_id)
                crossings.append(Crossing(zone_id, FenceEvent.EXIT))
            elif place and _dwell_reached(zone, held, at):
                inside[zone_id] = Inside(held.since, True)
                crossings.append(Crossing(zone_id, FenceEvent.DWELL))
            else:
                inside[zone_id] = held  # still inside, or straddling: no change
        elif last is None or (zone.since is not None and zone.since > last):
            if place:  # new to the subject: a baseline, no event
                inside[zone_id] = Inside(at)
        elif place:
            inside[zone_id] = Inside(at)
            crossings.append(Crossing(zone_id, FenceEvent.ENTER))
    # A held zone that is near is now in ``inside`` or ``left``: the others
    # are no longer near.
    for zone_id in held_zones:
        if zone_id not in inside and zone_id not in left and zone_id not in gone:
            crossings.append(Crossing(zone_id, FenceEvent.EXIT))
    return Presence(inside, at), tuple(crossings)


def changes_nothing(
    presence: Presence,
    fix: Fix,
    near: Sequence[Zone],
    where: Sequence[bool | None] | None = None,
) -> bool:
    """Whether :func:`track` would keep the zones ``presence`` is inside as they are,
    with no event: the question most fixes answer yes to, asked without building
    the new presence. Same rules and same ``_position`` calls as ``track``; False
    for a fix that is not a valid point (``track`` raises).

    A zone held and not near (an exit, or a deleted zone dropped) is a change;
    so is a zone the fix is inside and the subject was not (an enter or a
    baseline). ``near`` lists each zone once, as the zone book's do; ``where``,
    as for ``track``, the fix's position in each.
    ``tests/unit/geo/test_fences_track_fast.py`` checks it against ``track``.
    """
    if not is_valid_point(fix.latitude, fix.longitude):
        return False  # track raises
    last = presence.last_fix_at
    at = fix.recorded_at
    if last is not None and at <= last:
        return True  # ignored
    held_zones = presence.inside
    places = _positions_of(near, fix, where)
    if not held_zones:
        return not any(places)
    kept = 0
    for zone, place in zip(near, places, strict=True):
        held = held_zones.get(zone.id)
        if held is None:
            if place:
                return False
            continue
        kept += 1
        if last is None and at <= held.since:
            continue
        if place is False:
            return False
        if place and _dwell_reached(zone, held, at):
            return False
    return kept == len(held_zones)


def _positions_of(
    near: Sequence[Zone], fix: Fix, where: Sequence[bool | None] | None
) -> Iterable[bool | None]:
    """``where`` when given, else ``_position`` in each zone of ``near``, asked one
    by one as the caller reads them (a caller that stops early asks no more)."""
    return where if where is not None else map(_position, near, repeat(fix))


def _dwell_reached(zone: Zone, held: Inside, at: datetime) -> bool:
    """Whether a stay in ``zone`` held since ``held.since``, still inside at ``at``,
    dwells now: the zone has a ``dwell_s``, the stay has not dwelt, and lasted it."""
    return (
        zone.dwell_s is not None
        and not held.dwelled
        and at - held.since >= timedelta(seconds=zone.dwell_s)
    )


def _to_local(geometry: BaseGeometry, lat0: float, lon0: float) -> BaseGeometry:
    """The geometry in metres east/north of (lat0, lon0) (equirectangular)."""
    k_lat = math.pi / 180 * EARTH_RADIUS_M
    k_lon = k_lat * math.cos(math.radians(lat0))
    return shapely.transform(geometry, lambda xy: (xy - (lon0, lat0)) * (k_lon, k_lat))


def _circle(lat: float, lon: float, radius_m: float) -> Polygon:
    k_lat = math.pi / 180 * EARTH_RADIUS_M
    k_lon = k_lat * math.cos(math.radians(lat))
    points = []
    for step in range(64):
        angle = 2 * math.pi * step / 64
        points.append(
            (lon + radius_m * math.cos(angle) / k_lon, lat + radius_m * math.sin(angle) / k_lat)
        )
    return Polygon(points)


def _area_km2(geometry: BaseGeometry) -> float:
    lat = (geometry.bounds[1] + geometry.bounds[3]) / 2
    lon = (geometry.bounds[0] + geometry.bounds[2]) / 2
    return float(_to_local(geometry, lat, lon).area) / 1e6


def _coordinates(geometry: Mapping[str, Any]) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in geometry["coordinates"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidZone("a Point needs [longitude, latitude]") from exc
    return lon, lat


def _rings(geometry: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
    coords = geometry.get("coordinates") or []
    polygons = coords if geometry.get("type") == "MultiPolygon" else [coords]
    return [[tuple(p) for p in ring] for polygon in polygons for ring in polygon]


def _check_latitude(lat: float) -> None:
    if abs(lat) > MAX_ABS_LATITUDE:
        raise InvalidZone(
            f"zones beyond latitude ±{MAX_ABS_LATITUDE:.0f}° (near a pole) are not supported"
        )


__all__ = [
    "MAX_AREA_KM2",
    "NOWHERE",
    "Crossing",
    "FenceEvent",
    "Fix",
    "Frames",
    "Inside",
    "InvalidZone",
    "Presence",
    "Zone",
    "changes_nothing",
    "contains",
    "positions",
    "track",
    "validate_geometry",
]
