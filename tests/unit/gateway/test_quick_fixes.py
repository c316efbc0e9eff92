"""``gateway.quick_fixes``: what it reads, the model reads the same; what it cannot,
it leaves to the model. Pure, on random fixes (hypothesis)."""

from __future__ import annotations

import pickle
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from actors.subject import SubjectRole, subject_key
from gateway import quick_fixes
from gateway.location_batches import BatchFix, read_batch
from gateway.quick_fixes import FIELDS, read_quick

MODEL = TypeAdapter(BatchFix)
NUMBERS = ("latitude", "longitude", "accuracy_m", "heading", "speed_mps")

#: The bounds of each number (``gateway.fields``), and a value just past each.
_EDGES = [
    edge + step
    for edge in (-180.0, -90.0, 0.0, 90.0, 180.0, 360.0, 1e6)
    for step in (-1e-9, 0.0, 1e-9, -1.0, 1.0)
] + [-0.0, 1_000_001, 360, 90, -91]

_odd_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.booleans(),
    st.none(),
    st.sampled_from(["52.5", "", [], {}]),
)
_numbers = st.one_of(
    st.sampled_from(_EDGES),
    st.floats(min_value=-200, max_value=400),
    st.integers(min_value=-400, max_value=2_000_000),
)


@st.composite
def _ids(draw: st.DrawFn) -> object:
    u = draw(st.uuids())
    if draw(st.booleans()):
        return str(u)
    return draw(
        st.sampled_from([str(u).upper(), u.hex, f"{{{u}}}", f"urn:uuid:{u}", str(u)[:-1], 7, None])
    )


@st.composite
def _times(draw: st.DrawFn) -> object:
    at = draw(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1)))
    minutes = draw(st.integers(min_value=-24 * 60 + 1, max_value=24 * 60 - 1))
    aware = at.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    text = aware.isoformat()
    digits = draw(st.integers(min_value=0, max_value=9))
    whole = aware.isoformat(timespec="seconds")
    fraction = "".join(
        draw(st.lists(st.sampled_from("0123456789"), min_size=digits, max_size=digits))
    )
    stamp, offset = whole[:19], whole[19:]
    return draw(
        st.sampled_from(
            [
                text,
                text.replace("+00:00", "Z"),
                f"{stamp}.{fraction}{offset}" if digits else whole,
                f"{stamp}{offset}".replace("T", " "),
                stamp,  # naive
                at.date().isoformat(),
                f"{stamp}.{fraction}Z" if digits else f"{stamp}Z",
                "2026-02-30T12:00:00Z",
                "2026-12-05T24:00:00Z",
                "2026-12-05T12:00:60Z",
                f"{stamp}+0000",
                f"{stamp}+24:00",
                "yesterday",
                None,
                1_733_400_000,
            ]
        )
    )


@st.composite
def fixes(draw: st.DrawFn) -> object:
    """Mostly dicts near the common shape, with some fields missing, odd or extra."""
    item: dict[str, Any] = {"subject_id": draw(_ids())}
    for name in NUMBERS:
        if draw(st.booleans()) or name in ("latitude", "longitude"):
            odd = draw(st.integers(0, 9)) == 0
            item[name] = draw(_odd_numbers if odd else _numbers)
    if draw(st.booleans()):
        item["recorded_at"] = draw(_times())
    if draw(st.booleans()):
        item["subject_role"] = draw(st.sampled_from(["user", "agent", "admin", "USER", None, 1]))
    for name in draw(st.sets(st.sampled_from(sorted(FIELDS)), max_size=2)):
        if draw(st.integers(0, 4)) == 0:
            item.pop(name, None)
    if draw(st.integers(0, 9)) == 0:
        item["extra"] = 1
    return draw(st.one_of(st.just(item), st.sampled_from([[item], "fix", None, 3])))


def _same(quick: object, model: BatchFix) -> None:
    assert quick is not None
    role, key, report = quick  # type: ignore[misc]
    assert role is model.subject_role
    assert key == subject_key(model.subject_role, model.subject_id)
    for name in NUMBERS:
        mine, theirs = getattr(report, name), getattr(model, name)
        assert mine == theirs, name
        assert type(mine) is type(theirs), name
    mine_at, theirs_at = report.recorded_at, model.recorded_at
    if theirs_at is None:
        assert mine_at is None
    else:
        assert mine_at == theirs_at
        assert mine_at.utcoffset() == theirs_at.utcoffset()


def test_the_quick_reader_knows_exactly_the_models_fields() -> None:
    assert set(FIELDS) == set(BatchFix.model_fields)


@settings(max_examples=3000, deadline=None)
@given(fixes())
def test_what_the_quick_reader_reads_the_model_reads_alike(item: object) -> None:
    quick = read_quick(item)
    if quick is None:
        return  # the model's to read (or refuse): read_batch then asks it
    try:
        model = MODEL.validate_python(item)
    except ValidationError as exc:
        pytest.fail(f"read quickly, but the model refuses {item!r}: {exc}")
    _same(quick, model)


@settings(max_examples=500, deadline=None)
@given(
    subject=st.uuids(),
    role=st.sampled_from([None, "user", "agent"]),
    latitude=st.floats(min_value=-90, max_value=90) | st.integers(-90, 90),
    longitude=st.floats(min_value=-180, max_value=180) | st.integers(-180, 180),
    accuracy=st.none() | st.floats(min_value=0, max_value=1e6),
    heading=st.none() | st.floats(min_value=0, max_value=359.99),
    at=st.none() | st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()),
)
def test_the_shape_integrations_send_is_read_quickly(
    subject: UUID,
    role: str | None,
    latitude: float,
    longitude: float,
    accuracy: float | None,
    heading: float | None,
    at: str | None,
) -> None:
    item: dict[str, Any] = {"subject_id": str(subject), "latitude": latitude}
    item |= {"longitude": longitude, "accuracy_m": accuracy, "heading": heading}
    if role is not None:
        item["subject_role"] = role
    if at is not None:
        item["recorded_at"] = at.replace("+00:00", "Z")
    _same(read_quick(item), MODEL.validate_python(item))


#: The shape ``quick_fixes._rfc3339`` checks by position, as a pattern (ASCII digits).
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)", re.ASCII)


@st.composite
def _stamps(draw: st.DrawFn) -> str:
    """Times as ``_times`` makes them, then often with one character changed,
    dropped or added."""
    text = draw(_times())
    if not isinstance(text, str):
        text = "2026-12-05T12:00:00Z"
    if not text or draw(st.booleans()):
        return text
    at = draw(st.integers(0, len(text) - 1))
    char = draw(st.sampled_from("0957TtZz-+:. x\u0663\uff11"))
    edit = draw(st.sampled_from(["change", "drop", "add"]))
    if edit == "change":
        return text[:at] + char + text[at + 1 :]
    if edit == "drop":
        return text[:at] + text[at + 1 :]
    return text[:at] + char + text[at:]


@settings(max_examples=3000, deadline=None)
@given(_stamps())
def test_the_time_shape_is_checked_as_the_pattern_checks_it(text: str) -> None:
    assert quick_fixes._rfc3339(text) is bool(_RFC3339.fullmatch(text)), text


@pytest.mark.parametrize("name", NUMBERS)
@pytest.mark.parametrize("value", [*_EDGES, 1, True, None, "1", float("nan"), float("inf")])
def test_each_number_is_bounded_as_the_model_bounds_it(name: str, value: object) -> None:
    """A fix in the common shape but for one number: read quickly exactly when the
    model accepts it (then alike)."""
    item = {"subject_id": str(uuid4()), "latitude": 1.5, "longitude": 2.5, name: value}
    quick = read_quick(item)
    try:
        model = MODEL.validate_python(item)
    except ValidationError:
        assert quick is None
        return
    _same(quick, model)


@pytest.mark.parametrize(
    "change",
    [
        {
            "subject_id": "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"
        },  # the model reads it; the key: lowercase
        {"recorded_at": "2026-12-05T12:00:00.1234567Z"},  # more digits than microseconds
        {"recorded_at": "2026-12-05 12:00:00+01:00"},
        {"heading": 360},
        {"latitude": True},
        {"latitude": "52.5"},
        {"extra": 1},
    ],
    ids=["upper-case id", "nanoseconds", "space", "heading 360", "bool", "string", "extra"],
)
def test_a_batch_reads_the_same_whichever_reader_takes_a_fix(change: dict[str, Any]) -> None:
    base = {"subject_id": str(uuid4()), "latitude": 52.5, "longitude": 13.4}
    item = base | change
    assert read_quick(item) is None
    batch = read_batch({"fixes": [base, item]}, 10)
    try:
        model = MODEL.validate_python(item)
    except ValidationError:
        assert [f[0] for f in batch.fixes] == [0]
        assert [e.index for e in batch.errors] == [1]
        return
    assert [f[0] for f in batch.fixes] == [0, 1]
    _index, role, key, reported = batch.fixes[1]
    assert (role, key) == (model.subject_role, subject_key(model.subject_role, model.subject_id))
    assert reported == model
    assert key == subject_key(SubjectRole.USER, UUID(item["subject_id"]))


def test_an_id_seen_before_is_read_again_and_a_bad_one_never_enters_the_known_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known: set[str] = set()
    monkeypatch.setattr(quick_fixes, "_known_ids", known)
    monkeypatch.setattr(quick_fixes, "_KNOWN_MAX", 2)
    good = [str(uuid4()) for _ in range(3)]
    fix = {"latitude": 52.5, "longitude": 13.4}
    for subject in (good[0], good[0], good[1]):
        found = read_quick({**fix, "subject_id": subject})
        assert found is not None
        assert found[1] == f"user:{subject}"
    assert known == {good[0], good[1]}
    # Not canonical (upper case, braces, short): the model's to read, and never known.
    for bad in (good[2].upper(), "{" + good[2] + "}", good[2][:-1]):
        assert read_quick({**fix, "subject_id": bad}) is None
    assert known == {good[0], good[1]}
    # Past the bound the set starts again, and still answers as the pattern does.
    assert read_quick({**fix, "subject_id": good[2]}) is not None
    assert known == {good[2]}
    assert read_quick({**fix, "subject_id": good[0]}) is not None
    assert known == {good[2], good[0]}


def test_a_quick_report_pickles_by_its_fields() -> None:
    """A native class when compiled: it says how to pickle it (``__reduce__``)."""
    at = "2026-12-05T12:00:00.5+01:00"
    found = read_quick(
        {"subject_id": str(uuid4()), "latitude": 52.5, "longitude": 13.4} | {"recorded_at": at}
    )
    assert found is not None
    report = found[2]
    again = pickle.loads(pickle.dumps(report))  # noqa: S301 - our own bytes
    assert again == report
    assert again.recorded_at == datetime.fromisoformat(at)
