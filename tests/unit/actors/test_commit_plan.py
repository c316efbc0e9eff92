"""actors.commit_plan.plan: what a transition commits, and what follows the commit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from actors.agent import Released
from actors.commit_plan import CommitPlan, plan
from actors.effects import (
    CancelTimer,
    Effect,
    Emit,
    EntityKind,
    EventType,
    Persist,
    Reply,
    ScheduleTimer,
    Send,
    Topic,
)
from actors.ports import MESSAGE_TIMER, StoredTimer

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
KEY = (EntityKind.ALERT, "a1")
AGENT = UUID(int=7)


def ids() -> Callable[[], str]:
    counter = iter(range(1, 100))
    return lambda: f"id{next(counter)}"


def persist(*, coalesce: bool = False) -> Persist:
    return Persist(EntityKind.ALERT, "a1", 2, {"v": 2}, coalesce)


def emit() -> Emit:
    return Emit(Topic.AUDIT_LOGS, EventType.ALERT_NOTIFIED, "a1", "a1", {}, NOW)


def timer(timer_id: str, due_in_s: float) -> ScheduleTimer:
    return ScheduleTimer(timer_id, "t", NOW + timedelta(seconds=due_in_s), {})


def stored(timer_id: str, due_in_s: float) -> StoredTimer:
    return StoredTimer(EntityKind.ALERT, "a1", timer_id, "t", NOW + timedelta(seconds=due_in_s), {})


def run(
    effects: tuple[Effect, ...],
    *,
    fired: StoredTimer | None = None,
    stored_due: dict[tuple[EntityKind, str, str], datetime] | None = None,
) -> CommitPlan:
    return plan(KEY, "state", effects, NOW, fired, stored_due or {}, ids())


def test_a_durable_transition_commits_snapshot_events_timers_and_stores_its_sends() -> None:
    send = Send(EntityKind.AGENT, AGENT, Released(UUID(int=1)))
    out = run((persist(), emit(), timer("x", 5), send, Reply("r")))
    assert out.batch.snapshots == [persist()]
    assert out.batch.events == [emit()]
    (message,) = [t for t in out.batch.timers if t.name == MESSAGE_TIMER]
    assert (message.kind, message.entity_id, message.due_at) == (EntityKind.AGENT, str(AGENT), NOW)
    assert message.payload["type"] == "Released"
    assert out.sends == [(send, message)]
    assert [t.timer_id for t in out.arm] == ["x"]
    assert out.coalesced is None
    assert out.reply == "r"


def test_a_coalesced_transition_commits_nothing_and_sends_best_effort() -> None:
    send = Send(EntityKind.AGENT, AGENT, Released(UUID(int=1)))
    out = run((persist(coalesce=True), send))
    assert not out.batch
    assert out.coalesced == persist(coalesce=True)
    assert out.sends == [(send, None)]


def test_a_coalesced_timer_is_stored_only_when_no_earlier_copy_is() -> None:
    effects = (persist(coalesce=True), timer("x", 10))
    assert [t.timer_id for t in run(effects).batch.timers] == ["x"]
    earlier = {(EntityKind.ALERT, "a1", "x"): NOW + timedelta(seconds=5)}
    assert run(effects, stored_due=earlier).batch.timers == []
    later = {(EntityKind.ALERT, "a1", "x"): NOW + timedelta(seconds=20)}
    assert len(run(effects, stored_due=later).batch.timers) == 1


def test_a_fired_timer_that_only_rearms_itself_keeps_its_stored_copy() -> None:
    fired = stored("x", -1)
    kept = run(
        (timer("x", 10),), fired=fired, stored_due={(EntityKind.ALERT, "a1", "x"): fired.due_at}
    )
    assert kept.batch.fired == []
    assert kept.batch.timers == []
    # A durable transition removes it, and stores the new one.
    removed = run((persist(), timer("x", 10)), fired=fired)
    assert removed.batch.fired == [fired]
    assert [t.timer_id for t in removed.batch.timers] == ["x"]


def test_a_cancel_deletes_only_a_stored_timer_and_always_disarms() -> None:
    stored_x = {(EntityKind.ALERT, "a1", "x"): NOW}
    out = run((persist(), CancelTimer("x"), CancelTimer("y")), stored_due=stored_x)
    assert out.batch.cancelled == [(EntityKind.ALERT, "a1", "x")]
    assert out.disarm == ["x", "y"]
