"""``geo.records.record``: frozen for the type checker, a plain slotted dataclass at
run time with a frozen one's equality and hash."""

from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from mypy import api as mypy_api

from actors.subject import NearZone, SubjectState, TrackFix
from actors.subject_state import SubjectRole
from geo.fences import Fix, Inside, Presence, Zone
from geo.records import record

T0 = datetime(2026, 12, 5, 12, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]


def test_the_hot_path_records_are_slotted_and_compare_and_hash_as_frozen_ones() -> None:
    @dataclass(frozen=True, slots=True)
    class FrozenFix:
        latitude: float
        longitude: float
        accuracy_m: float
        recorded_at: datetime

    fix = Fix(52.5, 13.4, 7.5, T0)
    frozen = FrozenFix(52.5, 13.4, 7.5, T0)
    assert fix == Fix(52.5, 13.4, 7.5, T0)
    assert fix != Fix(52.5, 13.4, 7.5, datetime(2026, 12, 5, 12, 0, 1, tzinfo=UTC))
    assert hash(fix) == hash(Fix(52.5, 13.4, 7.5, T0)) == hash(frozen)
    assert dataclasses.replace(fix, accuracy_m=3.0) == Fix(52.5, 13.4, 3.0, T0)
    zone = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=50)
    made = (
        fix,
        Presence({zone.id: Inside(T0)}, T0),
        TrackFix(fix, (NearZone(zone, "danger"),), frozenset(), (True,)),
        SubjectState(SubjectRole.USER, uuid4()),
    )
    for one in made:
        assert not hasattr(one, "__dict__"), type(one)  # slots only
        assert dataclasses.is_dataclass(one)


def test_assigning_a_records_field_is_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one guard left on a record (see ``geo.records``): mypy refuses it."""
    monkeypatch.chdir(ROOT)  # where mypy finds ``geo``
    module = tmp_path / "assigns.py"
    module.write_text(
        textwrap.dedent(
            """
            from geo.records import record

            @record
            class Point:
                x: float

            point = Point(1.0)
            point.x = 2.0
            """
        )
    )
    out, _err, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            f"--cache-dir={tmp_path / 'cache'}",
            "--config-file=",
            str(module),
        ]
    )
    assert status == 1, out
    assert 'Property "x" defined in "Point" is read-only' in out


def test_a_record_is_made_by_its_constructor_at_run_time() -> None:
    @record
    class Point:
        x: float
        y: float = 0.0

    point = Point(1.0)
    assert (point.x, point.y) == (1.0, 0.0)
    assert Point(1.0) == point
    assert hash(Point(1.0)) == hash(point)
    assert Point.__slots__ == ("x", "y")
