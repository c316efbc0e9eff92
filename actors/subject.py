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

The state is ``actors.subject_state``; geofencing is ``actors.subject_fences``
(durability, danger-zone rules, dwell timers) and check-ins are
``actors.subject_checkins``. While an agent responds to one of a user's
alerts (the alert says so with :class:`Responding`), each newer fix of the
user goes on to that alert, which shows it to the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from actors import codec
from actors.alert_messages import UserLocation
from actors.checkins import (
    CHECK_IN_DUE_TIMER,
    CheckInDue,
    CheckInMessage,
    CompleteCheckIn,
    CurrentCheckIn,
    StartCheckIn,
    due_message,
)
from actors.effects import (
    EntityKind,
    Reply,
    Send,
    Transition,
    with_sends,
)
from actors.errors import (
    InvalidMessage,
    UnknownMessage,
)
from actors.subject_checkins import (
    check_in_due,
    complete_check_in,
    start_check_in,
)
from actors.subject_fences import (
    DWELL_DUE_TIMER,
    DWELL_GRACE_S,
    DwellDue,
    TrackFix,
    dwell_due,
    dwell_message,
    dwell_timer_id,
    quiet_fix,
    track_zones,
)
from actors.subject_state import (
    NearZone,
    SubjectRole,
    SubjectState,
    parse_subject_key,
    persist,
    subject_key,
)
from geo.records import record


@record
class Responding:
    """From an alert entity to its user's subject: an agent started (``active``)
    or stopped responding to the alert. While one responds, each newer fix of the
    user goes on to the alert, which shows it to the agent (``alert.location``).
    Durable (sent with the alert's change); a duplicate is a no-op."""

    alert_id: UUID
    active: bool


SubjectMessage = TrackFix | DwellDue | CheckInMessage | Responding


def decide(state: SubjectState, msg: object, now: datetime) -> Transition[SubjectState]:
    """Apply a fix or a check-in message; see the module docstring for the rules."""
    codec.check_now(now)
    if isinstance(msg, TrackFix):
        return _track(state, msg, now)
    if isinstance(msg, DwellDue):
        return dwell_due(state, msg, now)
    if isinstance(msg, CurrentCheckIn):
        return state, (Reply(state.check_in),)
    if isinstance(msg, StartCheckIn):
        return start_check_in(state, msg, now)
    if isinstance(msg, CompleteCheckIn):
        return complete_check_in(state, msg, now)
    if isinstance(msg, CheckInDue):
        return check_in_due(state, msg, now)
    if isinstance(msg, Responding):
        return _responding(state, msg)
    raise UnknownMessage("subject", type(msg).__name__)


def shortcut(state: SubjectState, msg: object) -> SubjectState | None:
    """What :func:`decide` gives for ``msg`` when it is a fix that only moves where
    the subject was last seen (no effects at all), without deciding; None
    otherwise (``Behaviour.shortcut``: the runtime then decides)."""
    if type(msg) is TrackFix:
        return quiet_fix(state, msg)
    return None


def _track(state: SubjectState, msg: TrackFix, now: datetime) -> Transition[SubjectState]:
    """The zones' decision, and a newer fix passed on to the alerts an agent responds to."""
    new, effects = track_zones(state, msg, now)
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
    return new, (persist(new),)


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


__all__ = [
    "DWELL_DUE_TIMER",
    "DWELL_GRACE_S",
    "DwellDue",
    "NearZone",
    "Responding",
    "SubjectMessage",
    "SubjectRole",
    "SubjectState",
    "TrackFix",
    "decide",
    "dwell_timer_id",
    "parse_subject_key",
    "shortcut",
    "subject_key",
    "timer_message",
]
