"""Offers: expiry timers, first accept wins, declines, withdrawals."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from actors_kit import (
    ADMIN,
    AGENT_A,
    AGENT_B,
    AGENT_C,
    ALERT_ID,
    USER,
    Clock,
    agent_pushes,
    alert_in,
    assert_effect_order,
    create,
    of_type,
    pushes_to,
    step,
    told_user,
)

from actors import alert
from actors.agent import Assigned, OfferTaken
from actors.alert import (
    OFFER_EXPIRED_TIMER,
    AcceptOffer,
    AlertPolicy,
    AlertState,
    AlertStatus,
    Assign,
    Cancel,
    DeclineOffer,
    Escalate,
    OfferExpired,
    OfferMade,
    offer_timer_id,
    timer_message,
)
from actors.alert_messages import (
    ESCALATION_TIMER,
    OFFER_ACK_TIMER,
    SEARCH_AGAIN_TIMER,
    offer_ack_timer_id,
)
from actors.effects import (
    CancelTimer,
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
    Conflict,
    EntityNotFound,
    InvalidMessage,
    InvalidTransition,
    NoPendingOffer,
    UnknownMessage,
)


def offered(clock: Clock, *agents: UUID) -> AlertState:
    state = create(clock)
    for agent_id in agents:
        state, _ = alert.decide(state, OfferMade(agent_id, distance_m=100.0), clock.now)
    return state


def test_an_offer_schedules_its_expiry_and_tells_only_that_agent() -> None:
    clock = Clock()
    state = create(clock)
    new, effects = alert.decide(state, OfferMade(AGENT_A, distance_m=420.5), clock.advance(2))
    assert_effect_order(effects)
    offer = new.offer_for(AGENT_A)
    assert offer is not None
    assert offer.expires_at == clock.now + timedelta(seconds=30)
    assert new.status is AlertStatus.DISPATCHING
    assert new.timeline[-1].type == "offered"
    assert new.timeline[-1].actor_id is None

    timer, ack = of_type(effects, ScheduleTimer)
    assert timer == ScheduleTimer(
        f"offer:{AGENT_A}", OFFER_EXPIRED_TIMER, offer.expires_at, {"agent_id": str(AGENT_A)}
    )
    # The agent's device must acknowledge it well before it expires.
    assert ack == ScheduleTimer(
        f"offer_ack:{AGENT_A}",
        OFFER_ACK_TIMER,
        clock.now + timedelta(seconds=3),
        {"agent_id": str(AGENT_A)},
    )
    (event,) = of_type(effects, Emit)
    assert (event.topic, event.type) == (Topic.ALERT_RESPONSES, EventType.ALERT_OFFERED)
    assert event.data["agent_id"] == str(AGENT_A)
    (push,) = agent_pushes(effects)
    assert push.audience.as_tuple() == ("agent", str(AGENT_A))
    assert push.frame_type is FrameType.ALERT_OFFER
    assert push.data["alert_id"] == str(ALERT_ID)
    assert push.data["distance_m"] == 400.0  # told to the 100 m (geo.coarse)
    assert push.data["expires_at"] == offer.expires_at.isoformat()
    assert pushes_to(effects, "user", USER) == []


def test_offer_ttl_comes_from_the_message_or_the_policy() -> None:
    clock = Clock()
    state = create(clock)
    short, _ = alert.decide(state, OfferMade(AGENT_A, ttl=timedelta(seconds=5)), clock.now)
    assert short.offered_to[0].expires_at == clock.now + timedelta(seconds=5)
    policy = AlertPolicy(offer_ttl=timedelta(seconds=12))
    longer, _ = alert.decide(state, OfferMade(AGENT_A), clock.now, policy)
    assert longer.offered_to[0].expires_at == clock.now + timedelta(seconds=12)
    with pytest.raises(InvalidMessage):
        alert.decide(state, OfferMade(AGENT_A, ttl=timedelta(0)), clock.now)


def test_a_repeated_offer_changes_nothing() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    again, effects = alert.decide(state, OfferMade(AGENT_A), clock.advance(5))
    assert again is state
    assert effects == (Reply(state),)


def test_offers_only_while_dispatching_or_escalated() -> None:
    for status in [AlertStatus.ASSIGNED, AlertStatus.RESOLVED, AlertStatus.CANCELLED]:
        state = alert_in(status)
        with pytest.raises(Conflict, match="offers are made only while"):
            alert.decide(state, OfferMade(AGENT_B), state.updated_at)
    escalated = alert_in(AlertStatus.ESCALATED)
    new, _ = alert.decide(escalated, OfferMade(AGENT_B), escalated.updated_at)
    assert new.offer_for(AGENT_B) is not None


def test_first_accept_wins_and_the_others_are_revoked() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A, AGENT_B, AGENT_C)
    won, effects = alert.decide(state, AcceptOffer(AGENT_B), clock.advance(4))
    assert_effect_order(effects)
    assert won.status is AlertStatus.ASSIGNED
    assert won.assigned_agent_id == AGENT_B
    assert won.offered_to == ()
    assert won.timeline[-1].type == "accepted"
    assert won.timeline[-1].actor_id == AGENT_B

    # Every expiry timer is disarmed, the winner's included, and so is searching.
    assert set(of_type(effects, CancelTimer)) == {
        *(CancelTimer(offer_timer_id(a)) for a in (AGENT_A, AGENT_B, AGENT_C)),
        *(CancelTimer(offer_ack_timer_id(a)) for a in (AGENT_A, AGENT_B, AGENT_C)),
        CancelTimer(SEARCH_AGAIN_TIMER),
        CancelTimer(ESCALATION_TIMER),
    }
    # Only the winner's en-route deadline is armed.
    assert [t.name for t in of_type(effects, ScheduleTimer)] == ["en_route"]
    for loser in (AGENT_A, AGENT_C):
        (revoked,) = pushes_to(effects, "agent", loser)
        assert revoked.frame_type is FrameType.OFFER_REVOKED
        assert revoked.data == {"alert_id": str(ALERT_ID), "reason": "taken"}
    (assigned,) = pushes_to(effects, "agent", AGENT_B)
    assert assigned.frame_type is FrameType.ALERT_ASSIGNED
    assert assigned.data["status"] == "assigned"
    assert of_type(effects, Send) == [
        Send(EntityKind.AGENT, AGENT_B, Assigned(ALERT_ID)),
        told_user(True),
    ]
    types = [(e.topic, e.type) for e in of_type(effects, Emit)]
    assert types == [
        (Topic.ALERT_RESPONSES, EventType.ALERT_ACCEPTED),
        (Topic.ALERT_STATUS_UPDATES, EventType.ALERT_STATUS_CHANGED),
    ]

    # A later accept loses, and changes nothing.
    before = won.to_snapshot()
    with pytest.raises(InvalidTransition, match="already assigned to another agent"):
        alert.decide(won, AcceptOffer(AGENT_A), clock.advance(1))
    assert won.to_snapshot() == before
    # The winner retrying its accept is answered, not refused.
    again, effects = alert.decide(won, AcceptOffer(AGENT_B), clock.advance(1))
    assert again is won
    assert effects == (Reply(won),)


def test_accept_needs_a_live_offer() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    with pytest.raises(NoPendingOffer):
        alert.decide(state, AcceptOffer(AGENT_B), clock.now)
    # Past its expiry the offer is gone even if the timer has not fired yet.
    with pytest.raises(NoPendingOffer):
        alert.decide(state, AcceptOffer(AGENT_A), clock.now + timedelta(seconds=30))
    ok, _ = alert.decide(state, AcceptOffer(AGENT_A), clock.now + timedelta(seconds=29))
    assert ok.status is AlertStatus.ASSIGNED


def test_decline_disarms_the_timer_and_is_remembered() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A, AGENT_B)
    new, effects = alert.decide(state, DeclineOffer(AGENT_A, reason="too far"), clock.advance(3))
    assert_effect_order(effects)
    assert [o.agent_id for o in new.offered_to] == [AGENT_B]
    assert new.declined_by == (AGENT_A,)
    assert new.status is AlertStatus.DISPATCHING
    assert of_type(effects, CancelTimer) == [
        CancelTimer(offer_timer_id(AGENT_A)),
        CancelTimer(offer_ack_timer_id(AGENT_A)),
    ]
    (event,) = of_type(effects, Emit)
    assert (event.topic, event.type) == (Topic.ALERT_RESPONSES, EventType.ALERT_DECLINED)
    assert event.data["reason"] == "too far"
    assert of_type(effects, Push) == []
    assert new.timeline[-1].type == "declined"

    retried, effects = alert.decide(new, DeclineOffer(AGENT_A), clock.advance(1))
    assert retried is new
    assert effects == (Reply(new),)
    with pytest.raises(NoPendingOffer):
        alert.decide(new, DeclineOffer(AGENT_C), clock.now)
    with pytest.raises(Conflict, match="already declined"):
        alert.decide(new, OfferMade(AGENT_A), clock.now)
    with pytest.raises(NoPendingOffer):
        alert.decide(new, AcceptOffer(AGENT_A), clock.now)


def test_offer_expiry_timer_withdraws_the_offer() -> None:
    clock = Clock()
    state, effects = alert.decide(create(clock), OfferMade(AGENT_A), clock.now)
    state, _ = alert.decide(state, OfferMade(AGENT_B), clock.now)
    timer, _ack = of_type(effects, ScheduleTimer)
    # The runtime stores (name, payload) and turns it back into the message.
    msg = timer_message(timer.name, timer.payload)
    assert msg == OfferExpired(AGENT_A)

    # Too early (re-armed or a clock running fast): nothing happens.
    early, effects = alert.decide(state, msg, clock.now + timedelta(seconds=29))
    assert early is state
    assert effects == (Reply(state),)

    expired, effects = alert.decide(state, msg, timer.due_at)
    assert_effect_order(effects)
    assert [o.agent_id for o in expired.offered_to] == [AGENT_B]
    assert expired.declined_by == ()
    assert expired.timeline[-1].type == "offer_expired"
    (event,) = of_type(effects, Emit)
    assert (event.topic, event.type) == (Topic.ALERT_RESPONSES, EventType.ALERT_OFFER_EXPIRED)
    (revoked,) = of_type(effects, Push)
    assert revoked.audience.as_tuple() == ("agent", str(AGENT_A))
    assert revoked.data == {"alert_id": str(ALERT_ID), "reason": "expired"}


def test_a_stale_expiry_after_accept_is_a_no_op() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    won, _ = alert.decide(state, AcceptOffer(AGENT_A), clock.advance(1))
    late, effects = alert.decide(won, OfferExpired(AGENT_A), clock.advance(60))
    assert late is won
    assert effects == (Reply(won),)
    assert of_type(effects, Persist) == []


def test_unknown_timers_are_a_wiring_bug() -> None:
    with pytest.raises(UnknownMessage):
        timer_message("escalate", {})


def test_admin_assignment_revokes_other_offers_but_not_the_assignees() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A, AGENT_B)
    new, effects = alert.decide(state, Assign(AGENT_A, ADMIN), clock.advance(2))
    assert new.assigned_agent_id == AGENT_A
    assert {t.timer_id for t in of_type(effects, CancelTimer)} == {
        offer_timer_id(AGENT_A),
        offer_timer_id(AGENT_B),
        offer_ack_timer_id(AGENT_A),
        offer_ack_timer_id(AGENT_B),
        SEARCH_AGAIN_TIMER,
        ESCALATION_TIMER,
    }
    assert [p.frame_type for p in pushes_to(effects, "agent", AGENT_A)] == [
        FrameType.ALERT_ASSIGNED
    ]
    assert [p.data["reason"] for p in pushes_to(effects, "agent", AGENT_B)] == ["taken"]
    repeated, effects = alert.decide(new, Assign(AGENT_A, ADMIN), clock.advance(1))
    assert repeated is new
    assert effects == (Reply(new),)
    # Assigning another agent is a reassignment (test_alert_presence.py).


def test_cancel_withdraws_pending_offers() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A, AGENT_B)
    new, effects = alert.decide(state, Cancel(USER), clock.advance(1))
    assert new.offered_to == ()
    assert {t.timer_id for t in of_type(effects, CancelTimer)} == {
        offer_timer_id(AGENT_A),
        offer_timer_id(AGENT_B),
        offer_ack_timer_id(AGENT_A),
        offer_ack_timer_id(AGENT_B),
        SEARCH_AGAIN_TIMER,
        ESCALATION_TIMER,
    }
    for agent_id in (AGENT_A, AGENT_B):
        (push,) = pushes_to(effects, "agent", agent_id)
        assert push.frame_type is FrameType.OFFER_REVOKED
        assert push.data["reason"] == "cancelled"


def test_escalation_keeps_pending_offers() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    new, effects = alert.decide(state, Escalate("nobody close"), clock.advance(1))
    assert new.status is AlertStatus.ESCALATED
    assert new.offered_to == state.offered_to
    assert of_type(effects, CancelTimer) == []
    assert pushes_to(effects, "agent", AGENT_A) == []
    won, _ = alert.decide(new, AcceptOffer(AGENT_A), clock.advance(1))
    assert won.status is AlertStatus.ASSIGNED


def test_an_accept_an_agent_entity_forwarded_is_answered_back_to_it() -> None:
    clock = Clock()
    offered = step(create(clock), OfferMade(AGENT_A), clock)
    forwarded = AcceptOffer(AGENT_A, alert_id=ALERT_ID)
    taken, effects = alert.decide(offered, forwarded, clock.advance(1))
    assert (taken.status, taken.assigned_agent_id) == (AlertStatus.ASSIGNED, AGENT_A)
    assert of_type(effects, Send) == [
        Send(EntityKind.AGENT, AGENT_A, Assigned(ALERT_ID)),
        told_user(True),
        Send(EntityKind.AGENT, AGENT_A, OfferTaken(ALERT_ID, status=AlertStatus.ASSIGNED)),
    ]
    # The same accept, now refused (taken by the very agent: unchanged, answered as taken).
    again, effects = alert.decide(taken, forwarded, clock.advance(1))
    assert again is taken
    # Another agent's: refused, answered as such, nothing changes.
    other = AcceptOffer(AGENT_B, alert_id=ALERT_ID)
    same, effects = alert.decide(taken, other, clock.advance(1))
    assert same is taken
    ((refused,),) = [[e for e in effects if isinstance(e, Send)]]
    assert (refused.entity_kind, refused.entity_id) == (EntityKind.AGENT, AGENT_B)
    assert isinstance(refused.message, OfferTaken)
    assert isinstance(refused.message.refusal, InvalidTransition)


def test_an_accept_forwarded_for_a_missing_alert_is_answered_not_found() -> None:
    forwarded = AcceptOffer(AGENT_A, alert_id=ALERT_ID)
    state, effects = alert.decide(None, forwarded, Clock().now)
    assert state is None
    ((refused,),) = [[e for e in effects if isinstance(e, Send)]]
    assert isinstance(refused.message, OfferTaken)
    assert isinstance(refused.message.refusal, EntityNotFound)
    assert str(ALERT_ID) in str(refused.message.refusal)


def test_an_accept_carrying_the_agents_fix_shows_the_user_the_responder_coming_at_once() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    fix_at = clock.now
    accept = AcceptOffer(
        AGENT_A, latitude=state.latitude + 0.01, longitude=state.longitude, fix_at=fix_at
    )
    won, effects = alert.decide(state, accept, clock.advance(2))
    assert_effect_order(effects)
    assert won.status is AlertStatus.ASSIGNED
    to_user = {p.frame_type: p.data for p in pushes_to(effects, "user", USER)}
    assert to_user[FrameType.AGENT_LOCATION]["latitude"] == state.latitude + 0.01
    eta = to_user[FrameType.ALERT_ETA]
    assert eta["agent_id"] == str(AGENT_A)
    assert 1_100 < eta["distance_m"] < 1_120  # 0.01° of latitude
    assert eta["eta_s"] > 0
    assert FrameType.ALERT_ETA in {p.frame_type for p in pushes_to(effects, "agent", AGENT_A)}
    # Told, not recorded: the agent's next fix records the first estimate.
    assert won.eta_agent_id is None
    assert won.timeline[-1].type == "accepted"

    # Without a fix (an agent that never reported one) the accept tells nothing more.
    plain, effects = alert.decide(offered(clock, AGENT_A), AcceptOffer(AGENT_A), clock.now)
    assert plain.status is AlertStatus.ASSIGNED
    assert FrameType.ALERT_ETA not in {p.frame_type for p in pushes_to(effects, "user", USER)}
