"""What an alert's own user is shown of it: one pure projection of its state.

A user's device may be in the hands of the person they fear, so everything it
can read of an alert (``GET``, the listing, the timeline, ``alert.updated``
frames, resyncs) is built from :func:`user_view`, never from the truth:

* After a duress "cancel" (``duress_at``) the user is shown the alert exactly
  as a real cancel would have left it: the timeline up to the duress step,
  then a ``cancelled`` entry as ``decide`` writes one for a real cancel (same
  ``actor_id``, ``status``, ``previous_status``, ``note``), the status
  ``cancelled`` and the assignee of that moment. What responders do next is
  not shown.
* After too many wrong PINs (``coerced_at``: the alert was quietly escalated
  as possible coercion) the user is shown the alert as it was just before:
  the same status, assignee and timeline; nothing of the escalation.
* On a silent alert the user's device is shown nothing a responder says or
  estimates: no chat message but the user's own, no arrival estimate
  (``eta``). After a duress "cancel" nothing is pushed any more either
  (:func:`quiet`), and the timeline ends at the fake cancel as above, so what
  came before it is shown exactly as a real cancel leaves it.
* Entries only responders read (:data:`RESPONDER_ONLY`: refused PINs) are never
  shown, and neither are contact notices of a cancel (``notified`` with
  occasion ``cancelled``), which a duress "cancel" never sends. Notices of
  the raise (occasion ``raised``) are shown whenever they come, as after a
  real cancel.

``updated_at`` as shown is the time of the last entry shown, so it moves only
when something the user can see happens (every change appends an entry at
its ``updated_at``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from actors.alert_state import AlertState, AlertStatus, TimelineEntry, TimelineType

#: Timeline entries for responders and admins only.
RESPONDER_ONLY: frozenset[str] = frozenset(
    {
        TimelineType.PIN_REFUSED.value,
        # The user's app lists the files itself (``GET /media/alert/{id}``); in the
        # timeline they would show, or not, around a duress "cancel".
        TimelineType.MEDIA_ADDED.value,
        TimelineType.MEDIA_PROCESSED.value,
    }
)

#: The ``reason`` of the step that starts a hidden stretch of the timeline.
DURESS_REASON = "duress"
PIN_ATTEMPTS_REASON = "pin_attempts"
_HIDING: frozenset[str] = frozenset({DURESS_REASON, PIN_ATTEMPTS_REASON})

_ASSIGNING: frozenset[str] = frozenset({TimelineType.ACCEPTED.value, TimelineType.ASSIGNED.value})


def quiet(state: AlertState) -> bool:
    """Whether the user's device hears nothing from responders about this alert:
    a silent alert, or after a duress "cancel" (no ``alert.message`` from others,
    no ``alert.eta``, pushed or listed)."""
    return state.silent or state.duress_at is not None


def _shown(entry: TimelineEntry, hushed: bool = False) -> bool:
    if entry.type in RESPONDER_ONLY:
        return False
    if hushed and (
        entry.type == TimelineType.ETA
        or (entry.type == TimelineType.MESSAGE and entry.data.get("sender_role") != "user")
    ):
        return False
    return not (entry.type == TimelineType.NOTIFIED and entry.data.get("occasion") == "cancelled")


def _raise_notice(entry: TimelineEntry) -> bool:
    return entry.type == TimelineType.NOTIFIED and entry.data.get("occasion") == "raised"


def _cut(state: AlertState) -> int | None:
    """The index of the step from which the user is shown nothing (None: no such step)."""
    since = state.duress_at if state.duress_at is not None else state.coerced_at
    if since is None:
        return None
    for index, entry in enumerate(state.timeline):
        if entry.data.get("reason") in _HIDING and entry.at >= since:
            return index
    # A snapshot from before the marker was written: cut by time.
    for index, entry in enumerate(state.timeline):
        if entry.at >= since:
            return index
    return len(state.timeline)


def _status_of(before: Sequence[TimelineEntry]) -> AlertStatus:
    """The status after the last status move in ``before`` (dispatching if none)."""
    for entry in reversed(before):
        if entry.type == TimelineType.CREATED or "previous_status" in entry.data:
            return AlertStatus(entry.data.get("status", AlertStatus.DISPATCHING.value))
    return AlertStatus.DISPATCHING


def _assignee_of(before: Sequence[TimelineEntry]) -> UUID | None:
    agent: UUID | None = None
    for entry in before:
        if entry.type in _ASSIGNING:
            agent = UUID(str(entry.data["agent_id"]))
        elif entry.type == TimelineType.UNASSIGNED:
            agent = None
    return agent


def user_view(state: AlertState) -> AlertState:
    """The alert as its own user is shown it (see the module docstring). Pure."""
    cut = _cut(state)
    # Not quiet(): before a duress "cancel" the user saw the responders' words,
    # and a real cancel would leave them in the history.
    hushed = state.silent
    if cut is None:
        if all(_shown(entry, hushed) for entry in state.timeline):
            return state
        timeline = tuple(entry for entry in state.timeline if _shown(entry, hushed))
        return replace(state, timeline=timeline, updated_at=_last_at(state, timeline))
    before = state.timeline[:cut]
    after = tuple(entry for entry in state.timeline[cut + 1 :] if _raise_notice(entry))
    status = _status_of(before)
    shown = tuple(entry for entry in before if _shown(entry, hushed))
    offered_to = state.offered_to
    if state.duress_at is not None and cut < len(state.timeline):
        marker = state.timeline[cut]
        cancelled = TimelineEntry(
            at=marker.at,
            type=TimelineType.CANCELLED.value,
            actor_id=state.user_id,
            data={
                "status": AlertStatus.CANCELLED.value,
                "previous_status": status.value,
                "note": marker.data.get("note"),
            },
        )
        shown = (*shown, cancelled)
        status = AlertStatus.CANCELLED
        offered_to = ()
    timeline = (*shown, *after)
    return replace(
        state,
        status=status,
        assigned_agent_id=_assignee_of(before),
        offered_to=offered_to,
        timeline=timeline,
        updated_at=_last_at(state, timeline),
    )


def _last_at(state: AlertState, timeline: Sequence[TimelineEntry]) -> datetime:
    return max((entry.at for entry in timeline), default=state.created_at)
