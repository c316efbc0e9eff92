"""The subject-tracker state machine: one geofenced user's or agent's zones.

A subject entity is addressed ``"user:<uuid>"`` or ``"agent:<uuid>"``
(:func:`subject_key`). It receives the subject's location fixes as
:class:`TrackFix` messages, each carrying the zones near the fix (the shard
looks them up in its zone book before the message reaches the mailbox, so
``decide`` stays pure), applies ``geo.fences.track`` and records the zones
the subject is inside.

Why per subject and not per region: the state of "inside zone Z since T"
must survive the subject walking from one H3 cell to the next, and a zone
usually spans several cells. Region entities hold which zones cover their
cell; the subject's own state follows the subject.

Durability: a fix that changes nothing but the subject's last-fix time is
memory only (the hot path, no I/O). A fix that enters, leaves or dwells is
persisted together with its ``geofence.*`` events (outbox → Kafka
``geofence-events`` → MongoDB ``geofence_events``). A change of the inside
set without an event (a baseline in a new zone, a deleted zone dropped) is a
coalesced snapshot. After a restart the last-fix time may be older than the
last fix seen; a delayed fix in that window is taken as new.

Rules: entering a ``danger`` zone whose rules say so pushes a
``geofence.alert`` frame to the subject's sockets and/or the admins'.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from actors import codec
from actors.effects import (
    Audience,
    AudienceKind,
    Effect,
    Emit,
    EntityKind,
    EventType,
    FrameType,
    Persist,
    Push,
    Topic,
    Transition,
)
from actors.errors import InvalidMessage, UnknownMessage
from geo.errors import GeoError
from geo.fences import NOWHERE, FenceEvent, Fix, Inside, Presence, Zone, track


class SubjectRole(enum.StrEnum):
    USER = "user"
    AGENT = "agent"


def subject_key(role: SubjectRole | str, subject_id: UUID) -> str:
    """The entity id of a subject: ``"user:<uuid>"`` or ``"agent:<uuid>"``."""
    return f"{SubjectRole(role).value}:{subject_id}"


def parse_subject_key(key: str) -> tuple[SubjectRole, UUID]:
    role, _, raw = key.partition(":")
    try:
        return SubjectRole(role), UUID(raw)
    except ValueError as exc:
        raise InvalidMessage(f"not a subject id: {key!r}") from exc


@dataclass(frozen=True, slots=True)
class NearZone:
    """A zone near a fix, with what its rules ask of an entry."""

    zone: Zone
    kind: str  # safe | danger | service_area
    name: str = ""
    notify_subject: bool = False
    notify_admins: bool = False


@dataclass(frozen=True, slots=True)
class TrackFix:
    """A location fix of the subject, and every live zone that could contain it.

    ``gone`` names zones deleted since the subject may have entered them:
    they are dropped without an exit.
    """

    fix: Fix
    near: tuple[NearZone, ...] = ()
    gone: frozenset[UUID] = frozenset()


SubjectMessage = TrackFix

_EVENT_TYPES: Final = {
    FenceEvent.ENTER: EventType.GEOFENCE_ENTER,
    FenceEvent.EXIT: EventType.GEOFENCE_EXIT,
    FenceEvent.DWELL: EventType.GEOFENCE_DWELL,
}


@dataclass(frozen=True, slots=True)
class SubjectState:
    role: SubjectRole
    subject_id: UUID
    presence: Presence = NOWHERE
    #: The kind of each zone the subject is inside (for its exit event).
    kinds: Mapping[UUID, str] | None = None
    version: int = 0

    @property
    def key(self) -> str:
        return subject_key(self.role, self.subject_id)

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
        )


def decide(state: SubjectState, msg: object, now: datetime) -> Transition[SubjectState]:
    """Apply a fix; events and a snapshot only when the zones it is inside change."""
    codec.check_now(now)
    if not isinstance(msg, TrackFix):
        raise UnknownMessage("subject", type(msg).__name__)
    try:
        presence, crossings = track(
            state.presence, msg.fix, [near.zone for near in msg.near], msg.gone
        )
    except GeoError as exc:
        raise InvalidMessage(f"invalid fix: {exc}") from exc
    if presence.inside == state.presence.inside:
        return replace(state, presence=presence), ()  # memory only (the hot path)
    near = {n.zone.id: n for n in msg.near}
    old_kinds = state.kinds or {}
    kinds = {
        zone: near[zone].kind if zone in near else old_kinds.get(zone, "")
        for zone in presence.inside
    }
    new = replace(state, presence=presence, kinds=kinds, version=state.version + 1)
    effects: list[Effect] = [
        Persist(EntityKind.SUBJECT, new.key, new.version, new.to_snapshot(), coalesce=not crossings)
    ]
    pushes: list[Push] = []
    fix = msg.fix
    for crossing in crossings:
        zone = near.get(crossing.zone_id)
        kind = zone.kind if zone is not None else old_kinds.get(crossing.zone_id, "")
        data = {
            "zone_id": str(crossing.zone_id),
            "zone_kind": kind,
            "subject_id": str(state.subject_id),
            "subject_role": state.role.value,
            "event": crossing.event.value,
            "at": codec.iso(fix.recorded_at),
            "latitude": fix.latitude,
            "longitude": fix.longitude,
            "accuracy_m": fix.accuracy_m,
        }
        key = str(state.subject_id)
        effects.append(
            Emit(
                Topic.GEOFENCE_EVENTS,
                _EVENT_TYPES[crossing.event],
                key,
                key,
                data,
                fix.recorded_at,
            )
        )
        if zone is not None and crossing.event is FenceEvent.ENTER and zone.kind == "danger":
            alert = {**data, "zone_name": zone.name}
            if zone.notify_subject:
                audience = Audience(AudienceKind(state.role.value), state.subject_id)
                pushes.append(Push(audience, FrameType.GEOFENCE_ALERT, alert))
            if zone.notify_admins:
                pushes.append(Push(Audience.admins(), FrameType.GEOFENCE_ALERT, alert))
    return new, (*effects, *pushes)


def timer_message(name: str, payload: Mapping[str, Any]) -> object:
    raise UnknownMessage("subject", f"timer {name!r}")
