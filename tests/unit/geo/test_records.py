"""``geo.records``: the hot records (native classes when compiled) and ``record``,
both frozen for the type checker, with a frozen dataclass's equality and hash."""

from __future__ import annotations

import copy
import dataclasses
import pickle
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from mypy import api as mypy_api

from actors.subject import NearZone, SubjectState, TrackFix
from actors.subject_state import SubjectRole
from geo.fences import Fix, Inside, Presence, Zone
from geo.records import by_position, record
from panic_alert.compiled import compiled

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


def _hot_records() -> list[Any]:
    zone = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=50)
    fix = Fix(52.5, 13.4, 7.5, T0)
    near = NearZone(zone, "danger", "school", notify_subject=True)
    presence = Presence({zone.id: Inside(T0, dwelled=True)}, T0)
    state = SubjectState(SubjectRole.USER, uuid4(), presence, {zone.id: "danger"}, 3, fix)
    track = TrackFix(fix, (near,), frozenset(), (True,))
    return [zone, fix, near, presence, Inside(T0), track, state]


def test_the_hot_records_pickle_copy_and_replace_by_their_fields() -> None:
    """A native class has no slots to pickle by: each says how (``__reduce__``)."""
    for one in _hot_records():
        assert pickle.loads(pickle.dumps(one)) == one, type(one)  # noqa: S301 - our own bytes
        assert copy.deepcopy(one) == one, type(one)
        assert dataclasses.replace(one) == one, type(one)
    zone = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=50)
    later = dataclasses.replace(zone, dwell_s=60.0)
    assert (later.id, later.dwell_s) == (zone.id, 60.0)
    assert later == pickle.loads(pickle.dumps(later))  # noqa: S301 - our own bytes
    # By the fields its __init__ takes: the frame it computes is made again.
    assert by_position(zone) == (zone.id, zone.geometry, zone.dwell_s, zone.since)
    again = pickle.loads(pickle.dumps(zone))  # noqa: S301 - our own bytes
    assert again._frame == zone._frame


def test_compiled_hot_records_are_native_classes() -> None:
    """mypyc makes a class native only when its decorator is ``dataclass`` itself;
    a native one refuses an assignment at run time too (plain Python does not)."""
    fix = Fix(52.5, 13.4, 7.5, T0)
    if not compiled():
        object.__setattr__(fix, "latitude", 1.0)  # plain: slots, unguarded
        assert fix.latitude == 1.0
        return
    for one in _hot_records():
        name = dataclasses.fields(one)[0].name
        with pytest.raises(AttributeError):
            setattr(one, name, None)


def _mypy_refuses(source: str, tmp_path: Path) -> str:
    """mypy --strict's output on ``source`` (run from the repository root, where it
    finds ``geo``), which must fail."""
    module = tmp_path / "assigns.py"
    module.write_text(textwrap.dedent(source))
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
    return out


def test_assigning_a_hot_records_field_is_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    source = """
        from datetime import UTC, datetime

        from geo.fences import Fix

        fix = Fix(52.5, 13.4, 7.5, datetime.now(UTC))
        fix.latitude = 2.0
        """
    assert 'Cannot assign to final attribute "latitude"' in _mypy_refuses(source, tmp_path)


def test_assigning_a_records_field_is_a_type_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one guard left on a record (see ``geo.records``): mypy refuses it."""
    monkeypatch.chdir(ROOT)
    source = """
        from geo.records import by_position, record

        @record
        class Point:
            x: float

        point = Point(1.0)
        point.x = 2.0
        """
    assert 'Property "x" defined in "Point" is read-only' in _mypy_refuses(source, tmp_path)


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
