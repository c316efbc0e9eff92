"""Dispatch decisions of the alert machine: searches, offers from their results,
searching again after a decline, an expiry or nothing found. Hand-driven clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest
from actors_kit import (
    AGENT_A,
    AGENT_B,
    AGENT_C,
    LAT,
    LON,
    USER,
    Clock,
    admin_pushes,
    agent_pushes,
    assert_effect_order,
    create,
    of_type,
    pushes_to,
)

from actors import alert
from actors.alert import (
    AcceptOffer,
    AlertPolicy,
    AlertState,
    AlertStatus,
    AlertType,
    Cancel,
    DeclineOffer,
    OfferExpired,
    SearchAgain,
    SearchResult,
    timer_message,
)
from actors.alert_messages import (
    ESCALATION_TIMER,
    OFFER_EXPIRED_TIMER,
    SEARCH_AGAIN_TIMER,
    EscalationDue,
    EscalationStep,
)
from actors.effects import (
    CancelTimer,
    Emit,
    EventType,
    FrameType,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
    Topic,
)
from actors.errors import InvalidTransition, NotPermitted
from actors.search import Candidate, Search

AGENT_D = UUID(int=0xA004)
S = AlertStatus


def found(clock: Clock, *agents: tuple[UUID, float]) -> tuple[Candidate, ...]:
    return tuple(Candidate(a, d, LAT, LON, clock.now) for a, d in agents)


def searched(effects: tuple[object, ...]) -> Search:
    (search,) = of_type(effects, Search)  # type: ignore[arg-type]
    return search


def create_msg() -> alert.CreateAlert:
    return alert.CreateAlert(UUID(int=0xE001), USER, alert.AlertType.PANIC, LAT, LON)


def test_a_result_becomes_an_offer_to_the_nearest_agent() -> None:
    clock = Clock()
    state = create(clock)
    assert state.search_tag == 1
    result = SearchResult(1, found(clock, (AGENT_B, 120.04), (AGENT_A, 480.0)))
    new, effects = alert.decide(state, result, clock.advance(0.05))
    assert_effect_order(effects)
    assert [o.agent_id for o in new.offered_to] == [AGENT_B]
    assert new.offered_to[0].distance_m == 120.0
    assert new.timeline[-1].type == "offered"
    assert new.version == state.version + 1
    (persist,) = of_type(effects, Persist)
    assert persist.snapshot["offered_to"][0]["agent_id"] == str(AGENT_B)
    assert [e.type for e in of_type(effects, Emit)] == [EventType.ALERT_OFFERED]
    # Its expiry is armed, and searching stops while the offer stands.
    expiry, ack = of_type(effects, ScheduleTimer)
    assert (expiry.name, expiry.due_at) == (OFFER_EXPIRED_TIMER, clock.now + timedelta(seconds=30))
    assert ack.due_at == clock.now + timedelta(seconds=3)
    assert of_type(effects, CancelTimer) == [CancelTimer(SEARCH_AGAIN_TIMER)]
    (offer,) = pushes_to(effects, "agent", AGENT_B)
    assert offer.frame_type is FrameType.ALERT_OFFER
    assert pushes_to(effects, "agent", AGENT_A) == []


def test_offer_to_k_offers_the_k_nearest_at_once() -> None:
    clock = Clock()
    policy = AlertPolicy(offer_to=3)
    state, _ = alert.decide(None, create_msg(), clock.now, policy)
    candidates = found(clock, (AGENT_A, 100), (AGENT_B, 200), (AGENT_C, 300), (AGENT_D, 400))
    new, effects = alert.decide(state, SearchResult(1, candidates), clock.advance(1), policy)
    assert_effect_order(effects)
    assert [o.agent_id for o in new.offered_to] == [AGENT_A, AGENT_B, AGENT_C]
    assert [e.type for e in new.timeline] == ["created", "offered", "offered", "offered"]
    assert new.version == state.version + 3
    assert len(of_type(effects, Persist)) == 1
    assert len(of_type(effects, Emit)) == 3
    assert {p.audience.id for p in agent_pushes(effects)} == {AGENT_A, AGENT_B, AGENT_C}
    # The admins hear of the three offers once, with the latest offer's time.
    (admins,) = admin_pushes(effects)
    assert admins.frame_type is FrameType.ALERT_UPDATED
    assert admins.data["offered_at"] == new.timeline[-1].at.isoformat()
    assert CancelTimer(SEARCH_AGAIN_TIMER) in of_type(effects, CancelTimer)

    # The first accept wins; the other two are told the offer is gone.
    won, effects = alert.decide(new, AcceptOffer(AGENT_B), clock.advance(2), policy)
    assert won.assigned_agent_id == AGENT_B
    revoked = [p for p in of_type(effects, Push) if p.frame_type is FrameType.OFFER_REVOKED]
    assert {p.audience.id for p in revoked} == {AGENT_A, AGENT_C}


def test_an_old_or_unwanted_result_changes_nothing() -> None:
    clock = Clock()
    state = create(clock)
    late = SearchResult(0, found(clock, (AGENT_A, 10)))
    assert alert.decide(state, late, clock.now) == (state, (Reply(state),))
    empty = SearchResult(1, ())
    assert alert.decide(state, empty, clock.now) == (state, (Reply(state),))
    cancelled, _ = alert.decide(state, Cancel(USER), clock.advance(1))
    result = SearchResult(1, found(clock, (AGENT_A, 10)))
    assert alert.decide(cancelled, result, clock.now) == (cancelled, (Reply(cancelled),))


def test_a_decline_searches_again_at_once_without_the_decliner() -> None:
    clock = Clock()
    state = create(clock)
    state, _ = alert.decide(state, SearchResult(1, found(clock, (AGENT_A, 50))), clock.now)
    new, effects = alert.decide(state, DeclineOffer(AGENT_A, "busy"), clock.advance(3))
    assert_effect_order(effects)
    assert new.search_tag == 2
    search = searched(effects)
    assert search.tag == 2
    assert AGENT_A in search.exclude
    (again,) = of_type(effects, ScheduleTimer)
    assert (again.timer_id, again.due_at) == (SEARCH_AGAIN_TIMER, clock.now + timedelta(seconds=2))
    # The new search's answer still lists the decliner (a stale index): skipped.
    result = SearchResult(2, found(clock, (AGENT_A, 50), (AGENT_C, 900)))
    offered, _ = alert.decide(new, result, clock.advance(0.1))
    assert [o.agent_id for o in offered.offered_to] == [AGENT_C]


def test_an_expiry_searches_again_and_never_offers_to_that_agent_again() -> None:
    clock = Clock()
    state = create(clock)
    state, _ = alert.decide(state, SearchResult(1, found(clock, (AGENT_A, 50))), clock.now)
    new, effects = alert.decide(state, OfferExpired(AGENT_A), clock.advance(31))
    assert_effect_order(effects)
    assert new.expired_for == (AGENT_A,)
    assert searched(effects).exclude == frozenset({AGENT_A})
    (revoked,) = pushes_to(effects, "agent", AGENT_A)
    assert revoked.data["reason"] == "expired"
    again, _ = alert.decide(new, SearchResult(2, found(clock, (AGENT_A, 50))), clock.now)
    assert again is new
    # The expired agent survives a snapshot round trip.
    assert AlertState.from_snapshot(new.to_snapshot()) == new


def test_search_again_searches_only_while_an_offer_is_wanted() -> None:
    clock = Clock()
    state = create(clock)
    assert timer_message(SEARCH_AGAIN_TIMER, {}) == SearchAgain()
    new, effects = alert.decide(state, SearchAgain(), clock.advance(10))
    assert_effect_order(effects)
    # Soft: a new search and its timer, no new version, nothing persisted.
    assert (new.search_tag, new.version) == (2, state.version)
    assert of_type(effects, Persist) == []
    assert searched(effects).tag == 2
    (again,) = of_type(effects, ScheduleTimer)
    assert again.due_at == clock.now + timedelta(seconds=2)

    offered, _ = alert.decide(new, SearchResult(2, found(clock, (AGENT_B, 5))), clock.now)
    assert alert.decide(offered, SearchAgain(), clock.advance(10)) == (offered, (Reply(offered),))
    done, effects = alert.decide(offered, AcceptOffer(AGENT_B), clock.advance(1))
    assert CancelTimer(SEARCH_AGAIN_TIMER) in of_type(effects, CancelTimer)
    assert alert.decide(done, SearchAgain(), clock.advance(10)) == (done, (Reply(done),))


def test_snapshots_written_before_dispatch_fields_existed_still_load() -> None:
    clock = Clock()
    snapshot = create(clock).to_snapshot()
    del snapshot["expired_for"], snapshot["search_tag"]
    old = AlertState.from_snapshot(snapshot)
    assert (old.expired_for, old.search_tag) == ((), 0)


# --- escalation steps, on an injected clock ---------------------------------------------


def due_step(effects: tuple[object, ...]) -> tuple[int, object] | None:
    timers = [t for t in of_type(effects, ScheduleTimer) if t.name == ESCALATION_TIMER]  # type: ignore[arg-type]
    if not timers:
        return None
    (timer,) = timers
    return timer.payload["step"], timer.due_at


def test_the_default_steps_widen_then_offer_to_many_then_escalate() -> None:
    clock = Clock()
    created_at = clock.now
    state, effects = alert.decide(None, create_msg(), clock.now)
    assert due_step(effects) == (0, created_at + timedelta(seconds=30))

    # 30 s, nobody accepted: the search widens to 4 rings.
    wider, effects = alert.decide(state, EscalationDue(0), clock.advance(30))
    assert_effect_order(effects)
    assert (wider.escalation_step, wider.search_rings, wider.status) == (1, 4, S.DISPATCHING)
    assert wider.timeline[-1].type == "escalation_step"
    assert wider.timeline[-1].data == {"step": 1, "rings": 4, "offer_to": None, "escalate": False}
    (event,) = of_type(effects, Emit)
    assert (event.topic, event.type) == (Topic.ALERT_RESPONSES, EventType.ALERT_ESCALATION_STEP)
    assert searched(effects).rings == 4
    assert due_step(effects) == (1, created_at + timedelta(seconds=60))

    # 60 s: offers to everyone found within 6 rings (up to 20 at once).
    many, effects = alert.decide(wider, EscalationDue(1), clock.advance(30))
    assert (many.search_rings, many.offer_to) == (6, 20)
    search = searched(effects)
    assert (search.rings, search.k) == (6, 20)
    result = SearchResult(search.tag, found(clock, (AGENT_A, 9000), (AGENT_B, 12000)))
    offered, _ = alert.decide(many, result, clock.advance(0.1))
    assert [o.agent_id for o in offered.offered_to] == [AGENT_A, AGENT_B]
    assert due_step(effects) == (2, created_at + timedelta(seconds=90))

    # 90 s: escalated; the offers stand, the user hears of it, no step is left.
    escalated, effects = alert.decide(offered, EscalationDue(2), clock.advance(30))
    assert_effect_order(effects)
    assert escalated.status is S.ESCALATED
    assert escalated.timeline[-1].type == "escalated"
    assert escalated.timeline[-1].data["reason"] == "no responder accepted in time"
    assert [o.agent_id for o in escalated.offered_to] == [AGENT_A, AGENT_B]
    assert [(e.topic, e.type) for e in of_type(effects, Emit)] == [
        (Topic.ALERT_STATUS_UPDATES, EventType.ALERT_STATUS_CHANGED)
    ]
    (updated,) = pushes_to(effects, "user", USER)
    assert updated.data["status"] == "escalated"
    # Every admin's portal is told.
    (notice,) = admin_pushes(effects, "alert.escalated")
    assert notice.frame_type is FrameType.ALERT_ESCALATED
    assert (notice.data["alert_id"], notice.data["reason"]) == (
        str(escalated.id),
        "no responder accepted in time",
    )
    assert due_step(effects) is None
    # Every step is in the timeline, in order.
    kinds = [e.type for e in escalated.timeline]
    assert kinds == [
        "created",
        "escalation_step",
        "escalation_step",
        "offered",
        "offered",
        "escalated",
    ]


def test_a_step_after_acceptance_or_a_repeated_step_changes_nothing() -> None:
    clock = Clock()
    state = create(clock)
    state, _ = alert.decide(state, SearchResult(1, found(clock, (AGENT_A, 50))), clock.now)
    assigned, effects = alert.decide(state, AcceptOffer(AGENT_A), clock.advance(5))
    assert CancelTimer(ESCALATION_TIMER) in of_type(effects, CancelTimer)
    assert alert.decide(assigned, EscalationDue(0), clock.advance(30)) == (
        assigned,
        (Reply(assigned),),
    )
    wider, _ = alert.decide(state, EscalationDue(0), clock.advance(30))
    assert alert.decide(wider, EscalationDue(0), clock.now) == (wider, (Reply(wider),))
    assert timer_message(ESCALATION_TIMER, {"step": 1}) == EscalationDue(1)


def test_steps_are_configured_per_alert_type() -> None:
    clock = Clock()
    policy = AlertPolicy(
        escalation={
            AlertType.MEDICAL: (EscalationStep(after=timedelta(seconds=20), escalate=True),),
            AlertType.OTHER: (),
        }
    )
    medical = replace(create_msg(), alert_type=AlertType.MEDICAL)
    state, effects = alert.decide(None, medical, clock.now, policy)
    assert due_step(effects) == (0, clock.now + timedelta(seconds=20))
    escalated, _ = alert.decide(state, EscalationDue(0), clock.advance(20), policy)
    assert escalated.status is S.ESCALATED

    other = replace(create_msg(), alert_type=AlertType.OTHER)
    _, effects = alert.decide(None, other, clock.now, policy)
    assert due_step(effects) is None
    panic = replace(create_msg(), alert_type=AlertType.PANIC)  # not listed: the default
    _, effects = alert.decide(None, panic, clock.now, policy)
    assert due_step(effects) == (0, clock.now + timedelta(seconds=30))


def test_a_silent_alert_escalates_without_telling_the_user() -> None:
    clock = Clock()
    state = create(clock, silent=True)
    escalated = state
    for step in range(3):
        escalated, effects = alert.decide(escalated, EscalationDue(step), clock.advance(30))
    assert escalated.status is S.ESCALATED
    assert pushes_to(effects, "user", USER) == []


def test_escalation_steps_must_grow_and_make_sense() -> None:
    steps = (EscalationStep(timedelta(seconds=60)), EscalationStep(timedelta(seconds=30)))
    with pytest.raises(ValueError, match="order"):
        AlertPolicy(escalation={AlertType.FIRE: steps})
    with pytest.raises(ValueError, match="after the alert was created"):
        EscalationStep(after=timedelta(0))
    with pytest.raises(ValueError, match="offer_to >= 1"):
        EscalationStep(after=timedelta(seconds=5), offer_to=0)


# --- duress ------------------------------------------------------------------------------


def test_a_duress_cancel_shows_the_user_cancelled_and_escalates_for_responders() -> None:
    clock = Clock()
    state = create(clock)
    state, _ = alert.decide(state, SearchResult(1, found(clock, (AGENT_A, 50))), clock.now)
    new, effects = alert.decide(state, alert.Duress(USER), clock.advance(5))
    assert_effect_order(effects)
    assert new.status is S.ESCALATED
    assert new.duress_at == clock.now
    assert new.timeline[-1].data["reason"] == "duress"
    assert [o.agent_id for o in new.offered_to] == [AGENT_A]  # the offer stands
    # The user's sockets get exactly one frame: cancelled.
    (shown,) = pushes_to(effects, "user", USER)
    assert (shown.data["status"], shown.data["previous_status"]) == ("cancelled", "dispatching")
    assert "duress" not in shown.data
    (event,) = of_type(effects, Emit)
    assert (event.topic, event.data["status"], event.data["reason"]) == (
        Topic.ALERT_STATUS_UPDATES,
        "escalated",
        "duress",
    )
    # What the user is shown: cancelled, its timeline ending with that cancel.
    seen = new.as_user_sees()
    assert seen.status is S.CANCELLED
    assert [e.type for e in seen.timeline] == ["created", "offered", "cancelled"]
    assert seen.timeline[-1].actor_id == USER
    assert AlertState.from_snapshot(new.to_snapshot()) == new

    # From now on the user hears nothing, responders everything, marked duress.
    won, effects = alert.decide(new, AcceptOffer(AGENT_A), clock.advance(3))
    assert pushes_to(effects, "user", USER) == []
    (assigned,) = pushes_to(effects, "agent", AGENT_A)
    assert assigned.data["duress"] is True
    assert assigned.data["silent"] is True
    moving, effects = alert.decide(
        won, alert.UpdateStatus(S.EN_ROUTE, AGENT_A, alert.ActorRole.AGENT), clock.advance(1)
    )
    assert pushes_to(effects, "user", USER) == []
    assert moving.as_user_sees().status is S.CANCELLED
    assert alert.decide(moving, alert.Duress(USER), clock.now) == (moving, (Reply(moving),))


def test_a_duress_cancel_of_an_alert_under_way_keeps_its_status_and_tells_the_agent() -> None:
    clock = Clock()
    state = create(clock)
    state, _ = alert.decide(state, SearchResult(1, found(clock, (AGENT_A, 50))), clock.now)
    state, _ = alert.decide(state, AcceptOffer(AGENT_A), clock.advance(1))
    new, effects = alert.decide(state, alert.Duress(USER), clock.advance(1))
    assert_effect_order(effects)
    assert (new.status, new.timeline[-1].type) == (S.ASSIGNED, "duress")
    (told,) = pushes_to(effects, "agent", AGENT_A)
    assert told.data["duress"] is True
    (shown,) = pushes_to(effects, "user", USER)
    assert shown.data["status"] == "cancelled"
    assert [e.type for e in of_type(effects, Emit)] == [EventType.ALERT_DURESS]


def test_only_the_alerts_user_may_cancel_under_duress_and_not_after_the_end() -> None:
    clock = Clock()
    state = create(clock)
    with pytest.raises(NotPermitted):
        alert.decide(state, alert.Duress(AGENT_A), clock.now)
    over, _ = alert.decide(state, alert.Cancel(USER), clock.advance(1))
    with pytest.raises(InvalidTransition):
        alert.decide(over, alert.Duress(USER), clock.now)


# --- response times ------------------------------------------------------------------------


def test_response_times_are_read_from_the_timeline() -> None:
    clock = Clock()
    state = create(clock)
    assert state.response_times() == {}
    state, _ = alert.decide(
        state, SearchResult(1, found(clock, (AGENT_A, 50))), clock.advance(0.25)
    )
    state, _ = alert.decide(state, AcceptOffer(AGENT_A), clock.advance(10))
    for status, seconds in ((S.EN_ROUTE, 5), (S.ON_SCENE, 300), (S.RESOLVED, 600)):
        update = alert.UpdateStatus(status, AGENT_A, alert.ActorRole.AGENT)
        state, _ = alert.decide(state, update, clock.advance(seconds))
    assert state.response_times() == {
        "offer": 0.25,
        "accept": 10.25,
        "on_scene": 315.25,
        "resolve": 915.25,
    }
    assert state.to_snapshot()["response_s"] == state.response_times()
