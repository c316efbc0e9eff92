"""A subject entity's state: who it is, the zones it is inside, its last fix,
its check-ins and the alerts it relays to; its snapshot layout.

The transitions are ``actors.subject`` (the decision, the relay to
responders), ``actors.subject_fences`` and ``actors.subject_checkins``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from actors import codec
from actors.checkins import (
    CheckIn,
    check_in_or_none,
    ended_check_ins,
)
from actors.effects import (
    EntityKind,
    Persist,
)
from actors.errors import (
    InvalidMessage,
)
from actors.roles import SubjectRole as SubjectRole
from geo.fences import NOWHERE, Fix, Inside, Presence, Zone
from geo.records import by_position


def subject_key(role: SubjectRole | str, subject_id: UUID) -> str:
    """The entity id of a subject: ``"user:<uuid>"`` or ``"agent:<uuid>"``."""
    who = role if isinstance(role, SubjectRole) else SubjectRole(role)
    return f"{who.value}:{subject_id}"


def parse_subject_key(key: str) -> tuple[SubjectRole, UUID]:
    role, _, raw = key.partition(":")
    try:
        return SubjectRole(role), UUID(raw)
    except ValueError as exc:
        raise InvalidMessage(f"not a subject id: {key!r}") from exc


@dataclass(slots=True, init=False, unsafe_hash=True)
class NearZone:
    """A zone near a fix, with what its rules ask of an entry (a hot record,
    ``geo.records``)."""

    zone: Final[Zone]
    kind: Final[str]  # safe | danger | service_area
    name: Final[str]
    notify_subject: Final[bool]
    notify_admins: Final[bool]
    #: Safe zones: entering ends the subject's running check-in.
    end_check_in: Final[bool]

    def __init__(
        self,
        zone: Zone,
        kind: str,
        name: str = "",
        notify_subject: bool = False,
        notify_admins: bool = False,
        end_check_in: bool = False,
    ) -> None:
        self.zone = zone
        self.kind = kind
        self.name = name
        self.notify_subject = notify_subject
        self.notify_admins = notify_admins
        self.end_check_in = end_check_in

    def __reduce__(self) -> tuple[type[NearZone], tuple[Any, ...]]:
        return NearZone, by_position(self)


@dataclass(slots=True, init=False, unsafe_hash=True)
class SubjectState:
    """A subject entity's state (a hot record, ``geo.records``)."""

    role: Final[SubjectRole]
    subject_id: Final[UUID]
    presence: Final[Presence]
    #: The kind of each zone the subject is inside (for its exit event).
    kinds: Final[Mapping[UUID, str] | None]
    version: Final[int]
    #: The subject's newest fix: where a missed check-in's alert is raised.
    last_fix: Final[Fix | None]
    #: The running check-in (users only), and the last ended ones, newest last.
    check_in: Final[CheckIn | None]
    ended: Final[tuple[CheckIn, ...]]
    #: The user's alerts an agent is responding to: each newer fix goes on to them.
    responding: Final[frozenset[UUID]]

    def __init__(
        self,
        role: SubjectRole,
        subject_id: UUID,
        presence: Presence = NOWHERE,
        kinds: Mapping[UUID, str] | None = None,
        version: int = 0,
        last_fix: Fix | None = None,
        check_in: CheckIn | None = None,
        ended: tuple[CheckIn, ...] = (),
        responding: frozenset[UUID] = frozenset(),
    ) -> None:
        self.role = role
        self.subject_id = subject_id
        self.presence = presence
        self.kinds = kinds
        self.version = version
        self.last_fix = last_fix
        self.check_in = check_in
        self.ended = ended
        self.responding = responding

    def __reduce__(self) -> tuple[type[SubjectState], tuple[Any, ...]]:
        return SubjectState, by_position(self)

    @property
    def key(self) -> str:
        return subject_key(self.role, self.subject_id)

    def moved(self, presence: Presence, last_fix: Fix | None) -> SubjectState:
        """This state with a new presence and last fix, all else kept: the hot path
        of every fix, made by the constructor with every field given by position
        (``dataclasses.replace`` costs three times as much: it looks each field
        up by name). ``tests/unit/actors/test_subject.py`` holds it to every field."""
        return SubjectState(
            self.role,
            self.subject_id,
            presence,
            self.kinds,
            self.version,
            last_fix,
            self.check_in,
            self.ended,
            self.responding,
        )

    @classmethod
    def new(cls, key: str) -> SubjectState:
        role, subject_id = parse_subject_key(key)
        return cls(role, subject_id)

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-safe dict with sorted keys; ``from_snapshot(s.to_snapshot()) == s``."""
        kinds = self.kinds or {}
        return {
            **codec.header("subject"),
            "role": self.role.value,
            "subject_id": str(self.subject_id),
            "inside": {
                str(zone): {
                    "since": codec.iso(inside.since),
                    "dwelled": inside.dwelled,
                    "kind": kinds.get(zone, ""),
                }
                for zone, inside in sorted(self.presence.inside.items())
            },
            "last_fix_at": codec.iso_or_none(self.presence.last_fix_at),
            "version": self.version,
            "last_fix": None if self.last_fix is None else _fix_snapshot(self.last_fix),
            "check_in": None if self.check_in is None else self.check_in.to_snapshot(),
            "ended_check_ins": [c.to_snapshot() for c in self.ended],
            "responding": sorted(str(a) for a in self.responding),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> SubjectState:
        codec.check_header(data, "subject")
        f = codec.field
        inside: dict[UUID, Inside] = {}
        kinds: dict[UUID, str] = {}
        for zone, held in f(data, "inside", dict).items():
            zone_id = codec.parse_uuid(zone)
            inside[zone_id] = Inside(
                f(held, "since", codec.parse_dt), f(held, "dwelled", codec.parse_bool)
            )
            kinds[zone_id] = f(held, "kind", str)
        return cls(
            role=f(data, "role", SubjectRole),
            subject_id=f(data, "subject_id", codec.parse_uuid),
            presence=Presence(inside, f(data, "last_fix_at", codec.parse_dt_or_none)),
            kinds=kinds,
            version=f(data, "version", codec.parse_int),
            # Added with check-ins: older snapshots have none of these.
            last_fix=codec.optional_field(data, "last_fix", _fix_or_none, None),
            check_in=codec.optional_field(data, "check_in", check_in_or_none, None),
            ended=codec.optional_field(data, "ended_check_ins", ended_check_ins, ()),
            # Added with the live-location relay: older snapshots have none.
            responding=codec.optional_field(data, "responding", _alert_ids, frozenset()),
        )


def _alert_ids(value: object) -> frozenset[UUID]:
    if not isinstance(value, list):
        raise ValueError("expected a list of alert ids")
    return frozenset(codec.parse_uuid(a) for a in value)


def _fix_snapshot(fix: Fix) -> dict[str, Any]:
    return {
        "latitude": fix.latitude,
        "longitude": fix.longitude,
        "accuracy_m": fix.accuracy_m,
        "recorded_at": codec.iso(fix.recorded_at),
    }


def _fix_or_none(data: Any) -> Fix | None:
    if data is None:
        return None
    f = codec.field
    return Fix(
        f(data, "latitude", codec.parse_float),
        f(data, "longitude", codec.parse_float),
        f(data, "accuracy_m", codec.parse_float),
        f(data, "recorded_at", codec.parse_dt),
    )


def persist(state: SubjectState, *, coalesce: bool = False) -> Persist:
    return Persist(EntityKind.SUBJECT, state.key, state.version, state.to_snapshot(), coalesce)
