"""A user's check-ins, as transitions of their subject entity.

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

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from actors.checkins import (
    CHECK_IN_DUE_TIMER,
    MAX_ENDED,
    MAX_NOTE,
    CheckIn,
    CheckInDue,
    CheckInStatus,
    CompleteCheckIn,
    LastSeen,
    StartCheckIn,
    check_in_timer_id,
    missed_alert,
)
from actors.effects import (
    CancelTimer,
    Emit,
    EntityKind,
    EventType,
    Reply,
    ScheduleTimer,
    Send,
    Topic,
    Transition,
)
from actors.errors import (
    CheckInRunning,
    EntityNotFound,
    InvalidMessage,
    InvalidTransition,
    NotPermitted,
)
from actors.subject_state import (
    SubjectRole,
    SubjectState,
    persist,
)
from geo.cells import is_valid_point


def checkin_event(
    state: SubjectState, type_: EventType, data: Mapping[str, Any], at: datetime
) -> Emit:
    key = str(state.subject_id)
    return Emit(Topic.USER_EVENTS, type_, key, key, data, at)


def end_check_in(state: SubjectState, ended: CheckIn) -> SubjectState:
    """``state`` without its running check-in, ``ended`` remembered (version unchanged)."""
    return replace(state, check_in=None, ended=(*state.ended, ended)[-MAX_ENDED:])


def start_check_in(
    state: SubjectState, msg: StartCheckIn, now: datetime
) -> Transition[SubjectState]:
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
        persist(new),
        checkin_event(new, EventType.CHECKIN_STARTED, view, now),
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


def complete_check_in(
    state: SubjectState, msg: CompleteCheckIn, now: datetime
) -> Transition[SubjectState]:
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
    new = replace(end_check_in(state, completed), version=state.version + 1)
    view = completed.view(state.subject_id)
    return new, (
        persist(new),
        checkin_event(new, EventType.CHECKIN_COMPLETED, view, now),
        CancelTimer(check_in_timer_id(running.id)),
        Reply(completed),
    )


def check_in_due(state: SubjectState, msg: CheckInDue, now: datetime) -> Transition[SubjectState]:
    """Missed: the check-in ends and an alert is raised, once (see ``actors.checkins``)."""
    running = state.check_in
    if running is None or running.id != msg.check_in_id:
        return state, ()  # stale: it was completed, arrived, or already missed
    if now < running.due_at:
        return state, (_due_timer(running),)  # early (another clock): wait for it again
    seen = _last_seen(state, running)
    alert = missed_alert(running, state.subject_id, seen)
    missed = replace(running, status=CheckInStatus.MISSED, ended_at=now, alert_id=alert.alert_id)
    new = replace(end_check_in(state, missed), version=state.version + 1)
    data = {
        **missed.view(state.subject_id),
        "alert_latitude": seen.latitude,
        "alert_longitude": seen.longitude,
        "alert_accuracy_m": seen.accuracy_m,
    }
    return new, (
        persist(new),
        checkin_event(new, EventType.CHECKIN_MISSED, data, now),
        Send(EntityKind.ALERT, alert.alert_id, alert),
    )


def _last_seen(state: SubjectState, check_in: CheckIn) -> LastSeen:
    """The newest fix if it is newer than the check-in's start, else where it started."""
    fix = state.last_fix
    if fix is not None and fix.recorded_at >= check_in.started_at:
        return LastSeen(fix.latitude, fix.longitude, fix.accuracy_m)
    return LastSeen(check_in.latitude, check_in.longitude, check_in.accuracy_m)
