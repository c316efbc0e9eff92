"""The alert status graph: valid paths, every invalid pair, and who may move what."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from actors_kit import (
    ADMIN,
    AGENT_A,
    AGENT_B,
    ALERT_ID,
    LAT,
    LON,
    OTHER_USER,
    USER,
    Clock,
    alert_in,
    assert_effect_order,
    create,
    of_type,
    told_user,
)

from actors import alert
from actors.agent import Assigned, Released
from actors.alert import (
    ALLOWED_TRANSITIONS,
    AcceptOffer,
    ActorRole,
    AlertState,
    AlertStatus,
    AlertType,
    Assign,
    Cancel,
    CreateAlert,
    Escalate,
    OfferMade,
    Replayed,
    UpdateStatus,
)
from actors.alert_messages import ESCALATION_TIMER, SEARCH_AGAIN_TIMER
from actors.effects import (
    Audience,
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
)
from actors.errors import (
    AlreadyExists,
    Conflict,
    EntityNotFound,
    InvalidMessage,
    InvalidTransition,
    NotPermitted,
)
from actors.search import Search

S = AlertStatus
EXPECTED_EDGES = {
    (S.DISPATCHING, S.ASSIGNED),
    (S.DISPATCHING, S.ESCALATED),
    (S.DISPATCHING, S.CANCELLED),
    (S.ESCALATED, S.ASSIGNED),
    (S.ESCALATED, S.CANCELLED),
    (S.ASSIGNED, S.EN_ROUTE),
    (S.ASSIGNED, S.CANCELLED),
    (S.EN_ROUTE, S.ON_SCENE),
    (S.EN_ROUTE, S.CANCELLED),
    (S.ON_SCENE, S.RESOLVED),
    (S.ON_SCENE, S.CANCELLED),
}
INVALID_PAIRS = sorted(
    (a, b) for a, b in itertools.product(AlertStatus, AlertStatus) if (a, b) not in EXPECTED_EDGES
)


def test_graph_is_exactly_the_api_graph() -> None:
    edges = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert edges == EXPECTED_EDGES
    assert set(ALLOWED_TRANSITIONS) == set(AlertStatus)
    assert not ALLOWED_TRANSITIONS[S.RESOLVED]
    assert not ALLOWED_TRANSITIONS[S.CANCELLED]
    # 7 statuses, 49 ordered pairs, 11 edges: the matrix below covers 38 pairs.
    assert len(INVALID_PAIRS) == 49 - 11


@pytest.mark.parametrize(("current", "requested"), INVALID_PAIRS, ids=lambda s: str(s))
def test_every_invalid_pair_raises_and_leaves_state_untouched(
    current: AlertStatus, requested: AlertStatus
) -> None:
    state = alert_in(current)
    before = state.to_snapshot()
    msg = UpdateStatus(requested, ADMIN, ActorRole.ADMIN, note="try")
    with pytest.raises(InvalidTransition) as info:
        alert.decide(state, msg, state.updated_at + timedelta(seconds=5))
    assert info.value.current == current.value
    assert info.value.requested == requested.value
    assert str(info.value).startswith(
        f"cannot move alert from '{current.value}' to '{requested.value}'"
    )
    assert state.status is current
    assert state.to_snapshot() == before


@pytest.mark.parametrize(
    ("current", "requested"),
    sorted(p for p in EXPECTED_EDGES if p[1] is not S.ASSIGNED),
    ids=lambda s: str(s),
)
def test_every_valid_pair_is_accepted_from_an_admin(
    current: AlertStatus, requested: AlertStatus
) -> None:
    state = alert_in(current)
    now = state.updated_at + timedelta(seconds=5)
    new, effects = alert.decide(state, UpdateStatus(requested, ADMIN, ActorRole.ADMIN), now)
    assert new.status is requested
    assert new.version == state.version + 1
    assert len(new.timeline) == len(state.timeline) + 1
    assert new.timeline[-1].data["previous_status"] == current.value
    assert new.timeline[-1].data["status"] == requested.value
    assert new.timeline[-1].actor_id == ADMIN
    assert_effect_order(effects)
    changed = [e for e in of_type(effects, Emit) if e.type is EventType.ALERT_STATUS_CHANGED]
    assert len(changed) == 1
    assert changed[0].topic is Topic.ALERT_STATUS_UPDATES
    assert changed[0].key == str(ALERT_ID)
    assert changed[0].data["status"] == requested.value


def test_the_message_reads_naturally() -> None:
    state = alert_in(S.RESOLVED)
    with pytest.raises(InvalidTransition) as info:
        alert.decide(state, UpdateStatus(S.EN_ROUTE, ADMIN, ActorRole.ADMIN), state.updated_at)
    assert str(info.value) == "cannot move alert from 'resolved' to 'en_route'"


def test_assigned_cannot_be_set_through_a_status_update() -> None:
    state = alert_in(S.DISPATCHING)
    with pytest.raises(InvalidTransition, match="accepting an offer or by an admin assignment"):
        alert.decide(state, UpdateStatus(S.ASSIGNED, ADMIN, ActorRole.ADMIN), state.updated_at)


def test_create_opens_a_dispatching_alert() -> None:
    clock = Clock()
    msg = CreateAlert(ALERT_ID, USER, AlertType.MEDICAL, LAT, LON, accuracy_m=5, silent=False)
    state, effects = alert.decide(None, msg, clock.now)
    assert state.status is S.DISPATCHING
    assert state.version == 1
    assert (state.created_at, state.updated_at) == (clock.now, clock.now)
    assert state.accuracy_m == 5.0
    assert [e.type for e in state.timeline] == ["created"]
    assert state.timeline[0].actor_id == USER
    assert_effect_order(effects)
    persist, created, escalation, again, search, told, reply = effects
    assert isinstance(persist, Persist)
    assert persist.version == 1
    assert persist.kind is EntityKind.ALERT
    assert persist.entity_id == ALERT_ID
    assert isinstance(created, Emit)
    assert (created.topic, created.type) == (Topic.PANIC_ALERTS, EventType.ALERT_CREATED)
    assert created.data["id"] == str(ALERT_ID)
    assert created.data["status"] == "dispatching"
    assert created.data["assigned_agent_id"] is None
    assert created.time == clock.now
    # Dispatch starts at once: a search for agents, and a timer to search again.
    assert state.search_tag == 1
    assert search == Search(1, LAT, LON, rings=2, k=10, exclude=frozenset(), want=1, max_rings=4)
    assert again == ScheduleTimer(
        SEARCH_AGAIN_TIMER, SEARCH_AGAIN_TIMER, clock.now + timedelta(seconds=2), {}
    )
    # And the first escalation step of the type is armed.
    assert escalation == ScheduleTimer(
        ESCALATION_TIMER, ESCALATION_TIMER, clock.now + timedelta(seconds=30), {"step": 0}
    )
    # Every admin's console hears of the new alert (alert.created).
    assert told == Push(Audience.admins(), FrameType.ALERT_CREATED, state.admin_created_frame())
    assert reply == Reply(state)


def test_a_keyed_create_commits_its_key_and_answers_a_retry_replayed() -> None:
    clock = Clock()
    keyed = CreateAlert(
        ALERT_ID, USER, AlertType.PANIC, LAT, LON, idempotency_key="k1", request_hash="ab" * 32
    )
    state, effects = alert.decide(None, keyed, clock.now)
    (persist,) = of_type(effects, Persist)
    assert (persist.snapshot["idempotency_key"], persist.snapshot["request_hash"]) == (
        "k1",
        "ab" * 32,
    )
    assert AlertState.from_snapshot(persist.snapshot) == state
    again, effects = alert.decide(state, keyed, clock.advance(1))
    assert again is state
    assert effects == (Reply(Replayed(state)),)
    # The same key with another request is refused, whatever the fields say.
    other = replace(keyed, request_hash="cd" * 32)
    with pytest.raises(AlreadyExists):
        alert.decide(state, other, clock.now)


def test_create_is_idempotent_and_refuses_different_content() -> None:
    clock = Clock()
    state = create(clock)
    same = CreateAlert(
        ALERT_ID,
        USER,
        AlertType.PANIC,
        LAT,
        LON,
        accuracy_m=12.5,
        description="Someone is following me",
    )
    again, effects = alert.decide(state, same, clock.advance(3))
    assert again is state
    assert effects == (Reply(state),)
    with pytest.raises(AlreadyExists):
        alert.decide(state, CreateAlert(ALERT_ID, USER, AlertType.FIRE, LAT, LON), clock.now)


@pytest.mark.parametrize(
    ("lat", "lon", "accuracy"),
    [(91.0, 0.0, None), (0.0, -181.0, None), (float("nan"), 0.0, None), (0.0, 0.0, -1.0)],
)
def test_create_refuses_bad_input(lat: float, lon: float, accuracy: float | None) -> None:
    msg = CreateAlert(ALERT_ID, USER, AlertType.PANIC, lat, lon, accuracy_m=accuracy)
    with pytest.raises(InvalidMessage):
        alert.decide(None, msg, Clock().now)


def test_messages_for_a_missing_alert_are_not_found() -> None:
    with pytest.raises(EntityNotFound):
        alert.decide(None, AcceptOffer(AGENT_A), Clock().now)


def test_a_naive_clock_is_refused() -> None:
    state = create(Clock())
    with pytest.raises(ValueError, match="timezone-aware"):
        alert.decide(state, Escalate("x"), datetime(2025, 3, 1, 12, 0))


def test_the_full_response_path() -> None:
    clock = Clock()
    state = create(clock)
    statuses = [state.status]
    for msg in [
        OfferMade(AGENT_A, distance_m=300.0),
        AcceptOffer(AGENT_A),
        UpdateStatus(S.EN_ROUTE, AGENT_A, ActorRole.AGENT, note="leaving now"),
        UpdateStatus(S.ON_SCENE, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.RESOLVED, AGENT_A, ActorRole.AGENT, note="safe"),
    ]:
        old = state
        state, effects = alert.decide(state, msg, clock.advance(10))
        assert state.version == old.version + 1
        assert state.updated_at == clock.now
        assert_effect_order(effects)
        statuses.append(state.status)
    assert statuses == [
        S.DISPATCHING,
        S.DISPATCHING,
        S.ASSIGNED,
        S.EN_ROUTE,
        S.ON_SCENE,
        S.RESOLVED,
    ]
    assert state.assigned_agent_id == AGENT_A
    assert [e.type for e in state.timeline] == [
        "created",
        "offered",
        "accepted",
        "status_changed",
        "status_changed",
        "status_changed",
    ]
    assert state.timeline[3].data["note"] == "leaving now"
    # Resolving frees the responder and ends the user's live-location relay.
    assert of_type(effects, Send) == [
        Send(EntityKind.AGENT, AGENT_A, Released(ALERT_ID)),
        told_user(False),
    ]


def test_escalated_then_assigned_by_accept_and_by_admin() -> None:
    clock = Clock()
    escalated = alert_in(S.ESCALATED, clock=clock)
    assert escalated.timeline[-1].type == "escalated"
    assert escalated.timeline[-1].data["reason"] == "no responder"
    offered = alert.decide(escalated, OfferMade(AGENT_A), clock.advance(1))[0]
    accepted, _ = alert.decide(offered, AcceptOffer(AGENT_A), clock.advance(1))
    assert (accepted.status, accepted.assigned_agent_id) == (S.ASSIGNED, AGENT_A)

    assigned, effects = alert.decide(escalated, Assign(AGENT_B, ADMIN), clock.advance(1))
    assert (assigned.status, assigned.assigned_agent_id) == (S.ASSIGNED, AGENT_B)
    assert assigned.timeline[-1].actor_id == ADMIN
    assert of_type(effects, Send) == [
        Send(EntityKind.AGENT, AGENT_B, Assigned(ALERT_ID)),
        told_user(True),
    ]
    types = [e.type for e in of_type(effects, Emit)]
    assert types == [EventType.ALERT_ASSIGNED, EventType.ALERT_STATUS_CHANGED]


@pytest.mark.parametrize("status", [S.DISPATCHING, S.ESCALATED, S.ASSIGNED, S.EN_ROUTE, S.ON_SCENE])
def test_any_open_alert_can_be_cancelled_by_its_user(status: AlertStatus) -> None:
    state = alert_in(status)
    new, effects = alert.decide(state, Cancel(USER, note="false alarm"), state.updated_at)
    assert new.status is S.CANCELLED
    assert new.timeline[-1].type == "cancelled"
    assert new.timeline[-1].data == {
        "status": "cancelled",
        "previous_status": status.value,
        "note": "false alarm",
    }
    released = of_type(effects, Send)
    if state.assigned_agent_id is None:
        assert released == []
    else:
        assert released == [
            Send(EntityKind.AGENT, AGENT_A, Released(ALERT_ID)),
            told_user(False),
        ]


@pytest.mark.parametrize("status", [S.RESOLVED, S.CANCELLED])
def test_terminal_alerts_refuse_every_dedicated_message(status: AlertStatus) -> None:
    state = alert_in(status)
    now = state.updated_at
    for msg in [
        Cancel(USER),
        Escalate("late"),
        Assign(AGENT_B, ADMIN),
        AcceptOffer(AGENT_B),
        AcceptOffer(AGENT_A),
    ]:
        with pytest.raises(InvalidTransition):
            alert.decide(state, msg, now)


def test_escalate_only_from_dispatching() -> None:
    for status in [S.ESCALATED, S.ASSIGNED, S.EN_ROUTE, S.ON_SCENE]:
        state = alert_in(status)
        with pytest.raises(InvalidTransition):
            alert.decide(state, Escalate("again"), state.updated_at)


def test_an_agent_who_is_not_the_assignee_may_not_move_the_alert() -> None:
    state = alert_in(S.ASSIGNED)
    msg = UpdateStatus(S.EN_ROUTE, AGENT_B, ActorRole.AGENT)
    with pytest.raises(NotPermitted, match="only the assigned agent or an admin"):
        alert.decide(state, msg, state.updated_at)


@pytest.mark.parametrize(
    "msg",
    [
        UpdateStatus(S.EN_ROUTE, USER, ActorRole.USER),
        UpdateStatus(S.RESOLVED, USER, ActorRole.USER),
        UpdateStatus(S.ESCALATED, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.CANCELLED, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.CANCELLED, OTHER_USER, ActorRole.USER),
        Cancel(OTHER_USER),
        Cancel(AGENT_A, actor_role=ActorRole.AGENT),
    ],
    ids=repr,
)
def test_roles_are_enforced_before_the_graph(msg: alert.AlertMessage) -> None:
    state = alert_in(S.ASSIGNED)
    with pytest.raises(NotPermitted):
        alert.decide(state, msg, state.updated_at)
    # Also on a terminal alert: a stranger gets NotPermitted, not the alert's status.
    with pytest.raises(NotPermitted):
        alert.decide(alert_in(S.RESOLVED), msg, state.updated_at)


def test_admin_and_platform_may_cancel_and_escalate() -> None:
    state = alert_in(S.DISPATCHING)
    cancelled, _ = alert.decide(state, Cancel(ADMIN, actor_role=ActorRole.ADMIN), state.updated_at)
    assert cancelled.status is S.CANCELLED
    escalated, _ = alert.decide(
        state, UpdateStatus(S.ESCALATED, ADMIN, ActorRole.SYSTEM, note="timeout"), state.updated_at
    )
    assert escalated.status is S.ESCALATED
    assert escalated.timeline[-1].data["reason"] == "timeout"


def test_updated_at_never_goes_back_when_the_clock_does() -> None:
    clock = Clock()
    state = create(clock)
    earlier = clock.now - timedelta(seconds=30)
    new, _ = alert.decide(state, Escalate("skewed host"), earlier)
    assert new.updated_at == state.updated_at
    assert new.timeline[-1].at == state.updated_at


def _invariants(state: AlertState) -> None:
    assert (state.offered_to == ()) or state.status in (S.DISPATCHING, S.ESCALATED)
    assigned_like = {S.ASSIGNED, S.EN_ROUTE, S.ON_SCENE, S.RESOLVED}
    if state.status in assigned_like:
        assert state.assigned_agent_id is not None
    if state.status in (S.DISPATCHING, S.ESCALATED):
        assert state.assigned_agent_id is None
    offered = [o.agent_id for o in state.offered_to]
    assert len(offered) == len(set(offered))
    assert not set(offered) & set(state.declined_by)
    assert len(state.timeline) == state.version
    times = [e.at for e in state.timeline]
    assert times == sorted(times)


def test_invariants_hold_over_every_sequence_of_four_messages() -> None:
    """Exhaustive walk: every ordering of these messages and delays, four deep."""
    messages: list[alert.AlertMessage] = [
        OfferMade(AGENT_A),
        OfferMade(AGENT_B),
        AcceptOffer(AGENT_A),
        AcceptOffer(AGENT_B),
        alert.DeclineOffer(AGENT_A),
        alert.OfferExpired(AGENT_B),
        UpdateStatus(S.EN_ROUTE, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.ON_SCENE, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.RESOLVED, ADMIN, ActorRole.ADMIN),
        Escalate("slow"),
        Cancel(USER),
        Assign(AGENT_B, ADMIN),
        alert.OfferReceived(AGENT_A),
        alert.OfferUnreachable(AGENT_B),
        alert.Unassign(AGENT_A, "suspended"),
        alert.EnRouteDue(AGENT_B),
    ]
    clock = Clock()
    frontier = [create(clock)]
    seen = 0
    for _depth in range(4):
        next_frontier: list[AlertState] = []
        for state in frontier:
            # 1 s later offers still stand; 40 s later they have run out.
            for msg, delay in itertools.product(messages, (1, 40)):
                now = state.updated_at + timedelta(seconds=delay)
                try:
                    new, effects = alert.decide(state, msg, now)
                except (Conflict, NotPermitted):
                    assert state.version == len(state.timeline)  # untouched
                    continue
                seen += 1
                assert_effect_order(effects)
                _invariants(new)
                persisted = of_type(effects, Persist)
                if new is state:
                    assert persisted == []
                    assert of_type(effects, Emit) == []
                else:
                    # One version per step (a reassignment is two: unassigned, assigned).
                    steps = len(new.timeline) - len(state.timeline)
                    assert new.version == state.version + steps
                    assert steps in (1, 2)
                    assert [p.version for p in persisted] == [new.version]
                    assert AlertState.from_snapshot(persisted[0].snapshot) == new
                    assert of_type(effects, Emit)
                    next_frontier.append(new)
        frontier = next_frontier
    assert seen > 5000  # the walk really explored (8,000+ decisions today)
