"""The hot path's makers (``geo.records``) against the constructors they stand in for."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from actors.subject import NearZone, TrackFix, track_fix
from geo.fences import Fix, Inside, Presence, Zone, fix_of, presence_of
from geo.records import new_instance, slot_setters

T0 = datetime(2026, 12, 5, 12, tzinfo=UTC)


def same(made: object, built: object) -> None:
    """``made`` is a ``type(built)`` equal to it, each field the very same object."""
    assert type(made) is type(built)
    assert made == built
    for f in fields(built):  # type: ignore[arg-type]
        assert getattr(made, f.name) is getattr(built, f.name), f.name


def test_each_maker_gives_what_its_constructor_gives() -> None:
    at = datetime(2026, 12, 5, 12, 0, 1, 250, tzinfo=UTC)
    fix = Fix(52.5, 13.4, 7.5, at)
    same(fix_of(52.5, 13.4, 7.5, at), fix)
    inside = {uuid4(): Inside(T0)}
    same(presence_of(inside, at), Presence(inside, at))
    nowhere: dict[object, Inside] = {}
    same(presence_of(nowhere, None), Presence(nowhere, None))  # type: ignore[arg-type]
    zone = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=50)
    near = (NearZone(zone, "danger"),)
    gone = frozenset({uuid4()})
    same(track_fix(fix, near, gone), TrackFix(fix, near, gone))


def test_slot_setters_come_in_field_order_and_need_slots() -> None:
    @dataclass(frozen=True, slots=True)
    class Pair:
        first: int
        second: str

    pair: Pair = new_instance(Pair)
    set_first, set_second = slot_setters(Pair)
    set_first(pair, 1)
    set_second(pair, "b")
    assert pair == Pair(1, "b")

    @dataclass(frozen=True)
    class Unslotted:
        only: int

    with pytest.raises(KeyError):
        slot_setters(Unslotted)
