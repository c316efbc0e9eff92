"""A subject's geofencing: fixes against the zones near them, and dwell timers.

Durability: a fix that changes nothing but the subject's last-fix time is
memory only (the hot path, no I/O). A fix that enters, leaves or dwells is
persisted together with its ``geofence.*`` events (outbox → Kafka
``geofence-events`` → MongoDB ``geofence_events``). A change of the inside
set without an event (a baseline in a new zone, a deleted zone dropped) is a
coalesced snapshot. After a restart the last-fix time may be older than the
last fix seen; a delayed fix in that window is taken as new.

Rules: entering a ``danger`` zone whose rules say so pushes a
``geofence.alert`` frame to the subject's sockets and/or the admins'.

Dwell: a stay that begins in a zone with ``dwell_s`` arms a durable timer at
``since + dwell_s`` (committed with the stay; the zone's ``dwell_s`` then
holds for that stay). A fix inside after that time gives the ``dwell`` as
before; if none comes (a phone that stops reporting once still), the timer
(:class:`DwellDue`) gives it, where the subject was last seen, at the time it
fires. Either way once per stay: the other finds the stay dwelt, and a stay
that ends or dwells by a fix disarms its timer. A timer whose zone the shard
knows deleted or deactivated by then gives nothing. A stay told late (an
offline phone's upload) waits ``DWELL_GRACE_S`` first, so the rest of the
upload, which may say it left, comes before its timer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from actors import codec
from actors.checkins import (
    CheckInStatus,
    check_in_timer_id,
)
from actors.effects import (
    Audience,
    AudienceKind,
    CancelTimer,
    Effect,
    Emit,
    EventType,
    FrameType,
    Push,
    ScheduleTimer,
    Topic,
    Transition,
)
from actors.errors import (
    InvalidMessage,
)
from actors.subject_checkins import (
    checkin_event,
    end_check_in,
)
from actors.subject_state import (
    NearZone,
    SubjectState,
    persist,
)
from geo.errors import GeoError
from geo.fences import FenceEvent, Fix, Inside, Presence, changes_nothing, track
from geo.records import by_position, record


@dataclass(slots=True, init=False, unsafe_hash=True)
class TrackFix:
    """A location fix of the subject, and every live zone that could contain it.

    ``gone`` names zones deleted since the subject may have entered them:
    they are dropped without an exit. ``where``, when the shard found it over
    its batch (``geo.fences.positions``), is the fix's position in each zone of
    ``near``: True inside, False outside, None straddling the boundary.
    """

    fix: Final[Fix]
    near: Final[tuple[NearZone, ...]]
    gone: Final[frozenset[UUID]]
    where: Final[tuple[bool | None, ...] | None]

    def __init__(
        self,
        fix: Fix,
        near: tuple[NearZone, ...] = (),
        gone: frozenset[UUID] = frozenset(),
        where: tuple[bool | None, ...] | None = None,
    ) -> None:
        self.fix = fix
        self.near = near
        self.gone = gone
        self.where = where

    def __reduce__(self) -> tuple[type[TrackFix], tuple[Any, ...]]:
        return TrackFix, by_position(self)


#: The timer of a stay's dwell (one per zone the subject is inside).
DWELL_DUE_TIMER: Final = "dwell_due"


#: Least wait (seconds, at most the zone's ``dwell_s``) of a dwell timer armed
#: by a fix that arrived late: the fixes after it come first.
DWELL_GRACE_S: Final = 5.0


@record
class DwellDue:
    """Timer message: the stay in ``zone_id`` that began at ``since`` has lasted
    ``dwell_s``; a dwell if the subject is still in that stay and has not dwelt."""

    zone_id: UUID
    since: datetime
    dwell_s: float
    #: The shard's zone book knows the zone deleted or deactivated (set when the
    #: timer fires, not stored): no dwell; the next fix drops the stay.
    zone_gone: bool = False


def dwell_timer_id(zone_id: UUID) -> str:
    """The subject-local id of the dwell timer of its stay in ``zone_id``."""
    return f"dwell:{zone_id}"


_EVENT_TYPES: Final = {
    FenceEvent.ENTER: EventType.GEOFENCE_ENTER,
    FenceEvent.EXIT: EventType.GEOFENCE_EXIT,
    FenceEvent.DWELL: EventType.GEOFENCE_DWELL,
}


def track_zones(state: SubjectState, msg: TrackFix, now: datetime) -> Transition[SubjectState]:
    """Events and a snapshot only when the zones it is inside change (or a check-in runs)."""
    try:
        presence, crossings = track(
            state.presence, msg.fix, [near.zone for near in msg.near], msg.gone, msg.where
        )
    except GeoError as exc:
        raise InvalidMessage(f"invalid fix: {exc}") from exc
    fix = msg.fix
    newer = presence.last_fix_at != state.presence.last_fix_at
    last_fix = fix if newer else state.last_fix
    if presence.inside == state.presence.inside:
        moved = state.moved(presence, last_fix)
        if not newer or state.check_in is None:
            return moved, ()  # memory only (the hot path)
        # A missed check-in raises its alert where the user was last seen: keep
        # the position in a coalesced snapshot, so passivation does not lose it.
        moved = replace(moved, version=state.version + 1)
        return moved, (persist(moved, coalesce=True),)
    near = {n.zone.id: n for n in msg.near}
    old_kinds = state.kinds or {}
    kinds = {
        zone: near[zone].kind if zone in near else old_kinds.get(zone, "")
        for zone in presence.inside
    }
    new = replace(
        state, presence=presence, kinds=kinds, last_fix=last_fix, version=state.version + 1
    )
    events: list[Effect] = []
    pushes: list[Push] = []
    arrived_in: UUID | None = None
    for crossing in crossings:
        zone = near.get(crossing.zone_id)
        kind = zone.kind if zone is not None else old_kinds.get(crossing.zone_id, "")
        data = _event_data(state, crossing.zone_id, kind, crossing.event, fix, fix.recorded_at)
        events.append(_fence_event(state, crossing.event, data, fix.recorded_at))
        if zone is None or crossing.event is not FenceEvent.ENTER:
            continue
        if zone.kind == "safe" and zone.end_check_in and arrived_in is None:
            arrived_in = crossing.zone_id
        if zone.kind == "danger":
            alert = {**data, "zone_name": zone.name}
            if zone.notify_subject:
                audience = Audience(AudienceKind(state.role.value), state.subject_id)
                pushes.append(Push(audience, FrameType.GEOFENCE_ALERT, alert))
            if zone.notify_admins:
                pushes.append(Push(Audience.admins(), FrameType.GEOFENCE_ALERT, alert))
    timers: list[Effect] = _dwell_timers(state.presence, presence, near, now)
    running = state.check_in
    # An entry recorded before the check-in started (a delayed fix) does not end it.
    if arrived_in is not None and running is not None and fix.recorded_at >= running.started_at:
        arrived = replace(
            running, status=CheckInStatus.ARRIVED, ended_at=fix.recorded_at, zone_id=arrived_in
        )
        new = end_check_in(new, arrived)
        view = arrived.view(state.subject_id)
        events.append(checkin_event(new, EventType.CHECKIN_ARRIVED, view, fix.recorded_at))
        timers.append(CancelTimer(check_in_timer_id(running.id)))
    # A timer is durable: it commits with the state that armed it.
    snapshot = persist(new, coalesce=not crossings and not timers)
    return new, (snapshot, *events, *timers, *pushes)


def quiet_fix(state: SubjectState, msg: TrackFix) -> SubjectState | None:
    """The state :func:`track_zones` gives for ``msg`` when that is all it gives (no
    event, no snapshot: the fix only moves where the subject was last seen), or
    None when it must decide (a change of zones, a running check-in, an alert
    being responded to, a fix that is not a valid point). The runtime's shortcut
    for most fixes (``Behaviour.shortcut``): no new presence, no effects built."""
    fix = msg.fix
    if not changes_nothing(state.presence, fix, [near.zone for near in msg.near], msg.where):
        return None
    last = state.presence.last_fix_at
    if last is not None and fix.recorded_at <= last:
        return state  # older than the last: ignored
    if state.check_in is not None or state.responding:
        return None
    return state.moved(Presence(state.presence.inside, fix.recorded_at), fix)


def _event_data(
    state: SubjectState,
    zone_id: UUID,
    kind: str,
    event: FenceEvent,
    fix: Fix,
    at: datetime,
) -> dict[str, Any]:
    """A ``geofence.*`` event's data: the zone, the subject, and where it was."""
    return {
        "zone_id": str(zone_id),
        "zone_kind": kind,
        "subject_id": str(state.subject_id),
        "subject_role": state.role.value,
        "event": event.value,
        "at": codec.iso(at),
        "latitude": fix.latitude,
        "longitude": fix.longitude,
        "accuracy_m": fix.accuracy_m,
    }


def _fence_event(
    state: SubjectState, event: FenceEvent, data: Mapping[str, Any], at: datetime
) -> Emit:
    key = str(state.subject_id)
    return Emit(Topic.GEOFENCE_EVENTS, _EVENT_TYPES[event], key, key, data, at)


def _dwell_timers(
    before: Presence, after: Presence, near: Mapping[UUID, NearZone], now: datetime
) -> list[Effect]:
    """Arm a dwell timer for each new stay in a zone with ``dwell_s`` (its value
    now holds for the stay), and disarm it when a stay ends or dwells by a fix.

    A stay told late (an offline phone's upload) is not due at once: its timer
    waits ``DWELL_GRACE_S`` (or ``dwell_s`` if shorter) from now, so the rest
    of the upload, which may say it left, comes first.
    """
    timers: list[Effect] = []
    for zone_id, stay in after.inside.items():
        old = before.inside.get(zone_id)
        zone = near.get(zone_id)
        dwell_s = None if zone is None else zone.zone.dwell_s
        if old is None and not stay.dwelled and dwell_s is not None:
            due = DwellDue(zone_id, stay.since, dwell_s)
            grace = now + timedelta(seconds=min(dwell_s, DWELL_GRACE_S))
            timers.append(_dwell_timer(due, max(_due_at(due), grace)))
    for zone_id, prior in before.inside.items():
        if prior.dwelled:
            continue  # no timer left to disarm
        now_in = after.inside.get(zone_id)
        near_zone = near.get(zone_id)
        if near_zone is not None and near_zone.zone.dwell_s is None:
            continue  # never armed (a zone's dwell_s holds for the stay it began)
        if now_in is None or now_in.dwelled:
            timers.append(CancelTimer(dwell_timer_id(zone_id)))
    return timers


def _due_at(msg: DwellDue) -> datetime:
    return msg.since + timedelta(seconds=msg.dwell_s)


def _dwell_timer(msg: DwellDue, due_at: datetime | None = None) -> ScheduleTimer:
    """The stay's dwell timer, due when it has lasted ``dwell_s`` (or at ``due_at``,
    later); it delivers ``msg``."""
    payload = {"zone_id": str(msg.zone_id), "since": codec.iso(msg.since), "dwell_s": msg.dwell_s}
    due = _due_at(msg) if due_at is None else due_at
    return ScheduleTimer(dwell_timer_id(msg.zone_id), DWELL_DUE_TIMER, due, payload)


def dwell_message(
    payload: Mapping[str, Any], zone_gone: Callable[[UUID], bool] = lambda _zone: False
) -> DwellDue:
    """The message of a due :data:`DWELL_DUE_TIMER` timer; ``zone_gone`` says
    whether its zone is known deleted or deactivated by now."""
    try:
        zone_id = codec.parse_uuid(payload["zone_id"])
        return DwellDue(
            zone_id,
            codec.parse_dt(payload["since"]),
            codec.parse_float(payload["dwell_s"]),
            zone_gone(zone_id),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise InvalidMessage(f"bad dwell timer payload: {exc}") from exc


def dwell_due(state: SubjectState, msg: DwellDue, now: datetime) -> Transition[SubjectState]:
    """A stay lasted its zone's ``dwell_s`` with no fix to tell: its ``dwell``, once.

    Stale (the stay ended, a new one began, or a fix already gave the dwell):
    nothing. Early (another clock): armed again. The event is where the
    subject was last seen, at the time the timer fired.
    """
    stay = state.presence.inside.get(msg.zone_id)
    seen = state.last_fix
    if stay is None or stay.since != msg.since or stay.dwelled or seen is None or msg.zone_gone:
        return state, ()
    if now < _due_at(msg):
        return state, (_dwell_timer(msg),)
    inside = {**state.presence.inside, msg.zone_id: Inside(stay.since, True)}
    new = replace(
        state, presence=Presence(inside, state.presence.last_fix_at), version=state.version + 1
    )
    kind = (state.kinds or {}).get(msg.zone_id, "")
    data = _event_data(state, msg.zone_id, kind, FenceEvent.DWELL, seen, now)
    return new, (persist(new), _fence_event(new, FenceEvent.DWELL, data, now))
