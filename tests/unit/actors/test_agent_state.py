"""The agent machine: availability, heartbeat expiry, fixes, assignment, presence."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from actors_kit import AGENT_A, LAT, LON, Clock, assert_effect_order, of_type

from actors import agent
from actors.agent import (
    HEARTBEAT_EXPIRED_TIMER,
    HEARTBEAT_TIMER_ID,
    AgentPolicy,
    AgentState,
    Assigned,
    Availability,
    Heartbeat,
    HeartbeatExpired,
    LocationFix,
    Reinstate,
    Released,
    SetStatus,
    SocketClosed,
    SocketOpened,
    Suspend,
    TakeOffer,
    timer_message,
)
from actors.alert_messages import AcceptOffer, AgentLocation, Unassign
from actors.alert_state import AlertStatus
from actors.effects import (
    Answer,
    CancelTimer,
    Defer,
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
    AlreadyAssigned,
    InvalidMessage,
    InvalidTransition,
    NoPendingOffer,
    NotPermitted,
    UnknownMessage,
)
from actors.region import AgentLeft, AgentPresence
from geo.cells import cell_of

ALERT_1 = UUID(int=0xE101)
ALERT_2 = UUID(int=0xE102)
POLICY = AgentPolicy(heartbeat_timeout=timedelta(seconds=60), region_resolution=7)
A = Availability


def run(
    state: AgentState, msg: agent.AgentMessage, clock: Clock, seconds: float = 1
) -> tuple[AgentState, tuple[Effect, ...]]:
    new, effects = agent.decide(state, msg, clock.advance(seconds), POLICY)
    assert_effect_order(effects)
    return new, effects


def connected(clock: Clock) -> AgentState:
    """A new agent whose app has one live socket (offline until it says otherwise)."""
    state, _ = run(AgentState.new(AGENT_A), SocketOpened("socket-1"), clock)
    return state


def available_at(clock: Clock, lat: float = LAT, lon: float = LON) -> AgentState:
    state, _ = run(connected(clock), SetStatus(A.AVAILABLE), clock)
    state, _ = run(state, LocationFix(lat, lon, accuracy_m=8.0), clock)
    return state


def test_a_new_agent_is_offline_and_unpersisted() -> None:
    state = AgentState.new(AGENT_A)
    assert state.availability is A.OFFLINE
    assert (state.location, state.current_assignment, state.version) == (None, None, 0)
    assert state.listed is False


def test_going_available_arms_the_heartbeat_and_is_announced() -> None:
    clock = Clock()
    state, effects = run(connected(clock), SetStatus(A.AVAILABLE), clock)
    assert state.availability is A.AVAILABLE
    assert state.version == 2  # 1: the socket opened
    assert state.last_heartbeat_at == clock.now
    persist = of_type(effects, Persist)[0]
    assert persist.coalesce is False
    (event,) = of_type(effects, Emit)
    assert (event.topic, event.type) == (Topic.AGENT_EVENTS, EventType.AGENT_STATUS_CHANGED)
    assert event.key == str(AGENT_A)
    assert event.data["status"] == "available"
    assert event.data["previous_status"] == "offline"
    assert of_type(effects, ScheduleTimer) == [
        ScheduleTimer(
            HEARTBEAT_TIMER_ID, HEARTBEAT_EXPIRED_TIMER, clock.now + POLICY.heartbeat_timeout, {}
        )
    ]
    # No position yet: not listed in any region.
    assert of_type(effects, Send) == []


def test_heartbeat_expiry_takes_the_agent_offline() -> None:
    clock = Clock()
    state = available_at(clock)
    cell = cell_of(LAT, LON, 7)
    state, effects = run(state, Heartbeat(), clock, 30)
    (timer,) = of_type(effects, ScheduleTimer)
    assert timer.due_at == clock.now + timedelta(seconds=60)
    assert of_type(effects, Emit) == []
    assert of_type(effects, Persist)[0].coalesce is True

    assert timer_message(timer.name, timer.payload) == HeartbeatExpired()
    # A copy armed before the heartbeat fires early: nothing changes, and the
    # real deadline is armed again (a stored copy may outlive the in-memory one).
    stale, effects = agent.decide(
        state, HeartbeatExpired(), clock.now + timedelta(seconds=31), POLICY
    )
    assert stale is state
    assert effects == (
        ScheduleTimer(HEARTBEAT_TIMER_ID, timer.name, timer.due_at, {}),
        Reply(state),
    )

    offline, effects = agent.decide(state, HeartbeatExpired(), timer.due_at, POLICY)
    assert_effect_order(effects)
    assert offline.availability is A.OFFLINE
    (event,) = of_type(effects, Emit)
    assert event.data["reason"] == "heartbeat_expired"
    assert of_type(effects, Send) == [
        Send(EntityKind.REGION, cell, AgentLeft(agent_id=AGENT_A, at=timer.due_at))
    ]
    assert of_type(effects, CancelTimer) == [CancelTimer(HEARTBEAT_TIMER_ID)]
    again, effects = agent.decide(offline, HeartbeatExpired(), timer.due_at, POLICY)
    assert again is offline
    assert effects == (Reply(offline),)


def test_going_offline_explicitly_disarms_the_heartbeat() -> None:
    clock = Clock()
    state = available_at(clock)
    offline, effects = run(state, SetStatus(A.OFFLINE), clock)
    assert of_type(effects, CancelTimer) == [CancelTimer(HEARTBEAT_TIMER_ID)]
    assert of_type(effects, ScheduleTimer) == []
    assert [type(s.message) for s in of_type(effects, Send)] == [AgentLeft]
    # An offline agent's pings are recorded but arm nothing.
    pinged, effects = run(offline, Heartbeat(), clock)
    assert pinged.availability is A.OFFLINE
    assert of_type(effects, ScheduleTimer) == []


def test_a_listed_agent_is_announced_to_its_cell_and_refreshed() -> None:
    clock = Clock()
    state, _ = run(connected(clock), SetStatus(A.AVAILABLE), clock)
    state, effects = run(state, LocationFix(LAT, LON), clock)
    cell = cell_of(LAT, LON, POLICY.region_resolution)
    assert of_type(effects, Send) == [
        Send(EntityKind.REGION, cell, AgentPresence(AGENT_A, LAT, LON, True, clock.now))
    ]
    # A sign of life refreshes the entry only once presence_refresh has passed.
    state, effects = run(state, Heartbeat(), clock, seconds=20)
    assert of_type(effects, Send) == []
    _, effects = run(state, Heartbeat(), clock, seconds=POLICY.presence_refresh.total_seconds())
    assert of_type(effects, Send) == [
        Send(EntityKind.REGION, cell, AgentPresence(AGENT_A, LAT, LON, True, clock.now))
    ]
    # A socket's announcement always refreshes it (a restarted shard's region is empty).
    _, effects = run(state, SocketOpened("socket-1"), clock)
    assert of_type(effects, Send) == [
        Send(EntityKind.REGION, cell, AgentPresence(AGENT_A, LAT, LON, True, clock.now))
    ]


def test_moving_to_another_cell_leaves_the_old_one() -> None:
    clock = Clock()
    state = available_at(clock)
    old_cell = cell_of(LAT, LON, 7)
    far_lat, far_lon = 48.1372, 11.5756  # Munich
    new_cell = cell_of(far_lat, far_lon, 7)
    moved, effects = run(state, LocationFix(far_lat, far_lon), clock)
    assert of_type(effects, Send) == [
        Send(EntityKind.REGION, old_cell, AgentLeft(AGENT_A, clock.now)),
        Send(
            EntityKind.REGION, new_cell, AgentPresence(AGENT_A, far_lat, far_lon, True, clock.now)
        ),
    ]
    assert moved.location is not None
    assert (moved.location.latitude, moved.location.longitude) == (far_lat, far_lon)


def test_out_of_order_and_duplicate_fixes_are_ignored() -> None:
    clock = Clock()
    state = available_at(clock)
    newer = LocationFix(LAT + 0.001, LON, recorded_at=clock.now + timedelta(seconds=1))
    state, _ = run(state, newer, clock, 5)
    assert state.last_fix_at == newer.recorded_at
    for stale in [
        LocationFix(LAT + 0.5, LON, recorded_at=newer.recorded_at - timedelta(seconds=2)),
        LocationFix(LAT + 0.5, LON, recorded_at=newer.recorded_at),
    ]:
        same, effects = run(state, stale, clock)
        assert same is state
        assert effects == (Reply(state),)


def test_a_fix_from_the_future_is_taken_as_now() -> None:
    clock = Clock()
    state = available_at(clock)
    ahead = LocationFix(LAT, LON + 0.001, recorded_at=clock.now + timedelta(hours=2))
    state, _ = run(state, ahead, clock)
    assert state.last_fix_at == clock.now
    later, _ = run(state, LocationFix(LAT, LON + 0.002), clock)
    assert later.last_fix_at == clock.now


@pytest.mark.parametrize(
    "fix",
    [
        LocationFix(95.0, 0.0),
        LocationFix(0.0, float("inf")),
        LocationFix(0.0, 0.0, recorded_at=Clock().now.replace(tzinfo=None)),
    ],
    ids=["lat", "lon", "naive"],
)
def test_bad_fixes_are_refused(fix: LocationFix) -> None:
    with pytest.raises(InvalidMessage):
        agent.decide(AgentState.new(AGENT_A), fix, Clock().now, POLICY)


def test_location_only_changes_may_be_coalesced() -> None:
    clock = Clock()
    state = available_at(clock)
    _, effects = run(state, LocationFix(LAT + 0.0001, LON), clock)
    (persist,) = of_type(effects, Persist)
    assert persist.coalesce is True
    assert of_type(effects, Emit) == []


def test_an_assignment_makes_the_agent_busy_and_unlisted() -> None:
    clock = Clock()
    state = available_at(clock)
    busy, effects = run(state, Assigned(ALERT_1), clock)
    assert (busy.availability, busy.current_assignment) == (A.BUSY, ALERT_1)
    (event,) = of_type(effects, Emit)
    assert event.data["reason"] == "assigned"
    assert event.data["current_assignment"] == str(ALERT_1)
    assert [type(s.message) for s in of_type(effects, Send)] == [AgentLeft]
    # Still watched: the timer already armed stands (assignment is no sign of life).
    assert of_type(effects, ScheduleTimer) == []


def test_a_second_assignment_is_refused() -> None:
    clock = Clock()
    busy, _ = run(available_at(clock), Assigned(ALERT_1), clock)
    before = busy.to_snapshot()
    with pytest.raises(AlreadyAssigned) as info:
        run(busy, Assigned(ALERT_2), clock)
    assert info.value.current_alert_id == str(ALERT_1)
    assert busy.to_snapshot() == before
    # The same assignment again is a duplicate send, not a second assignment.
    same, effects = run(busy, Assigned(ALERT_1), clock)
    assert same is busy
    assert effects == (Reply(busy),)


def test_release_frees_the_agent() -> None:
    clock = Clock()
    busy, _ = run(available_at(clock), Assigned(ALERT_1), clock)
    stale, effects = run(busy, Released(ALERT_2), clock)
    assert stale is busy
    assert effects == (Reply(busy),)
    free, effects = run(busy, Released(ALERT_1), clock)
    assert (free.availability, free.current_assignment) == (A.AVAILABLE, None)
    assert of_type(effects, Emit)[0].data["reason"] == "released"
    assert [type(s.message) for s in of_type(effects, Send)] == [AgentPresence]


@pytest.mark.parametrize("status", [A.AVAILABLE, A.ON_BREAK, A.OFFLINE])
def test_an_assigned_agent_cannot_walk_away(status: Availability) -> None:
    clock = Clock()
    busy, _ = run(available_at(clock), Assigned(ALERT_1), clock)
    with pytest.raises(InvalidTransition, match="cannot move agent from 'busy'") as info:
        run(busy, SetStatus(status), clock)
    assert info.value.entity == "agent"


def test_an_assigned_agent_that_times_out_comes_back_busy() -> None:
    clock = Clock()
    busy, _ = run(available_at(clock), Assigned(ALERT_1), clock)
    offline, _ = run(busy, HeartbeatExpired(), clock, 120)
    assert (offline.availability, offline.current_assignment) == (A.OFFLINE, ALERT_1)
    back, effects = run(offline, Heartbeat(), clock)
    assert (back.availability, back.current_assignment) == (A.BUSY, ALERT_1)
    (event,) = of_type(effects, Emit)
    assert event.data["reason"] == "resumed"
    assert len(of_type(effects, ScheduleTimer)) == 1


def test_assigning_an_offline_agent_watches_it_from_its_last_sign_of_life() -> None:
    clock = Clock()
    state, _ = run(AgentState.new(AGENT_A), Heartbeat(), clock)
    seen_at = clock.now
    busy, effects = run(state, Assigned(ALERT_1), clock, 10)
    assert busy.availability is A.BUSY
    (timer,) = of_type(effects, ScheduleTimer)
    assert timer.due_at == seen_at + POLICY.heartbeat_timeout


def test_manual_busy_and_breaks() -> None:
    clock = Clock()
    state = available_at(clock)
    on_break, effects = run(state, SetStatus(A.ON_BREAK), clock)
    assert on_break.availability is A.ON_BREAK
    assert [type(s.message) for s in of_type(effects, Send)] == [AgentLeft]
    busy, _ = run(on_break, SetStatus(A.BUSY), clock)
    assert (busy.availability, busy.current_assignment) == (A.BUSY, None)
    same, effects = run(busy, SetStatus(A.BUSY), clock)
    assert of_type(effects, Emit) == []  # a repeated status is only a sign of life
    assert same.last_heartbeat_at == clock.now


def test_policy_and_timer_validation() -> None:
    with pytest.raises(ValueError, match="heartbeat_timeout"):
        AgentPolicy(heartbeat_timeout=timedelta(0))
    with pytest.raises(ValueError, match="region_resolution"):
        AgentPolicy(region_resolution=16)
    with pytest.raises(UnknownMessage):
        timer_message("offer_expired", {})


# --- reservations: one alert at a time -------------------------------------------------


def test_taking_an_offer_reserves_the_agent_asks_the_alert_and_waits() -> None:
    clock = Clock()
    state = available_at(clock)
    reserved, effects = run(state, agent.TakeOffer(ALERT_1), clock)
    # The accept carries the agent's last fix: the person sees it coming at once.
    fix = state.location
    assert fix is not None
    accept = AcceptOffer(
        state.id,
        alert_id=ALERT_1,
        latitude=fix.latitude,
        longitude=fix.longitude,
        accuracy_m=fix.accuracy_m,
        heading=fix.heading,
        speed_mps=fix.speed_mps,
        fix_at=fix.recorded_at,
    )
    assert effects == (Send(EntityKind.ALERT, ALERT_1, accept), Defer(f"take:{ALERT_1}"))
    # Soft: no new version, nothing persisted or announced, not in the snapshot.
    assert (reserved.reserved_for, reserved.version) == (ALERT_1, state.version)
    assert "reserved_for" not in reserved.to_snapshot()
    assert run(reserved, agent.TakeOffer(ALERT_1), clock)[0].reserved_for == ALERT_1
    with pytest.raises(AlreadyAssigned):
        run(reserved, agent.TakeOffer(ALERT_2), clock)
    # Refused by the alert: the asker hears why, and the agent is free at once.
    refusal = NoPendingOffer(str(ALERT_1), str(state.id))
    freed, effects = run(reserved, agent.OfferTaken(ALERT_1, refusal=refusal), clock)
    assert effects == (Answer(f"take:{ALERT_1}", refusal), Reply(freed))
    assert freed.reserved_for is None
    assert run(freed, agent.TakeOffer(ALERT_2), clock)[0].reserved_for == ALERT_2
    # Another alert's refusal does not free this reservation.
    assert run(reserved, agent.OfferTaken(ALERT_2, refusal=refusal), clock)[0] is reserved
    # Or lapsed (the alert never answered): free after reservation_ttl.
    late, _ = run(reserved, agent.TakeOffer(ALERT_2), clock, seconds=16)
    assert late.reserved_for == ALERT_2


def test_taken_answers_the_asker_and_the_assignment_ends_the_reservation() -> None:
    clock = Clock()
    reserved, _ = run(available_at(clock), agent.TakeOffer(ALERT_1), clock)
    taken = agent.OfferTaken(ALERT_1, status=AlertStatus.ASSIGNED)
    assert run(reserved, taken, clock) == (
        reserved,
        (Answer(f"take:{ALERT_1}", taken), Reply(reserved)),
    )
    assigned, _ = run(reserved, Assigned(ALERT_1), clock)
    assert (assigned.current_assignment, assigned.reserved_for) == (ALERT_1, None)
    assert run(assigned, agent.TakeOffer(ALERT_1), clock)[0] is assigned
    with pytest.raises(AlreadyAssigned):
        run(assigned, agent.TakeOffer(ALERT_2), clock, seconds=60)


def test_a_responding_agents_fixes_are_passed_to_its_alert() -> None:
    clock = Clock()
    state = available_at(clock)
    _, effects = run(state, LocationFix(LAT + 0.001, LON), clock)
    assert not [s for s in of_type(effects, Send) if s.entity_kind is EntityKind.ALERT]
    assigned, _ = run(state, Assigned(ALERT_1), clock)
    moved, effects = run(assigned, LocationFix(LAT + 0.002, LON, accuracy_m=4.0), clock)
    (relay,) = [s for s in of_type(effects, Send) if s.entity_kind is EntityKind.ALERT]
    assert relay.entity_id == ALERT_1
    assert relay.message == AgentLocation(AGENT_A, LAT + 0.002, LON, 4.0, clock.now)
    assert moved.location is not None


# --- presence: live sockets ---------------------------------------------------------


def test_only_an_agent_with_a_live_socket_is_listed() -> None:
    clock = Clock()
    state, _ = run(AgentState.new(AGENT_A), SetStatus(A.AVAILABLE), clock)
    state, effects = run(state, LocationFix(LAT, LON), clock)
    assert state.listed is False
    assert of_type(effects, Send) == []
    # The socket's announcement lists it at once.
    state, effects = run(state, SocketOpened("socket-1"), clock)
    assert state.listed is True
    cell = cell_of(LAT, LON, POLICY.region_resolution)
    (presence,) = of_type(effects, Send)
    assert (presence.entity_id, type(presence.message)) == (cell, AgentPresence)


def test_the_last_socket_closing_unlists_the_agent_at_once() -> None:
    clock = Clock()
    state = available_at(clock)
    state, _ = run(state, SocketOpened("socket-2"), clock)
    cell = cell_of(LAT, LON, POLICY.region_resolution)
    # One of two sockets closes: still listed, nothing durable changed.
    one_left, effects = run(state, SocketClosed("socket-1"), clock)
    assert one_left.listed is True
    assert one_left.version == state.version
    assert effects == (Reply(one_left),)
    # The last one: unlisted at once, with nothing to commit first (the region
    # hears of it without waiting), and the liveness timer brought forward to
    # the end of the grace.
    unlisted, effects = run(one_left, SocketClosed("socket-2"), clock)
    assert unlisted.listed is False
    assert unlisted.availability is A.AVAILABLE
    assert of_type(effects, Persist) == []
    assert of_type(effects, Emit) == []
    assert of_type(effects, Send) == [
        Send(EntityKind.REGION, cell, AgentLeft(agent_id=AGENT_A, at=clock.now)),
    ]
    grace_ends = clock.now + POLICY.disconnect_grace
    assert of_type(effects, ScheduleTimer) == [
        ScheduleTimer(HEARTBEAT_TIMER_ID, HEARTBEAT_EXPIRED_TIMER, grace_ends, {})
    ]
    # Before the grace ends the timer only re-arms itself.
    early, effects = run(unlisted, HeartbeatExpired(), clock)
    assert early.availability is A.AVAILABLE
    assert of_type(effects, Emit) == []
    clock.advance(POLICY.disconnect_grace.total_seconds())
    gone, effects = run(unlisted, HeartbeatExpired(), clock)
    assert gone.availability is A.OFFLINE
    (event,) = of_type(effects, Emit)
    assert event.data["reason"] == "disconnected"
    assert of_type(effects, Send) == []  # already unlisted
    # A late close of a socket it no longer knows changes nothing.
    same, effects = run(gone, SocketClosed("socket-1"), clock)
    assert same is gone
    assert effects == (Reply(gone),)
    # Offline: reconnecting does not list it; the app must say it is available.
    back, _ = run(gone, SocketOpened("socket-3"), clock)
    assert back.listed is False
    listed, _ = run(back, SetStatus(A.AVAILABLE), clock)
    assert listed.listed is True


def test_a_socket_back_within_the_grace_lists_the_agent_again_with_nothing_durable() -> None:
    clock = Clock()
    state = available_at(clock)
    unlisted, _ = run(state, SocketClosed("socket-1"), clock)
    clock.advance(POLICY.disconnect_grace.total_seconds() / 2)
    back, effects = run(unlisted, SocketOpened("socket-9"), clock)
    assert back.listed is True
    assert back.disconnected_at is None
    assert of_type(effects, Emit) == []
    # Sockets are soft and its liveness on record is recent: nothing is written.
    assert of_type(effects, Persist) == []
    cell = cell_of(LAT, LON, POLICY.region_resolution)
    (presence,) = of_type(effects, Send)
    assert presence.entity_id == cell
    assert isinstance(presence.message, AgentPresence)
    # The app says its status again: already so, nothing durable either.
    said, effects = run(back, SetStatus(A.AVAILABLE), clock)
    assert said.listed is True
    assert of_type(effects, Emit) == []
    assert of_type(effects, Persist) == []
    # The timer due at the old grace's end finds a live socket: it only re-arms.
    clock.advance(POLICY.disconnect_grace.total_seconds())
    kept, effects = run(said, HeartbeatExpired(), clock)
    assert kept.availability is A.AVAILABLE
    assert of_type(effects, Emit) == []


def test_a_reconnect_writes_its_liveness_once_the_one_on_record_grows_old() -> None:
    clock = Clock()
    state = available_at(clock)
    unlisted, _ = run(state, SocketClosed("socket-1"), clock)
    clock.advance(POLICY.heartbeat_timeout.total_seconds() / 2)
    back, effects = run(unlisted, SocketOpened("socket-2"), clock)
    (written,) = of_type(effects, Persist)
    assert written.coalesce
    assert written.snapshot["last_heartbeat_at"] == clock.now.isoformat()
    said, effects = run(back, SetStatus(A.AVAILABLE), clock)
    assert said.listed is True
    assert of_type(effects, Persist) == []  # just written
    busy, effects = run(said, SetStatus(A.BUSY), clock)
    assert busy.availability is A.BUSY
    assert len(of_type(effects, Persist)) == 1  # a real change is written at once
    assert len(of_type(effects, Emit)) == 1


def test_after_a_restart_the_grace_is_not_assumed() -> None:
    """``disconnected_at`` is soft: a restored agent with no sockets announced yet
    keeps its heartbeat deadline (the gateways announce live sockets first)."""
    clock = Clock()
    state = available_at(clock)
    restored = AgentState.from_snapshot(state.to_snapshot())
    assert restored.sockets == frozenset()
    assert restored.disconnected_at is None
    clock.advance(POLICY.disconnect_grace.total_seconds() * 2)
    kept, effects = run(restored, HeartbeatExpired(), clock)
    assert kept.availability is A.AVAILABLE
    assert of_type(effects, Emit) == []


def test_sockets_are_soft_state_announced_again_after_a_restart() -> None:
    clock = Clock()
    state = available_at(clock)
    restored = AgentState.from_snapshot(state.to_snapshot())
    assert restored.sockets == frozenset()
    assert restored.listed is False
    again, effects = run(restored, SocketOpened("socket-1"), clock)
    assert again.listed is True
    assert [type(s.message) for s in of_type(effects, Send)] == [AgentPresence]


def test_a_busy_agent_losing_its_socket_keeps_its_alert() -> None:
    clock = Clock()
    state, _ = run(available_at(clock), Assigned(ALERT_1), clock)
    gone, _ = run(state, SocketClosed("socket-1"), clock)
    assert (gone.availability, gone.current_assignment) == (A.BUSY, ALERT_1)


# --- suspension ---------------------------------------------------------------------


def test_suspension_unlists_and_gives_the_held_alert_back() -> None:
    clock = Clock()
    state, _ = run(available_at(clock), Assigned(ALERT_1), clock)
    suspended, effects = run(state, Suspend("harassment report"), clock)
    assert suspended.suspended is True
    assert suspended.availability is A.OFFLINE
    assert suspended.listed is False
    (event,) = of_type(effects, Emit)
    assert event.data["reason"] == "suspended"
    # The suspender hands the alert back (a durable send from here could deadlock).
    assert [s for s in of_type(effects, Send) if s.entity_kind is EntityKind.ALERT] == []
    assert AgentState.from_snapshot(suspended.to_snapshot()).suspended is True
    with pytest.raises(NotPermitted):
        run(suspended, SetStatus(A.AVAILABLE), clock)
    with pytest.raises(NotPermitted):
        run(suspended, TakeOffer(ALERT_2), clock)
    # An accept that crossed the suspension is given back at once.
    same, effects = run(suspended, Assigned(ALERT_2), clock)
    assert same is suspended
    assert of_type(effects, Persist) == []  # not durable: a tell, not a wait
    assert of_type(effects, Send) == [
        Send(EntityKind.ALERT, ALERT_2, Unassign(agent_id=AGENT_A, reason="agent suspended"))
    ]
    # The alert's Released frees it; reinstated, it may go on duty again.
    free, _ = run(suspended, Released(ALERT_1), clock)
    reinstated, _ = run(free, Reinstate(), clock)
    assert reinstated.suspended is False
    on_break, _ = run(reinstated, SetStatus(A.ON_BREAK), clock)
    assert on_break.availability is A.ON_BREAK


def test_a_heartbeat_persists_liveness_only_when_the_record_grows_old() -> None:
    clock = Clock()
    state = available_at(clock)  # its last change was persisted (liveness with it)
    clock.advance(20)
    pinged, effects = run(state, Heartbeat(), clock)
    assert of_type(effects, Persist) == []  # the record is 20 s old: nothing written
    assert pinged.version == state.version
    assert pinged.last_heartbeat_at == clock.now
    # The liveness timer follows the heartbeat in memory.
    due = clock.now + POLICY.heartbeat_timeout
    assert of_type(effects, ScheduleTimer) == [
        ScheduleTimer(HEARTBEAT_TIMER_ID, HEARTBEAT_EXPIRED_TIMER, due, {})
    ]
    # Half the heartbeat timeout after the last write, a heartbeat writes again.
    clock.advance(POLICY.heartbeat_timeout.total_seconds() / 2 - 20)
    saved, effects = run(pinged, Heartbeat(), clock)
    (persist,) = of_type(effects, Persist)
    assert persist.coalesce is True
    assert saved.version == state.version + 1
    assert saved.liveness_saved_at == clock.now
