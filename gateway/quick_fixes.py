"""A bulk feed's fix in its common shape, read without a pydantic model (issue 20).

The bulk feed (``gateway.location_batches``) reads tens of thousands of fixes a
second. Validating each with the :class:`~gateway.location_batches.BatchFix`
model, then turning its ``subject_id`` into a ``UUID`` and back into the
subject's entity key, was 8 of a gateway's 28 µs per bulk fix (the README's
budget at ``cc76dff``). :func:`read_quick`
reads the shape integrations send (a lowercase hyphenated ``subject_id``, JSON
numbers in range, an RFC 3339 ``recorded_at`` with at most microseconds) in a
few checks, and answers None for anything else: that fix is then validated by
the model, exactly as before.

The contract (``tests/unit/gateway/test_quick_fixes.py`` checks it on random
fixes): whatever :func:`read_quick` reads, the model accepts, with the same
values (numbers as floats, the same instant and UTC offset, the same role and
entity key). What it refuses it never answers; so an error's wording always
comes from the model, and a fix is taken or refused whichever way it is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from actors.subject import SubjectRole
from gateway.fields import HEADING_BELOW, LATITUDE_MAX, LONGITUDE_MAX, NON_NEGATIVE_MAX
from gateway.ws.frames import LocationData
from geo.records import by_position

#: The fields of a bulk fix (``BatchFix``: a ``location`` frame's data and whose fix
#: it is); any other key is the model's to refuse.
FIELDS: Final = frozenset(LocationData.model_fields) | {"subject_id", "subject_role"}

#: A UUID as ``str(UUID)`` writes it, so it is already the entity key's id part.
_CANONICAL_UUID: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z"
).match
#: The shape of an RFC 3339 time up to its seconds, for ``_rfc3339``: ``d`` a digit.
_SHAPE: Final = "dddd-dd-ddTdd:dd:dd"
_ROLES: Final = {role.value: role for role in SubjectRole}
#: Subject ids already matched by ``_CANONICAL_UUID``: a bulk feed sends the same
#: ids again and again, and looking one up here instead of matching it again took
#: the intake from ~46,300 to 44,030 instructions per fix (the pattern alone was
#: ~3,100; ``bench/fix_path.py --instructions``). Only ids that matched go in, so
#: the answer is the pattern's; emptied once ``_KNOWN_MAX`` are kept.
_known_ids: set[str] = set()
#: Not ``Final``: compiled (``panic_alert.compiled``), a ``Final`` is folded into
#: the code, and the unit test sets a small bound here.
_KNOWN_MAX: int = 100_000


@dataclass(slots=True, init=False)
class QuickReport:
    """The fix's reported fields, as the model would hold them (``Reported``): a hot
    record (``geo.records``), made for every bulk fix."""

    latitude: Final[float]
    longitude: Final[float]
    accuracy_m: Final[float | None]
    heading: Final[float | None]
    speed_mps: Final[float | None]
    recorded_at: Final[datetime | None]

    def __init__(
        self,
        latitude: float,
        longitude: float,
        accuracy_m: float | None,
        heading: float | None,
        speed_mps: float | None,
        recorded_at: datetime | None,
    ) -> None:
        self.latitude = latitude
        self.longitude = longitude
        self.accuracy_m = accuracy_m
        self.heading = heading
        self.speed_mps = speed_mps
        self.recorded_at = recorded_at

    def __reduce__(self) -> tuple[type[QuickReport], tuple[Any, ...]]:
        return QuickReport, by_position(self)


class _NotQuick(Exception):
    """This fix is the model's to read."""


def _number(value: object, low: float, high: float) -> float:
    """A JSON number within ``[low, high]`` as a float (NaN fails the comparison;
    a bool, or any subclass of float or int, is the model's to read)."""
    if (type(value) is float or type(value) is int) and low <= value <= high:
        return float(value)
    raise _NotQuick


def _optional(item: dict[str, object], name: str, high: float) -> float | None:
    value = item.get(name)
    return None if value is None else _number(value, 0, high)


def _canonical(subject: str) -> bool:
    """Whether ``subject`` is a UUID as ``str(UUID)`` writes it (``_known_ids`` first)."""
    if subject in _known_ids:
        return True
    if not _CANONICAL_UUID(subject):
        return False
    if len(_known_ids) >= _KNOWN_MAX:
        _known_ids.clear()
    _known_ids.add(subject)
    return True


def _rfc3339(text: str) -> bool:
    """Whether ``text`` is RFC 3339 with an offset and at most six fractional digits,
    in ASCII digits: ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)``, what
    ``datetime.fromisoformat`` and the model read alike (the ranges are
    ``fromisoformat``'s to check). Checked by code point (``ord(text[i])``, which
    mypyc compiles to an integer read): a regular expression's match was ~3,200
    instructions a fix, a twelfth of the bulk intake."""
    size = len(text)
    if size < 20:
        return False
    for at in range(19):
        want, got = ord(_SHAPE[at]), ord(text[at])
        if want == ord("d"):
            if not ord("0") <= got <= ord("9"):
                return False
        elif got != want:
            return False
    at = 19
    if ord(text[at]) == ord("."):
        end = at + 1
        while end < size and ord("0") <= ord(text[end]) <= ord("9"):
            end += 1
        if not 1 <= end - at - 1 <= 6:
            return False
        at = end
    left = size - at
    if left == 1:
        return ord(text[at]) == ord("Z")
    return (
        left == 6
        and ord(text[at]) in (ord("+"), ord("-"))
        and ord(text[at + 3]) == ord(":")
        and all(ord("0") <= ord(text[at + i]) <= ord("9") for i in (1, 2, 4, 5))
    )


def read_quick(item: object) -> tuple[SubjectRole, str, QuickReport] | None:
    """The fix's role, its subject's entity key and its reported fields, when it has
    the common shape; None when the model must read it (see the module)."""
    if type(item) is not dict or not FIELDS.issuperset(item):
        return None
    try:
        subject = item["subject_id"]
        if type(subject) is not str or not _canonical(subject):
            return None
        role_text = item.get("subject_role", "user")
        role = _ROLES[role_text]
        heading = item.get("heading")
        if heading is not None:
            heading = _number(heading, 0, HEADING_BELOW)
            if heading == HEADING_BELOW:  # the model's bound is "below"
                return None
        recorded = item.get("recorded_at")
        if recorded is not None:
            if type(recorded) is not str or not _rfc3339(recorded):
                return None
            recorded = datetime.fromisoformat(recorded)
        report = QuickReport(
            _number(item["latitude"], -LATITUDE_MAX, LATITUDE_MAX),
            _number(item["longitude"], -LONGITUDE_MAX, LONGITUDE_MAX),
            _optional(item, "accuracy_m", NON_NEGATIVE_MAX),
            heading,
            _optional(item, "speed_mps", NON_NEGATIVE_MAX),
            recorded,
        )
    except (_NotQuick, KeyError, TypeError, ValueError):
        return None
    return role, f"{role_text}:{subject}", report


__all__ = ["FIELDS", "QuickReport", "read_quick"]
