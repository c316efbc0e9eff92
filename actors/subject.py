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

Check-ins (``actors.checkins``; users only): :class:`StartCheckIn` holds at
most one running check-in and arms a durable timer at its ``due_at``;
:class:`CompleteCheckIn` ends it (``completed``); entering (an ``enter``
crossing, recorded after the check-in started) a ``safe`` zone whose rules
say ``end_check_in`` ends it (``arrived``) in the same transition as the
``geofence.enter`` event; the timer firing while it still runs ends it
(``missed``) and sends ``CreateAlert`` durably to the alert entity, raised
where the user was last seen (the newest fix, if newer than the start; else
where the check-in started). Each end cancels the timer; a stale timer (the
check-in ended meanwhile) changes nothing. Every step is committed with its
``checkin.*`` event on ``user-events``, keyed by the user. While a check-in
runs, a fix that only moves the subject is a coalesced snapshot (not memory
only), so the last position survives passivation and restarts.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from actors import codec
from actors.alert_messages import UserLocation
from actors.checkins import (
    CHECK_IN_DUE_TIMER,
    MAX_ENDED,
    MAX_NOTE,
    CheckIn,
    CheckInDue,
    CheckInMessage,
    CheckInStatus,
    CompleteCheckIn,
    CurrentCheckIn,
    LastSeen,
    StartCheckIn,
    check_in_or_none,
    check_in_timer_id,
    due_message,
    ended_check_ins,
    missed_alert,
)
from actors.effects import (
    Audience,
    AudienceKind,
    CancelTimer,
    Effect,
    Emit,
    EntityKind,
    EventType,
    FrameType,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
    Send,
    Topic,
    Transition,
    with_sends,
)
from actors.errors import (
    CheckInRunning,
    EntityNotFound,
    InvalidMessage,
    InvalidTransition,
    NotPermitted,
    UnknownMessage,
)
from geo.cells import is_valid_point
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
    #: Safe zones: entering ends the subject's running check-in.
    end_check_in: bool = False


@dataclass(frozen=True, slots=True)
class TrackFix:
    """A location fix of the subject, and every live zone that could contain it.

    ``gone`` names zones deleted since the subject may have entered them:
    they are dropped without an exit.
    """

    fix: Fix
    near: tuple[NearZone, ...] = ()
    gone: frozenset[UUID] = frozenset()


@dataclass(frozen=True, slots=True)
class Responding:
    """From an alert entity to its user's subject: an agent started (``active``)
    or stopped responding to the alert. While one responds, each newer fix of the
    user goes on to the alert, which shows it to the agent (``alert.location``).
    Durable (sent with the alert's change); a duplicate is a no-op."""

    alert_id: UUID
    active: bool


#: The timer of a stay's dwell (one per zone the subject is inside).
DWELL_DUE_TIMER: Final = "dwell_due"
#: Least wait (seconds, at most the zone's ``dwell_s``) of a dwell timer armed
#: by a fix that arrived late: the fixes after it come first.
DWELL_GRACE_S: Final = 5.0


@dataclass(frozen=True, slots=True)
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


SubjectMessage = TrackFix | DwellDue | CheckInMessage | Responding

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
    #: The subject's newest fix: where a missed check-in's alert is raised.
    last_fix: Fix | None = None
    #: The running check-in (users only), and the last ended ones, newest last.
    check_in: CheckIn | None = None
    ended: tuple[CheckIn, ...] = ()
    #: The user's alerts an agent is responding to: each newer fix goes on to them.
    responding: frozenset[UUID] = frozenset()

    @property
    def key(self) -> str:
        return subject_key(self.role, self.subject_id)

    def moved(self, presence: Presence, last_fix: Fix | None) -> SubjectState:
        """This state with a new presence and last fix, all else kept: the hot path
        of every fix, built directly (``dataclasses.replace`` costs twice as much)."""
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


def decide(state: SubjectState, msg: object, now: datetime) -> Transition[SubjectState]:
    """Apply a fix or a check-in message; see the module docstring for the rules."""
    codec.check_now(now)
    if isinstance(msg, TrackFix):
        return _track(state, msg, now)
    if isinstance(msg, DwellDue):
        return _dwell_due(state, msg, now)
    if isinstance(msg, CurrentCheckIn):
        return state, (Reply(state.check_in),)
    if isinstance(msg, StartCheckIn):
        return _start(state, msg, now)
    if isinstance(msg, CompleteCheckIn):
        return _complete(state, msg, now)
    if isinstance(msg, CheckInDue):
        return _due(state, msg, now)
    if isinstance(msg, Responding):
        return _responding(state, msg)
    raise UnknownMessage("subject", type(msg).__name__)


def _persist(state: SubjectState, *, coalesce: bool = False) -> Persist:
    return Persist(EntityKind.SUBJECT, state.key, state.version, state.to_snapshot(), coalesce)


def _checkin_event(
    state: SubjectState, type_: EventType, data: Mapping[str, Any], at: datetime
) -> Emit:
    key = str(state.subject_id)
    return Emit(Topic.USER_EVENTS, type_, key, key, data, at)


def _end(state: SubjectState, ended: CheckIn) -> SubjectState:
    """``state`` without its running check-in, ``ended`` remembered (version unchanged)."""
    return replace(state, check_in=None, ended=(*state.ended, ended)[-MAX_ENDED:])


# --- fixes ----------------------------------------------------------------------------


def _track(state: SubjectState, msg: TrackFix, now: datetime) -> Transition[SubjectState]:
    """The zones' decision, and a newer fix passed on to the alerts an agent responds to."""
    new, effects = _track_zones(state, msg, now)
    if not state.responding or new.presence.last_fix_at == state.presence.last_fix_at:
        return new, effects
    fix = msg.fix
    location = UserLocation(fix.latitude, fix.longitude, fix.accuracy_m, fix.recorded_at)
    # Best effort, as positions are: durable only when the fix commits anyway.
    relay = tuple(Send(EntityKind.ALERT, a, location) for a in sorted(state.responding))
    return new, with_sends(effects, relay)


def _responding(state: SubjectState, msg: Responding) -> Transition[SubjectState]:
    if state.role is not SubjectRole.USER:
        raise InvalidMessage("only a user's subject relays to responders")
    if msg.active:
        responding = state.responding | {msg.alert_id}
    else:
        responding = state.responding - {msg.alert_id}
    if responding == state.responding:
        return state, ()  # a duplicate (at-least-once)
    new = replace(state, responding=responding, version=state.version + 1)
    return new, (_persist(new),)


def _track_zones(state: SubjectState, msg: TrackFix, now: datetime) -> Transition[SubjectState]:
    """Events and a snapshot only when the zones it is inside change (or a check-in runs)."""
    try:
        presence, crossings = track(
            state.presence, msg.fix, [near.zone for near in msg.near], msg.gone
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
        return moved, (_persist(moved, coalesce=True),)
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
        new = _end(new, arrived)
        view = arrived.view(state.subject_id)
        events.append(_checkin_event(new, EventType.CHECKIN_ARRIVED, view, fix.recorded_at))
        timers.append(CancelTimer(check_in_timer_id(running.id)))
    # A timer is durable: it commits with the state that armed it.
    persist = _persist(new, coalesce=not crossings and not timers)
    return new, (persist, *events, *timers, *pushes)


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


def _dwell_due(state: SubjectState, msg: DwellDue, now: datetime) -> Transition[SubjectState]:
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
    return new, (_persist(new), _fence_event(new, FenceEvent.DWELL, data, now))


# --- check-ins ------------------------------------------------------------------------


def _start(state: SubjectState, msg: StartCheckIn, now: datetime) -> Transition[SubjectState]:
    """A new running check-in and its due timer; a second one while one runs is refused."""
    if state.role is not SubjectRole.USER:
        raise NotPermitted("only users have check-ins")
    running = state.check_in
    if running is not None:
        if running.id == msg.check_in_id and _same_start(running, msg):
            return state, (Reply(running),)  # a repeated start
        raise CheckInRunning(str(running.id))
    for past in state.ended:
        if past.id == msg.check_in_id:
            raise InvalidTransition(
                past.status, CheckInStatus.RUNNING, entity="check-in", reason="it has ended"
            )
    if not is_valid_point(msg.latitude, msg.longitude):
        raise InvalidMessage(f"invalid check-in location ({msg.latitude!r}, {msg.longitude!r})")
    if msg.accuracy_m is not None and not msg.accuracy_m >= 0:
        raise InvalidMessage(f"accuracy_m must be >= 0, got {msg.accuracy_m!r}")
    if msg.due_at.tzinfo is None or msg.due_at.utcoffset() is None or msg.due_at <= now:
        raise InvalidMessage("a check-in must be due at a timezone-aware time in the future")
    if msg.note is not None and len(msg.note) > MAX_NOTE:
        raise InvalidMessage(f"a check-in note has at most {MAX_NOTE} characters")
    check_in = CheckIn(
        id=msg.check_in_id,
        started_at=now,
        due_at=msg.due_at,
        latitude=float(msg.latitude),
        longitude=float(msg.longitude),
        accuracy_m=None if msg.accuracy_m is None else float(msg.accuracy_m),
        note=msg.note,
    )
    new = replace(state, check_in=check_in, version=state.version + 1)
    view = check_in.view(state.subject_id)
    return new, (
        _persist(new),
        _checkin_event(new, EventType.CHECKIN_STARTED, view, now),
        _due_timer(check_in),
        Reply(check_in),
    )


def _same_start(running: CheckIn, msg: StartCheckIn) -> bool:
    return (
        running.due_at == msg.due_at
        and running.latitude == msg.latitude
        and running.longitude == msg.longitude
        and running.accuracy_m == msg.accuracy_m
        and running.note == msg.note
    )


def _due_timer(check_in: CheckIn) -> ScheduleTimer:
    payload = {"check_in_id": str(check_in.id)}
    return ScheduleTimer(
        check_in_timer_id(check_in.id), CHECK_IN_DUE_TIMER, check_in.due_at, payload
    )


def _complete(state: SubjectState, msg: CompleteCheckIn, now: datetime) -> Transition[SubjectState]:
    """The user checked in: the running check-in is ``completed`` and its timer cancelled.

    An ended one is refused with its status (a conflict); an id this user
    never started is not found.
    """
    running = state.check_in
    if running is None or running.id != msg.check_in_id:
        for past in state.ended:
            if past.id == msg.check_in_id:
                raise InvalidTransition(
                    past.status, CheckInStatus.COMPLETED, entity="check-in", reason="it has ended"
                )
        raise EntityNotFound("check-in", str(msg.check_in_id))
    completed = replace(running, status=CheckInStatus.COMPLETED, ended_at=now)
    new = replace(_end(state, completed), version=state.version + 1)
    view = completed.view(state.subject_id)
    return new, (
        _persist(new),
        _checkin_event(new, EventType.CHECKIN_COMPLETED, view, now),
        CancelTimer(check_in_timer_id(running.id)),
        Reply(completed),
    )


def _due(state: SubjectState, msg: CheckInDue, now: datetime) -> Transition[SubjectState]:
    """Missed: the check-in ends and an alert is raised, once (see ``actors.checkins``)."""
    running = state.check_in
    if running is None or running.id != msg.check_in_id:
        return state, ()  # stale: it was completed, arrived, or already missed
    if now < running.due_at:
        return state, (_due_timer(running),)  # early (another clock): wait for it again
    seen = _last_seen(state, running)
    alert = missed_alert(running, state.subject_id, seen)
    missed = replace(running, status=CheckInStatus.MISSED, ended_at=now, alert_id=alert.alert_id)
    new = replace(_end(state, missed), version=state.version + 1)
    data = {
        **missed.view(state.subject_id),
        "alert_latitude": seen.latitude,
        "alert_longitude": seen.longitude,
        "alert_accuracy_m": seen.accuracy_m,
    }
    return new, (
        _persist(new),
        _checkin_event(new, EventType.CHECKIN_MISSED, data, now),
        Send(EntityKind.ALERT, alert.alert_id, alert),
    )


def _last_seen(state: SubjectState, check_in: CheckIn) -> LastSeen:
    """The newest fix if it is newer than the check-in's start, else where it started."""
    fix = state.last_fix
    if fix is not None and fix.recorded_at >= check_in.started_at:
        return LastSeen(fix.latitude, fix.longitude, fix.accuracy_m)
    return LastSeen(check_in.latitude, check_in.longitude, check_in.accuracy_m)


def timer_message(
    name: str,
    payload: Mapping[str, Any],
    zone_gone: Callable[[UUID], bool] = lambda _zone: False,
) -> object:
    """Turn a due timer (as ``ScheduleTimer`` stored it) back into its message;
    ``zone_gone`` is the hosting shard's word on a dwell timer's zone."""
    if name == CHECK_IN_DUE_TIMER:
        return due_message(payload)
    if name == DWELL_DUE_TIMER:
        return dwell_message(payload, zone_gone)
    raise UnknownMessage("subject", f"timer {name!r}")
