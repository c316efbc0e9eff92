"""Dispatch decisions of the alert machine: searches, offers from their results,
searching again after a decline, an expiry or nothing found. Hand-driven clock."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from actors_kit import (
    AGENT_A,
    AGENT_B,
    AGENT_C,
    LAT,
    LON,
    USER,
    Clock,
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
    Cancel,
    DeclineOffer,
    OfferExpired,
    SearchAgain,
    SearchResult,
    timer_message,
)
from actors.alert_messages import OFFER_EXPIRED_TIMER, SEARCH_AGAIN_TIMER
from actors.effects import (
    CancelTimer,
    Emit,
    EventType,
    FrameType,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
)
from actors.search import Candidate, Search

AGENT_D = UUID(int=0xA004)


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
    (expiry,) = of_type(effects, ScheduleTimer)
    assert (expiry.name, expiry.due_at) == (OFFER_EXPIRED_TIMER, clock.now + timedelta(seconds=30))
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
    assert {p.audience.id for p in of_type(effects, Push)} == {AGENT_A, AGENT_B, AGENT_C}
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
    assert (again.timer_id, again.due_at) == (SEARCH_AGAIN_TIMER, clock.now + timedelta(seconds=10))
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
    assert again.due_at == clock.now + timedelta(seconds=10)

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
