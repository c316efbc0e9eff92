"""Reading and taking a batch of the bulk feed (``gateway.location_batches``), and the
bulk socket's frame reader (``gateway.ws.bulk``): pure, with a fake sink."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from actors.subject import SubjectRole
from config.settings import GeofenceSettings
from gateway.location_batches import NotABatch, read_batch, receive, take
from gateway.locations import Sighting
from gateway.ws.codes import ErrorCode
from gateway.ws.frames import Envelope, FrameError, read_envelope

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SETTINGS = GeofenceSettings()


class FakeSink:
    """Takes fixes until ``room`` is used up (then refuses), remembering their order."""

    def __init__(self, room: int = 1_000_000) -> None:
        self.room = room
        self.taken: list[Sighting] = []
        #: Fixes refused without being offered (a batch refused whole).
        self.refused_whole = 0

    def has_room(self, *, bulk: bool = False) -> bool:
        assert bulk, "the bulk feed's fixes are offered as bulk"
        return len(self.taken) < self.room

    def submit(self, sighting: Sighting, *, bulk: bool = False) -> bool:
        assert bulk, "the bulk feed's fixes are offered as bulk"
        if len(self.taken) >= self.room:
            return False
        self.taken.append(sighting)
        return True

    def refuse(self, count: int) -> None:
        self.refused_whole += count


def fix(subject: UUID, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject_id": str(subject),
        "latitude": 52.5,
        "longitude": 13.4,
        "accuracy_m": 5,
        "recorded_at": NOW.isoformat(),
    }
    body.update(extra)
    return body


def test_a_valid_batch_is_taken_in_order_with_roles() -> None:
    a, b = uuid4(), uuid4()
    fixes = [fix(a), fix(b, subject_role="agent"), fix(a, latitude=52.6)]
    sink = FakeSink()
    outcome = take(read_batch({"fixes": fixes}, 10), SETTINGS, sink, NOW)
    assert (outcome.accepted, outcome.invalid, outcome.refused, outcome.errors) == (3, 0, 0, [])
    assert [(s.subject_id, s.role) for s in sink.taken] == [
        (a, SubjectRole.USER),
        (b, SubjectRole.AGENT),
        (a, SubjectRole.USER),
    ]
    assert sink.taken[2].fix.latitude == 52.6


def test_bad_fixes_are_errors_by_index_and_the_rest_are_taken() -> None:
    a = uuid4()
    fixes = [
        fix(a),
        fix(a, latitude="52.5"),  # a string is not a number, as for a phone
        fix(a, speed_mps=-1),
        fix(a, recorded_at=(NOW + timedelta(hours=1)).isoformat()),  # in the future
        fix(a, extra=1),
        "not an object",
        fix(a),
    ]
    sink = FakeSink()
    outcome = take(read_batch({"fixes": fixes}, 10), SETTINGS, sink, NOW)
    assert (outcome.accepted, outcome.invalid, outcome.refused) == (2, 5, 0)
    assert [e.index for e in outcome.errors] == [1, 2, 3, 4, 5]
    assert {e.code for e in outcome.errors} == {ErrorCode.INVALID_DATA}
    assert "future" in outcome.errors[2].message
    assert len(sink.taken) == 2


def test_overload_refuses_by_index_and_nothing_is_lost_silently() -> None:
    fixes = [fix(uuid4()) for _ in range(5)]
    sink = FakeSink(room=3)
    outcome = take(read_batch({"fixes": fixes}, 10), SETTINGS, sink, NOW)
    assert (outcome.accepted, outcome.refused) == (3, 2)
    assert [(e.index, e.code) for e in outcome.errors] == [
        (3, ErrorCode.UNAVAILABLE),
        (4, ErrorCode.UNAVAILABLE),
    ]


def test_errors_listed_are_capped_but_counted() -> None:
    fixes = [fix(uuid4(), latitude=100) for _ in range(150)]
    outcome = take(read_batch({"fixes": fixes}, 200), SETTINGS, FakeSink(), NOW)
    assert (outcome.accepted, outcome.invalid, len(outcome.errors)) == (0, 150, 100)


@pytest.mark.parametrize(
    "data",
    [None, [], {}, {"fixes": []}, {"fixes": {}}, {"fixes": [1], "more": 1}, {"fixes": [1] * 11}],
)
def test_what_is_not_a_batch_is_refused_whole(data: object) -> None:
    with pytest.raises(NotABatch):
        read_batch(data, 10)


def test_the_frame_envelope_both_sockets_read() -> None:
    frame = read_envelope(orjson.dumps({"type": "locations", "id": "b1", "data": {"fixes": []}}))
    assert frame == Envelope("locations", "b1", {"fixes": []})
    assert read_envelope('{"type": "ping"}') == Envelope("ping", None, {})
    for text, ref in [
        ("nope", None),
        ("[]", None),
        ('{"type": 1, "id": "x"}', "x"),
        ('{"type": "ping", "id": 5}', None),
        ('{"type": "ping", "id": "y", "extra": 1}', "y"),
    ]:
        error = read_envelope(text)
        assert isinstance(error, FrameError), text
        assert (error.code, error.ref) == (ErrorCode.BAD_FRAME, ref), text


def test_a_full_queue_refuses_a_whole_batch_without_reading_its_fixes() -> None:
    fixes: list[Any] = ["not even a fix"] * 150
    full = FakeSink(room=0)
    outcome = receive({"fixes": fixes}, SETTINGS, full, NOW)
    assert (outcome.accepted, outcome.invalid, outcome.refused) == (0, 0, 150)
    assert full.refused_whole == 150  # counted where the metrics read it
    assert [e.index for e in outcome.errors] == list(range(100))
    assert {e.code for e in outcome.errors} == {ErrorCode.UNAVAILABLE}
    with pytest.raises(NotABatch):  # a batch that is not one is still 422
        receive({"fixes": []}, SETTINGS, FakeSink(room=0), NOW)
    # With room, it is read and taken as usual.
    outcome = receive({"fixes": [fix(uuid4())]}, SETTINGS, FakeSink(), NOW)
    assert outcome.accepted == 1
