"""What one transition's effects commit and carry out: the runtime's commit plan.

:func:`plan` sorts a transition's effects (``actors.effects``) into what the
host commits in ONE store transaction (snapshots, outbox events, timers,
durable sends) and what it carries out after that commit (pushes, sends,
searches, timers armed or disarmed in memory, the reply). Pure: the host
(``actors.runtime``) does the I/O. The rules:

* A transition is *durable* when it emits an event or persists a snapshot
  that is not coalescable; its snapshot, events, timers and sends then all
  commit together, and each send is stored as a message due at once on its
  recipient (at-least-once).
* Otherwise its snapshot is *coalesced* (kept in memory, flushed later), its
  sends are best effort, and a timer it arms is stored only when no earlier
  copy is stored (an early copy firing after a restart is a stale timer,
  which ``decide`` re-arms).
* A timer that fires and only arms itself again in such a transition keeps
  its stored copy; any other fired timer is removed with the transition.
* ``Defer`` parks the asker instead of replying; ``Answer`` replies to the
  askers parked under its token (after the commit, like a reply).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.effects import (
    Answer,
    CancelTimer,
    Defer,
    Effect,
    Emit,
    EntityKind,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
    Send,
)
from actors.message_codec import encode_message
from actors.ports import MESSAGE_TIMER, CommitBatch, StoredTimer
from actors.search import Search

Key = tuple[EntityKind, str]
TimerKey = tuple[EntityKind, str, str]


@dataclass(slots=True)
class CommitPlan:
    """One transition's effects, sorted: ``batch`` commits first, the rest after."""

    state: Any
    batch: CommitBatch
    #: The snapshot kept in memory (not durable) for the next flush.
    coalesced: Persist | None
    pushes: list[Push]
    #: Each send with its stored copy (None: best effort).
    sends: list[tuple[Send, StoredTimer | None]]
    searches: list[Search]
    #: Timers to arm and (by id) disarm in memory once committed.
    arm: list[StoredTimer]
    disarm: list[str]
    reply: object
    #: Keep the asker waiting under this token (``Defer``) instead of replying.
    defer: str | None = None
    #: ``(token, value)`` for the askers deferred earlier (``Answer``).
    answers: list[tuple[str, object]] = field(default_factory=list)


def plan(
    key: Key,
    state: Any,
    effects: Sequence[Effect],
    now: datetime,
    fired: StoredTimer | None,
    stored_due: Mapping[TimerKey, datetime],
    new_id: Callable[[], str],
) -> CommitPlan:
    """The commit plan of ``effects`` (see the module docstring).

    ``fired`` is the stored timer or message whose delivery caused the
    transition; ``stored_due`` the due time of each timer's stored copy;
    ``new_id`` names stored messages.
    """
    durable = any(
        isinstance(e, Emit) or (isinstance(e, Persist) and not e.coalesce) for e in effects
    )
    out = CommitPlan(state, CommitBatch(), None, [], [], [], [], [], None)
    # A timer that fires and only arms itself again (a search again, a
    # heartbeat not yet expired) keeps its stored copy, due earlier: like a
    # coalesced re-arm, no write; after a crash it fires early and the
    # entity decides again.
    keep_fired = (
        fired is not None
        and not durable
        and any(isinstance(e, ScheduleTimer) and e.timer_id == fired.timer_id for e in effects)
    )
    if fired is not None and not keep_fired:
        out.batch.fired.append(fired)
    kind, entity_id = key
    for effect in effects:
        if isinstance(effect, Persist):
            if durable:
                out.batch.snapshots.append(effect)
            else:
                out.coalesced = effect
        elif isinstance(effect, Emit):
            out.batch.events.append(effect)
        elif isinstance(effect, ScheduleTimer):
            timer = StoredTimer(
                kind, entity_id, effect.timer_id, effect.name, effect.due_at, effect.payload
            )
            out.arm.append(timer)
            stored = stored_due.get((kind, entity_id, effect.timer_id))
            if fired is not None and fired.timer_id == effect.timer_id and not keep_fired:
                stored = None  # this transition removes the stored copy
            if durable or stored is None or stored > effect.due_at:
                out.batch.timers.append(timer)
        elif isinstance(effect, CancelTimer):
            out.disarm.append(effect.timer_id)
            if (kind, entity_id, effect.timer_id) in stored_due:
                out.batch.cancelled.append((kind, entity_id, effect.timer_id))
        elif isinstance(effect, Send):
            stored_msg = None
            if durable:
                target = str(effect.entity_id)
                stored_msg = StoredTimer(
                    effect.entity_kind,
                    target,
                    f"msg:{new_id()}",
                    MESSAGE_TIMER,
                    now,
                    encode_message(effect.message),
                )
                out.batch.timers.append(stored_msg)
            out.sends.append((effect, stored_msg))
        elif isinstance(effect, Push):
            out.pushes.append(effect)
        elif isinstance(effect, Search):
            out.searches.append(effect)
        elif isinstance(effect, Reply):
            out.reply = effect.value
        elif isinstance(effect, Defer):
            out.defer = effect.token
        elif isinstance(effect, Answer):
            out.answers.append((effect.token, effect.value))
    return out
