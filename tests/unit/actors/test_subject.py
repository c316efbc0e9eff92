"""The subject-tracker machine (actors.subject): events, durability, rules, snapshots."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

import pytest

from actors.checkins import StartCheckIn
from actors.effects import (
    AudienceKind,
    CancelTimer,
    Emit,
    EntityKind,
    EventType,
    FrameType,
    Persist,
    Push,
    ScheduleTimer,
    Topic,
)
from actors.errors import InvalidMessage, UnknownMessage
from actors.kinds import behaviours
from actors.subject import (
    DWELL_DUE_TIMER,
    DWELL_GRACE_S,
    DwellDue,
    NearZone,
    Responding,
    SubjectRole,
    SubjectState,
    TrackFix,
    decide,
    dwell_timer_id,
    shortcut,
    subject_key,
    timer_message,
)
from geo.cells import EARTH_RADIUS_M
from geo.fences import Fix, Presence, Zone

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
LAT0, LON0 = 52.52, 13.405
M_LAT = 180 / math.pi / EARTH_RADIUS_M
M_LON = M_LAT / math.cos(math.radians(LAT0))
USER_ID = UUID(int=7)
T = TypeVar("T")


def fix(east_m: float, seconds: float, accuracy: float = 5) -> Fix:
    return Fix(LAT0, LON0 + east_m * M_LON, accuracy, T0 + timedelta(seconds=seconds))


def circle(kind: str = "safe", **rules: bool) -> NearZone:
    zone = Zone.from_geojson(uuid4(), {"type": "Point", "coordinates": [LON0, LAT0]}, radius_m=200)
    return NearZone(zone, kind, name=f"{kind} zone", **rules)


def walk(
    near: NearZone, path: list[float], state: SubjectState | None = None
) -> tuple[SubjectState, list[object]]:
    state = state or SubjectState.new(subject_key(SubjectRole.USER, USER_ID))
    effects: list[object] = []
    for n, east in enumerate(path):
        state, new = decide(state, TrackFix(fix(east, n), (near,)), T0)
        effects += new
    return state, effects


def test_entering_a_zone_persists_with_its_event_and_quiet_fixes_write_nothing() -> None:
    zone = circle()
    state, effects = walk(zone, [-1000, -900, 0])
    assert [type(e) for e in effects] == [Persist, Emit]
    persist, emit = effects
    assert isinstance(persist, Persist)
    assert not persist.coalesce
    assert isinstance(emit, Emit)
    assert (emit.topic, emit.type, emit.key) == (
        Topic.GEOFENCE_EVENTS,
        EventType.GEOFENCE_ENTER,
        str(USER_ID),
    )
    assert emit.data["zone_id"] == str(zone.zone.id)
    assert emit.data["subject_role"] == "user"
    assert emit.data["zone_kind"] == "safe"
    assert emit.time == T0 + timedelta(seconds=2)
    # More fixes inside: memory only.
    state, quiet = decide(state, TrackFix(fix(10, 5), (zone,)), T0)
    assert quiet == ()
    assert state.presence.last_fix_at == T0 + timedelta(seconds=5)


def test_an_exit_far_from_the_zone_still_names_its_kind() -> None:
    zone = circle("danger")
    state, _ = walk(zone, [-1000, 0])
    _, effects = decide(state, TrackFix(fix(60_000, 60), ()), T0)
    (emit,) = [e for e in effects if isinstance(e, Emit)]
    assert (emit.type, emit.data["zone_kind"]) == (EventType.GEOFENCE_EXIT, "danger")


def test_a_danger_zone_tells_whom_its_rules_name_on_entry() -> None:
    _, effects = walk(circle("danger", notify_subject=True, notify_admins=True), [-1000, 0])
    pushes = [e for e in effects if isinstance(e, Push)]
    assert [(p.audience.kind, p.frame_type) for p in pushes] == [
        (AudienceKind.USER, FrameType.GEOFENCE_ALERT),
        (AudienceKind.ADMINS, FrameType.GEOFENCE_ALERT),
    ]
    assert pushes[0].audience.id == USER_ID
    assert pushes[0].data["zone_name"] == "danger zone"
    _, silent = walk(circle("danger"), [-1000, 0])
    assert not [e for e in silent if isinstance(e, Push)]
    _, safe = walk(circle("safe", notify_subject=True), [-1000, 0])
    assert not [e for e in safe if isinstance(e, Push)]


def test_a_baseline_is_a_coalesced_snapshot_without_events() -> None:
    _, effects = walk(circle(), [0])
    assert [type(e) for e in effects] == [Persist]
    assert isinstance(effects[0], Persist)
    assert effects[0].coalesce


def test_snapshots_round_trip() -> None:
    state, _ = walk(circle("danger"), [-1000, 0])
    assert SubjectState.from_snapshot(state.to_snapshot()) == state


def test_bad_ids_fixes_and_messages_are_refused() -> None:
    with pytest.raises(InvalidMessage):
        SubjectState.new("robot:123")
    with pytest.raises(InvalidMessage):
        SubjectState.new(f"user:{USER_ID}x")
    state = SubjectState.new(subject_key("agent", USER_ID))
    with pytest.raises(InvalidMessage):
        decide(state, TrackFix(Fix(91.0, 0.0, 5, T0)), T0)
    with pytest.raises(UnknownMessage):
        decide(state, "hello", T0)


def test_a_move_keeps_every_field_but_presence_and_last_fix() -> None:
    state, _ = walk(circle("danger"), [-1000, 0])
    state = replace(state, version=9, ended=("a check-in",), check_in="running")  # type: ignore[arg-type]
    later = fix(5, 60)
    presence = Presence({}, later.recorded_at)
    moved = state.moved(presence, later)
    for name in (f.name for f in fields(SubjectState)):
        expected = {"presence": presence, "last_fix": later}.get(name, getattr(state, name))
        assert getattr(moved, name) is expected, name


# --- dwell by timer ----------------------------------------------------------------------


def dwelling(dwell_s: float = 60) -> NearZone:
    zone = Zone.from_geojson(
        uuid4(), {"type": "Point", "coordinates": [LON0, LAT0]}, radius_m=200, dwell_s=dwell_s
    )
    return NearZone(zone, "danger", name="loiter zone")


def only(effects: object, kind: type[T]) -> list[T]:
    assert isinstance(effects, tuple | list)
    return [e for e in effects if isinstance(e, kind)]


def test_an_entry_arms_the_stays_dwell_timer_committed_with_it() -> None:
    zone = dwelling(60)
    _, effects = walk(zone, [-1000, 0])  # enter at T0 + 1 s
    (timer,) = only(effects, ScheduleTimer)
    assert (timer.timer_id, timer.name) == (dwell_timer_id(zone.zone.id), DWELL_DUE_TIMER)
    assert timer.due_at == T0 + timedelta(seconds=61)
    (persist,) = only(effects, Persist)
    assert not persist.coalesce
    # The stored timer turns back into the message it was armed with.
    message = timer_message(timer.name, timer.payload)
    assert message == DwellDue(zone.zone.id, T0 + timedelta(seconds=1), 60)


def test_a_stay_without_fixes_dwells_once_when_its_timer_fires() -> None:
    zone = dwelling(60)
    state, effects = walk(zone, [-1000, 0])
    (timer,) = only(effects, ScheduleTimer)
    due = timer_message(timer.name, timer.payload)
    fired_at = T0 + timedelta(seconds=62)
    state, effects = decide(state, due, fired_at)
    (emit,) = only(effects, Emit)
    assert (emit.type, emit.time, emit.data["event"]) == (
        EventType.GEOFENCE_DWELL,
        fired_at,
        "dwell",
    )
    # Where the subject was last seen, and the zone's kind from the entry.
    assert (emit.data["latitude"], emit.data["zone_kind"]) == (LAT0, "danger")
    (persist,) = only(effects, Persist)
    assert not persist.coalesce
    assert state.presence.inside[zone.zone.id].dwelled
    # Fired again (a redelivery), or a fix later inside: no second dwell.
    assert decide(state, due, fired_at + timedelta(seconds=5))[1] == ()
    _, later = decide(state, TrackFix(fix(5, 120), (zone,)), T0)
    assert only(later, Emit) == []


def test_a_stale_or_early_dwell_timer_changes_nothing_or_waits() -> None:
    zone = dwelling(60)
    state, effects = walk(zone, [-1000, 0])
    (timer,) = only(effects, ScheduleTimer)
    due = timer_message(timer.name, timer.payload)
    # Early by the entity's clock: armed again for the same time, nothing else.
    same, early = decide(state, due, T0 + timedelta(seconds=30))
    assert same is state
    assert [(type(e), getattr(e, "due_at", None)) for e in early] == [(ScheduleTimer, timer.due_at)]
    # Left and came back: the old stay's timer is stale for the new stay.
    out, left = decide(state, TrackFix(fix(-1000, 10), (zone,)), T0)
    assert only(left, CancelTimer) == [CancelTimer(dwell_timer_id(zone.zone.id))]
    back, entered = decide(out, TrackFix(fix(0, 20), (zone,)), T0)
    (rearmed,) = only(entered, ScheduleTimer)
    assert rearmed.due_at == T0 + timedelta(seconds=80)
    assert decide(back, due, T0 + timedelta(seconds=70))[1] == ()


def test_a_dwell_told_by_a_fix_disarms_the_timer() -> None:
    zone = dwelling(60)
    state, _ = walk(zone, [-1000, 0])
    state, effects = decide(state, TrackFix(fix(5, 70), (zone,)), T0)
    assert [e.type for e in only(effects, Emit)] == [EventType.GEOFENCE_DWELL]
    assert only(effects, CancelTimer) == [CancelTimer(dwell_timer_id(zone.zone.id))]
    assert only(effects, ScheduleTimer) == []


def test_zones_without_dwell_arm_and_disarm_no_timers() -> None:
    zone = circle()
    _, effects = walk(zone, [-1000, 0, -1000])
    assert only(effects, ScheduleTimer) == []
    assert only(effects, CancelTimer) == []


def test_a_bad_dwell_timer_payload_is_refused() -> None:
    with pytest.raises(InvalidMessage):
        timer_message(DWELL_DUE_TIMER, {"zone_id": "nope", "since": "x", "dwell_s": 1})
    with pytest.raises(InvalidMessage):
        timer_message(DWELL_DUE_TIMER, {"zone_id": str(uuid4())})


def test_a_dwell_timer_whose_zone_is_gone_gives_nothing() -> None:
    zone = dwelling(60)
    state, effects = walk(zone, [-1000, 0])
    (timer,) = only(effects, ScheduleTimer)
    due = timer_message(timer.name, timer.payload, zone_gone=lambda z: z == zone.zone.id)
    assert isinstance(due, DwellDue)
    assert due.zone_gone
    assert decide(state, due, T0 + timedelta(seconds=70)) == (state, ())
    # The shard's word reaches the message through the subject's behaviour.
    told = behaviours(zone_gone=lambda _z: True)[EntityKind.SUBJECT].timer_message
    assert told(timer.name, timer.payload) == replace(due, zone_gone=True)
    live = behaviours()[EntityKind.SUBJECT].timer_message(timer.name, timer.payload)
    assert live == replace(due, zone_gone=False)


def test_a_stay_told_late_waits_a_grace_for_the_rest_of_the_upload() -> None:
    zone = dwelling(60)
    state = SubjectState.new(subject_key(SubjectRole.USER, USER_ID))
    late = T0 + timedelta(minutes=10)  # the phone uploads what it recorded at T0
    state, _ = decide(state, TrackFix(fix(-1000, 0), (zone,)), late)
    state, effects = decide(state, TrackFix(fix(0, 1), (zone,)), late)
    (timer,) = only(effects, ScheduleTimer)
    assert timer.due_at == late + timedelta(seconds=DWELL_GRACE_S)
    # The upload's next fix says it left: the timer is disarmed, no dwell.
    state, effects = decide(state, TrackFix(fix(-1000, 2), (zone,)), late)
    assert only(effects, CancelTimer) == [CancelTimer(dwell_timer_id(zone.zone.id))]
    due = timer_message(timer.name, timer.payload)
    assert decide(state, due, late + timedelta(seconds=DWELL_GRACE_S)) == (state, ())
    # A zone whose dwell_s is shorter than the grace waits only that long.
    quick = dwelling(2)
    fresh = SubjectState.new(subject_key(SubjectRole.USER, USER_ID))
    fresh, _ = decide(fresh, TrackFix(fix(-1000, 0), (quick,)), late)
    _, effects = decide(fresh, TrackFix(fix(0, 1), (quick,)), late)
    (timer,) = only(effects, ScheduleTimer)
    assert timer.due_at == late + timedelta(seconds=2)


# --- the hot path's shortcut -------------------------------------------------------------


def test_the_shortcut_gives_what_decide_gives_whenever_a_fix_only_moves_the_subject() -> None:
    """``shortcut`` (``Behaviour.shortcut``, the runtime's hot path) against ``decide`` on
    random walks around overlapping zones, with and without a running check-in or
    an alert being responded to: whenever it answers, ``decide`` gives that state
    and no effect; for a plain subject it answers exactly when ``decide`` has no effect."""
    rng = random.Random(11)
    zones = [circle(), circle("danger", notify_subject=True), dwelling(5), dwelling(0)]
    starts = [
        SubjectState.new(subject_key(SubjectRole.USER, USER_ID)),
        decide(
            SubjectState.new(subject_key(SubjectRole.USER, USER_ID)),
            StartCheckIn(UUID(int=0xC1), T0 + timedelta(hours=1), LAT0, LON0, 10.0, None),
            T0,
        )[0],
        decide(
            SubjectState.new(subject_key(SubjectRole.USER, USER_ID)),
            Responding(UUID(int=0xA1), True),
            T0,
        )[0],
    ]
    tally: Counter[str] = Counter()
    for start in starts:
        state = start
        seconds = 0.0
        for _ in range(3000):
            seconds += rng.choice([-2.0, 0.0, 0.5, 1.0, 3.0, 7.0])
            east = rng.uniform(-450, 450)
            near = tuple(z for z in zones if rng.random() < 0.9)
            msg = TrackFix(fix(east, seconds, rng.choice([0, 5, 30, 150])), near)
            settled = shortcut(state, msg)
            new, effects = decide(state, msg, T0)
            if settled is not None:
                assert effects == ()
                assert settled == new
                tally["settled"] += 1
            elif start is starts[0]:
                assert effects != ()
                tally["decided"] += 1
            state = new
    assert tally["settled"] > 1000, tally
    assert tally["decided"] > 100, tally
    assert shortcut(starts[0], DwellDue(zones[2].zone.id, T0, 5)) is None  # only fixes
