"""Check-ins in the subject machine (actors.subject, actors.checkins): start, complete,
arrive in a safe zone, miss (an alert, once), stale timers, snapshots; and a missed
check-in through the runtime's durable timer and send, to the alert entity."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from actors.alert import AlertState, AlertStatus, AlertType, CreateAlert
from actors.checkins import (
    CHECK_IN_DUE_TIMER,
    CheckIn,
    CheckInDue,
    CheckInStatus,
    CompleteCheckIn,
    CurrentCheckIn,
    StartCheckIn,
    check_in_timer_id,
    missed_alert_id,
)
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
from actors.errors import (
    CheckInRunning,
    EntityNotFound,
    InvalidMessage,
    InvalidTransition,
    NotPermitted,
)
from actors.kinds import behaviours
from actors.message_codec import decode_message, encode_message
from actors.runtime import EntityHost
from actors.subject import (
    NearZone,
    SubjectRole,
    SubjectState,
    TrackFix,
    decide,
    subject_key,
    timer_message,
)
from geo.cells import EARTH_RADIUS_M
from geo.fences import Fix, Zone
from tests.fakes.entities import FakeEntityStore, FakeLocalRouter, FakePushSink

T0 = datetime(2026, 11, 26, 20, 0, tzinfo=UTC)
LAT0, LON0 = 52.52, 13.405
M_LAT = 180 / math.pi / EARTH_RADIUS_M
M_LON = M_LAT / math.cos(math.radians(LAT0))
USER_ID = UUID(int=7)
KEY = subject_key(SubjectRole.USER, USER_ID)
CHECK_IN = UUID(int=0xC1)
START_LAT, START_LON = 52.50, 13.39


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def fix(east_m: float, seconds: float, accuracy: float = 5) -> Fix:
    return Fix(LAT0, LON0 + east_m * M_LON, accuracy, at(seconds))


def zone(kind: str = "safe", **rules: bool) -> NearZone:
    shape = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [LON0, LAT0]}, radius_m=200)
    return NearZone(shape, kind, name=f"{kind} zone", **rules)


def start(
    due_s: float = 1800, check_in_id: UUID = CHECK_IN, note: str | None = "home"
) -> StartCheckIn:
    return StartCheckIn(check_in_id, at(due_s), START_LAT, START_LON, 12.0, note)


def started(state: SubjectState | None = None, **kwargs: Any) -> SubjectState:
    state, _ = decide(state or SubjectState.new(KEY), start(**kwargs), T0)
    return state


def only(effects: tuple[Effect, ...], cls: type[Any]) -> Any:
    (found,) = [e for e in effects if isinstance(e, cls)]
    return found


def test_a_start_commits_the_check_in_with_its_event_and_arms_its_timer() -> None:
    state, effects = decide(SubjectState.new(KEY), start(), T0)
    assert [type(e) for e in effects] == [Persist, Emit, ScheduleTimer, Reply]
    persist, emit, timer, reply = effects
    assert isinstance(persist, Persist)
    assert not persist.coalesce
    assert persist.version == state.version == 1
    assert isinstance(emit, Emit)
    assert (emit.topic, emit.type, emit.key, emit.time) == (
        Topic.USER_EVENTS,
        EventType.CHECKIN_STARTED,
        str(USER_ID),
        T0,
    )
    assert emit.data["id"] == str(CHECK_IN)
    assert emit.data["status"] == "running"
    assert isinstance(timer, ScheduleTimer)
    assert (timer.timer_id, timer.name, timer.due_at) == (
        check_in_timer_id(CHECK_IN),
        CHECK_IN_DUE_TIMER,
        at(1800),
    )
    assert timer_message(timer.name, timer.payload) == CheckInDue(CHECK_IN)
    assert isinstance(reply, Reply)
    check_in = reply.value
    assert isinstance(check_in, CheckIn)
    assert (check_in.status, check_in.started_at, check_in.due_at, check_in.note) == (
        CheckInStatus.RUNNING,
        T0,
        at(1800),
        "home",
    )
    assert state.check_in == check_in
    _, (current,) = decide(state, CurrentCheckIn(), at(1))
    assert current == Reply(check_in)


def test_a_second_start_is_refused_while_one_runs_and_a_repeat_is_a_no_op() -> None:
    state = started()
    with pytest.raises(CheckInRunning) as refused:
        decide(state, start(check_in_id=uuid4()), at(5))
    assert refused.value.check_in_id == str(CHECK_IN)
    same, effects = decide(state, start(), at(5))
    assert same is state
    assert effects == (Reply(state.check_in),)


def test_bad_starts_are_refused() -> None:
    fresh = SubjectState.new(KEY)
    with pytest.raises(InvalidMessage):
        decide(fresh, start(due_s=0), T0)  # not in the future
    with pytest.raises(InvalidMessage):
        decide(fresh, StartCheckIn(CHECK_IN, at(60), 91.0, 0.0), T0)
    with pytest.raises(InvalidMessage):
        decide(fresh, start(note="x" * 501), T0)
    with pytest.raises(NotPermitted):
        decide(SubjectState.new(subject_key(SubjectRole.AGENT, USER_ID)), start(), T0)


def test_complete_ends_it_cancels_its_timer_and_then_refuses_with_its_status() -> None:
    state = started()
    state, effects = decide(state, CompleteCheckIn(CHECK_IN), at(600))
    assert [type(e) for e in effects] == [Persist, Emit, CancelTimer, Reply]
    assert only(effects, Emit).type is EventType.CHECKIN_COMPLETED
    assert only(effects, CancelTimer).timer_id == check_in_timer_id(CHECK_IN)
    done = only(effects, Reply).value
    assert (done.status, done.ended_at) == (CheckInStatus.COMPLETED, at(600))
    assert state.check_in is None
    assert state.ended == (done,)
    _, (current,) = decide(state, CurrentCheckIn(), at(601))
    assert current == Reply(None)
    with pytest.raises(InvalidTransition) as again:
        decide(state, CompleteCheckIn(CHECK_IN), at(602))
    assert (again.value.current, again.value.requested) == ("completed", "completed")
    with pytest.raises(EntityNotFound):
        decide(state, CompleteCheckIn(uuid4()), at(602))
    with pytest.raises(InvalidTransition):
        decide(state, start(), at(603))  # the same id does not run twice
    # A new one may start now.
    assert started(state, check_in_id=uuid4()).check_in is not None


def test_the_timer_of_a_running_check_in_misses_it_and_raises_one_alert() -> None:
    state = started(note="walking home through the park")
    state, _ = decide(state, TrackFix(fix(-5000, 300)), at(300))  # seen after the start
    state, effects = decide(state, CheckInDue(CHECK_IN), at(1800))
    assert [type(e) for e in effects] == [Persist, Emit, Send]
    emit = only(effects, Emit)
    assert (emit.topic, emit.type, emit.key) == (
        Topic.USER_EVENTS,
        EventType.CHECKIN_MISSED,
        str(USER_ID),
    )
    send = only(effects, Send)
    alert_id = missed_alert_id(CHECK_IN)
    assert alert_id == missed_alert_id(CHECK_IN)  # deterministic: uuid5 of the check-in
    assert (send.entity_kind, send.entity_id) == (EntityKind.ALERT, alert_id)
    create = send.message
    assert isinstance(create, CreateAlert)
    last = fix(-5000, 300)
    assert (create.alert_id, create.user_id, create.alert_type) == (
        alert_id,
        USER_ID,
        AlertType.PANIC,
    )
    assert (create.latitude, create.longitude, create.accuracy_m) == (
        last.latitude,
        last.longitude,
        last.accuracy_m,
    )
    assert create.description is not None
    assert "missed" in create.description
    assert "walking home through the park" in create.description
    assert decode_message(encode_message(create)) == create  # it can be sent durably
    assert emit.data["alert_id"] == str(alert_id)
    assert state.check_in is None
    (missed,) = state.ended
    assert (missed.status, missed.alert_id) == (CheckInStatus.MISSED, alert_id)
    # Fired again (a redelivery): nothing more.
    assert decide(state, CheckInDue(CHECK_IN), at(1801)) == (state, ())


def test_without_a_fix_after_the_start_the_alert_is_raised_where_it_started() -> None:
    state, _ = decide(SubjectState.new(KEY), TrackFix(fix(-5000, -60)), at(-60))
    state = started(state)
    _, effects = decide(state, CheckInDue(CHECK_IN), at(1800))
    create = only(effects, Send).message
    assert (create.latitude, create.longitude, create.accuracy_m) == (START_LAT, START_LON, 12.0)


def test_a_stale_or_early_timer_changes_nothing() -> None:
    state = started()
    done, _ = decide(state, CompleteCheckIn(CHECK_IN), at(60))
    assert decide(done, CheckInDue(CHECK_IN), at(1800)) == (done, ())
    other = started(done, check_in_id=uuid4())
    assert decide(other, CheckInDue(CHECK_IN), at(1800)) == (other, ())
    same, effects = decide(state, CheckInDue(CHECK_IN), at(1799))
    assert same is state
    assert [type(e) for e in effects] == [ScheduleTimer]  # armed again, nothing written


def test_entering_a_safe_zone_that_ends_check_ins_ends_it_with_the_enter_event() -> None:
    home = zone("safe", end_check_in=True)
    state, _ = decide(SubjectState.new(KEY), TrackFix(fix(-1000, -10), (home,)), at(-10))
    state = started(state)
    state, effects = decide(state, TrackFix(fix(0, 600), (home,)), at(600))
    assert [type(e) for e in effects] == [Persist, Emit, Emit, CancelTimer]
    persist = only(effects, Persist)
    assert not persist.coalesce
    enter, arrived = [e for e in effects if isinstance(e, Emit)]
    assert (enter.topic, enter.type) == (Topic.GEOFENCE_EVENTS, EventType.GEOFENCE_ENTER)
    assert (arrived.topic, arrived.type) == (Topic.USER_EVENTS, EventType.CHECKIN_ARRIVED)
    assert arrived.data["zone_id"] == str(home.zone.id)
    assert only(effects, CancelTimer).timer_id == check_in_timer_id(CHECK_IN)
    assert state.check_in is None
    (ended,) = state.ended
    assert (ended.status, ended.ended_at, ended.zone_id) == (
        CheckInStatus.ARRIVED,
        at(600),
        home.zone.id,
    )
    assert SubjectState.from_snapshot(persist.snapshot) == state  # one transition, one snapshot
    assert decide(state, CheckInDue(CHECK_IN), at(1800)) == (state, ())


@pytest.mark.parametrize(
    "near",
    [zone("safe"), zone("danger", end_check_in=True), zone("service_area", end_check_in=True)],
)
def test_other_zones_do_not_end_a_check_in(near: NearZone) -> None:
    state, _ = decide(SubjectState.new(KEY), TrackFix(fix(-1000, -10), (near,)), at(-10))
    state = started(state)
    state, effects = decide(state, TrackFix(fix(0, 600), (near,)), at(600))
    assert [e.type for e in effects if isinstance(e, Emit)] == [EventType.GEOFENCE_ENTER]
    assert not [e for e in effects if isinstance(e, CancelTimer)]
    assert state.check_in is not None
    assert state.check_in.running


def test_an_entry_recorded_before_the_start_or_a_baseline_does_not_end_it() -> None:
    home = zone("safe", end_check_in=True)
    state, _ = decide(SubjectState.new(KEY), TrackFix(fix(-1000, -20), (home,)), at(-20))
    state = started(state)
    late, _ = decide(state, TrackFix(fix(0, -5), (home,)), at(5))  # delayed fix
    assert late.check_in == state.check_in
    fresh = started()
    baseline, _ = decide(fresh, TrackFix(fix(0, 60), (home,)), at(60))  # already inside
    assert baseline.check_in == fresh.check_in


def test_while_a_check_in_runs_moves_are_kept_in_coalesced_snapshots() -> None:
    state, quiet = decide(SubjectState.new(KEY), TrackFix(fix(-5000, 1)), at(1))
    assert quiet == ()
    assert state.last_fix == fix(-5000, 1)
    state = started(state)
    moved, effects = decide(state, TrackFix(fix(-4000, 60)), at(60))
    (persist,) = effects
    assert isinstance(persist, Persist)
    assert persist.coalesce
    assert moved.version == state.version + 1
    assert SubjectState.from_snapshot(persist.snapshot).last_fix == fix(-4000, 60)
    older, none = decide(moved, TrackFix(fix(-3000, 30)), at(61))  # older than the last
    assert none == ()
    assert older.last_fix == fix(-4000, 60)


def test_snapshots_with_check_ins_round_trip() -> None:
    home = zone("safe", end_check_in=True)
    state, _ = decide(SubjectState.new(KEY), TrackFix(fix(-1000, -10), (home,)), at(-10))
    state = started(state)
    state, _ = decide(state, TrackFix(fix(0, 60), (home,)), at(60))  # arrived
    state = started(state, check_in_id=uuid4(), note=None)
    assert state.check_in is not None
    assert state.ended
    assert state.last_fix is not None
    assert SubjectState.from_snapshot(state.to_snapshot()) == state


def test_a_snapshot_from_before_check_ins_still_loads() -> None:
    old = {
        "schema": 1,
        "kind": "subject",
        "role": "user",
        "subject_id": str(USER_ID),
        "inside": {},
        "last_fix_at": at(0).isoformat(),
        "version": 3,
    }
    state = SubjectState.from_snapshot(old)
    assert (state.check_in, state.ended, state.last_fix, state.version) == (None, (), None, 3)
    assert started(state).version == 4


async def test_a_missed_check_in_raises_its_alert_through_the_runtime_once() -> None:
    """Real timers and a durable send on fake ports: the alert entity is created once."""
    store = FakeEntityStore()
    router = FakeLocalRouter()
    host = EntityHost(
        behaviours=behaviours(),
        store=store,
        pushes=FakePushSink(),
        router=router,
        clock=lambda: datetime.now(UTC),
        flush_interval=3600,
    )
    router.host = host
    await host.start()
    try:
        due = datetime.now(UTC) + timedelta(milliseconds=100)
        message = StartCheckIn(CHECK_IN, due, START_LAT, START_LON)
        check_in = await host.ask(EntityKind.SUBJECT, KEY, message)
        assert isinstance(check_in, CheckIn)
        assert (EntityKind.SUBJECT, KEY, check_in_timer_id(CHECK_IN)) in store.timers
        alert_id = str(missed_alert_id(CHECK_IN))
        async with asyncio.timeout(5):
            # The timer fires on the host's loop; nothing to wait on but its effect.
            while host.active_state(EntityKind.ALERT, alert_id) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await host.settle()
        alert = host.active_state(EntityKind.ALERT, alert_id)
        assert isinstance(alert, AlertState)
        assert (alert.status, alert.user_id) == (AlertStatus.DISPATCHING, USER_ID)
        created = [e for e in store.events if e.type is EventType.ALERT_CREATED]
        assert len(created) == 1
        assert [e.type for e in store.events if e.topic is Topic.USER_EVENTS] == [
            EventType.CHECKIN_STARTED,
            EventType.CHECKIN_MISSED,
        ]
        subject = host.active_state(EntityKind.SUBJECT, KEY)
        assert subject.ended[0].status is CheckInStatus.MISSED
        # Neither the due timer nor the stored send is left behind.
        assert not [t for t in store.timers if t[0] is EntityKind.SUBJECT]
        assert not [t for t in store.timers if t[2].startswith("msg:")]
        # A redelivered CreateAlert is a no-op on the alert.
        send = CreateAlert(
            missed_alert_id(CHECK_IN),
            USER_ID,
            AlertType.PANIC,
            START_LAT,
            START_LON,
            description=alert.description,
        )
        await host.ask(EntityKind.ALERT, alert_id, send)
        assert len([e for e in store.events if e.type is EventType.ALERT_CREATED]) == 1
    finally:
        await host.stop()
