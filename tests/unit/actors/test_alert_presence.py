"""The alert side of presence-aware dispatch: offers acknowledged or moved on,
offers that find no socket, reassignment, suspension and the en-route deadline."""

from __future__ import annotations

from datetime import timedelta

from actors_kit import (
    ADMIN,
    AGENT_A,
    AGENT_B,
    USER,
    Clock,
    alert_in,
    assert_effect_order,
    create,
    of_type,
    pushes_to,
)

from actors import alert
from actors.agent import Assigned, Released
from actors.alert import (
    AlertState,
    AlertStatus,
    Assign,
    EnRouteDue,
    OfferAckMissed,
    OfferMade,
    OfferReceived,
    OfferUnreachable,
    Unassign,
    UpdateStatus,
    WithdrawOffer,
    timer_message,
)
from actors.alert_messages import (
    EN_ROUTE_TIMER,
    OFFER_ACK_TIMER,
    AlertPolicy,
    offer_ack_timer_id,
)
from actors.alert_state import ActorRole, AlertType
from actors.effects import (
    CancelTimer,
    Emit,
    EntityKind,
    EventType,
    FrameType,
    Push,
    Reply,
    ScheduleTimer,
    Send,
)
from actors.search import Search


def run(
    state: AlertState, msg: alert.AlertMessage, clock: Clock, seconds: float = 1
) -> tuple[AlertState, tuple[object, ...]]:
    new, effects = alert.decide(state, msg, clock.advance(seconds))
    assert_effect_order(effects)
    return new, effects


def offered_to_a(clock: Clock) -> AlertState:
    state, _ = run(create(clock), OfferMade(AGENT_A, distance_m=80.0), clock, 0)
    return state


def test_an_offer_push_that_finds_no_socket_comes_back_as_unreachable() -> None:
    clock = Clock()
    _, effects = run(create(clock), OfferMade(AGENT_A), clock)
    (offer,) = pushes_to(effects, "agent", AGENT_A)
    assert offer.frame_type is FrameType.ALERT_OFFER
    assert offer.undelivered == OfferUnreachable(AGENT_A)


def test_an_unreachable_agent_is_passed_over_at_once() -> None:
    clock = Clock()
    state = offered_to_a(clock)
    new, effects = run(state, OfferUnreachable(AGENT_A), clock, 0.05)
    assert new.offered_to == ()
    assert AGENT_A in new.expired_for
    assert new.timeline[-1].type == "offer_withdrawn"
    assert new.timeline[-1].data["reason"] == "unreachable"
    (event,) = of_type(effects, Emit)
    assert event.type is EventType.ALERT_OFFER_WITHDRAWN
    (search,) = of_type(effects, Search)
    assert AGENT_A in search.exclude
    assert set(of_type(effects, CancelTimer)) >= {CancelTimer(offer_ack_timer_id(AGENT_A))}


def test_an_acknowledged_offer_runs_its_full_time() -> None:
    clock = Clock()
    state = offered_to_a(clock)
    received, effects = run(state, OfferReceived(AGENT_A), clock, 0.2)
    offer = received.offer_for(AGENT_A)
    assert offer is not None
    assert offer.received_at == clock.now
    assert of_type(effects, CancelTimer) == [CancelTimer(offer_ack_timer_id(AGENT_A))]
    assert received.timeline[-1].type == "offer_received"
    # Its ack timer, if it still fires (a race, or a stored copy), changes nothing.
    late, effects = run(received, OfferAckMissed(AGENT_A), clock, 3)
    assert late is received
    assert effects == (Reply(received),)
    # A second acknowledgement (the gateway's and the app's) is a no-op.
    again, _ = run(received, OfferReceived(AGENT_A), clock)
    assert again is received
    restored = AlertState.from_snapshot(received.to_snapshot())
    assert restored == received


def test_an_unacknowledged_offer_moves_on_after_the_ack_timeout() -> None:
    clock = Clock()
    state, effects = run(create(clock), OfferMade(AGENT_A), clock, 0)
    (ack,) = [t for t in of_type(effects, ScheduleTimer) if t.name == OFFER_ACK_TIMER]
    assert ack.due_at == clock.now + AlertPolicy().offer_ack_timeout
    message = timer_message(ack.name, ack.payload)
    assert message == OfferAckMissed(AGENT_A)
    new, effects = run(state, message, clock, 3)
    assert new.offered_to == ()
    assert new.timeline[-1].data["reason"] == "unacknowledged"
    (revoked,) = pushes_to(effects, "agent", AGENT_A)
    assert revoked.frame_type is FrameType.OFFER_REVOKED
    assert revoked.data["reason"] == "unacknowledged"
    assert of_type(effects, Search)


def test_a_withdrawn_offer_of_a_suspended_agent() -> None:
    clock = Clock()
    new, _ = run(offered_to_a(clock), WithdrawOffer(AGENT_A, "suspended"), clock)
    assert new.offered_to == ()
    assert new.timeline[-1].data["reason"] == "suspended"
    same, effects = run(new, WithdrawOffer(AGENT_A, "suspended"), clock)
    assert same is new
    assert effects == (Reply(new),)


def test_an_admin_reassigns_an_assigned_alert() -> None:
    clock = Clock()
    state = alert_in(AlertStatus.EN_ROUTE, clock=clock)
    assert state.assigned_agent_id == AGENT_A
    new, effects = run(state, Assign(AGENT_B, ADMIN), clock)
    assert (new.status, new.assigned_agent_id) == (AlertStatus.ASSIGNED, AGENT_B)
    assert [e.type for e in new.timeline[-2:]] == ["unassigned", "assigned"]
    assert new.timeline[-2].data["agent_id"] == str(AGENT_A)
    assert new.timeline[-2].data["reason"] == "reassigned"
    assert new.version == state.version + 2
    # The previous agent is told and freed; the new one gets the alert.
    (revoked,) = pushes_to(effects, "agent", AGENT_A)
    assert revoked.frame_type is FrameType.ASSIGNMENT_REVOKED
    assert revoked.data["reason"] == "reassigned"
    sends = of_type(effects, Send)
    assert Send(EntityKind.AGENT, AGENT_A, Released(new.id)) in sends
    assert Send(EntityKind.AGENT, AGENT_B, Assigned(new.id)) in sends
    assert [p.frame_type for p in pushes_to(effects, "agent", AGENT_B)] == [
        FrameType.ALERT_ASSIGNED
    ]
    assert EventType.ALERT_UNASSIGNED in [e.type for e in of_type(effects, Emit)]
    # The new assignee's en-route deadline is armed, not cancelled.
    (deadline,) = [t for t in of_type(effects, ScheduleTimer) if t.name == EN_ROUTE_TIMER]
    assert deadline.payload == {"agent_id": str(AGENT_B)}
    assert CancelTimer(EN_ROUTE_TIMER) not in of_type(effects, CancelTimer)


def test_a_suspended_agents_alert_goes_back_to_dispatching() -> None:
    clock = Clock()
    state = alert_in(AlertStatus.ASSIGNED, clock=clock)
    new, effects = run(state, Unassign(AGENT_A, "agent suspended: report"), clock)
    assert (new.status, new.assigned_agent_id) == (AlertStatus.DISPATCHING, None)
    assert AGENT_A in new.expired_for
    assert new.timeline[-1].type == "unassigned"
    (search,) = of_type(effects, Search)
    assert AGENT_A in search.exclude
    assert Send(EntityKind.AGENT, AGENT_A, Released(new.id)) in of_type(effects, Send)
    assert [p.frame_type for p in pushes_to(effects, "user", USER)] == [FrameType.ALERT_UPDATED]
    # From another agent, or once it is over, an unassign changes nothing.
    same, _ = run(state, Unassign(AGENT_B, "x"), clock)
    assert same is state
    done = alert_in(AlertStatus.RESOLVED, clock=clock)
    assert run(done, Unassign(AGENT_A, "x"), clock)[0] is done


def test_an_agent_not_en_route_by_its_deadline_calls_the_admins_in() -> None:
    clock = Clock()
    policy = AlertPolicy(en_route={AlertType.PANIC: timedelta(seconds=45)})
    state = create(clock)
    state, _ = alert.decide(state, OfferMade(AGENT_A), clock.advance(1), policy)
    assigned, effects = alert.decide(state, alert.AcceptOffer(AGENT_A), clock.advance(1), policy)
    (deadline,) = [t for t in of_type(effects, ScheduleTimer) if t.name == EN_ROUTE_TIMER]
    assert deadline.due_at == clock.now + timedelta(seconds=45)
    assert timer_message(deadline.name, deadline.payload) == EnRouteDue(AGENT_A)
    late, effects = alert.decide(assigned, EnRouteDue(AGENT_A), deadline.due_at, policy)
    assert late.status is AlertStatus.ASSIGNED
    assert late.timeline[-1].type == "en_route_overdue"
    (notice,) = [p for p in of_type(effects, Push) if p.audience.as_tuple()[0] == "admins"]
    assert notice.frame_type is FrameType.ALERT_ESCALATED
    assert notice.data["reason"] == "en_route_overdue"
    assert [e.type for e in of_type(effects, Emit)] == [EventType.ALERT_EN_ROUTE_OVERDUE]
    # On its way in time: the deadline is disarmed and a late timer is a no-op.
    en_route, effects = alert.decide(
        assigned,
        UpdateStatus(AlertStatus.EN_ROUTE, AGENT_A, ActorRole.AGENT),
        clock.advance(5),
        policy,
    )
    assert CancelTimer(EN_ROUTE_TIMER) in of_type(effects, CancelTimer)
    stale, _ = alert.decide(en_route, EnRouteDue(AGENT_A), deadline.due_at, policy)
    assert stale is en_route
