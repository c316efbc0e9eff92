"""What an alert's own user is shown (``actors.alert_view``): a duress "cancel"
looks exactly like a real one, and refused PINs and a PIN lock are not seen."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from actors_kit import (
    AGENT_A,
    LAT,
    LON,
    USER,
    Clock,
    admin_pushes,
    assert_effect_order,
    create,
    pushes_to,
)

from actors import alert
from actors.alert import AcceptOffer, AlertState, AlertStatus, SearchResult
from actors.alert_messages import AgentLocation, EscalationDue, NotificationOutcome, PinRefused
from actors.effects import Effect, Emit, EventType, FrameType
from actors.search import Candidate

S = AlertStatus


def _offered(clock: Clock) -> AlertState:
    state = create(clock)
    result = SearchResult(1, (Candidate(AGENT_A, 50, LAT, LON, clock.now),))
    state, _ = alert.decide(state, result, clock.advance(1))
    return state


def _user_frames(effects: tuple[Effect, ...]) -> list[dict[str, Any]]:
    return [dict(p.data) for p in pushes_to(effects, "user", USER)]


def _seen(state: AlertState) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    shown = state.as_user_sees()
    timeline = [(e.at, e.type, e.actor_id, dict(e.data)) for e in shown.timeline]
    return shown.view(), timeline


def _notice(occasion: str, n: int) -> NotificationOutcome:
    return NotificationOutcome(UUID(int=n), "email", occasion, UUID(int=0xC0), "delivered", 1)


def test_finding_duress_cancel_every_user_visible_field_matches_a_real_cancel() -> None:
    """The same alert cancelled for real and under duress: the answer, the frames
    and the timeline the user reads are equal, field by field; and they stay so
    while responders go on (accepts, escalation steps, notices)."""
    clock = Clock()
    base = _offered(clock)
    at = clock.advance(2)
    real, real_effects = alert.decide(base, alert.Cancel(USER, note="ok now"), at)
    duress, duress_effects = alert.decide(base, alert.Duress(USER, note="ok now"), at)
    assert duress.status is S.ESCALATED
    assert _user_frames(duress_effects) == _user_frames(real_effects)
    assert _seen(duress) == _seen(real)
    assert duress.to_snapshot()["user_status"] == "cancelled"

    # Responders go on; the user is shown nothing of it, updated_at included.
    later = duress
    for msg in (
        EscalationDue(0),
        AcceptOffer(AGENT_A),
        alert.UpdateStatus(S.EN_ROUTE, AGENT_A, alert.ActorRole.AGENT),
        PinRefused(USER),
        _notice("cancelled", 1),
    ):
        later, effects = alert.decide(later, msg, clock.advance(1))
        assert _user_frames(effects) == []
    assert later.assigned_agent_id == AGENT_A
    assert _seen(later) == _seen(real)
    # A notice of the raise is shown after either, and moves both alike.
    real, _ = alert.decide(real, _notice("raised", 2), clock.advance(1))
    later, _ = alert.decide(later, _notice("raised", 2), clock.now)
    assert _seen(later) == _seen(real)


def test_finding_duress_cancel_never_shows_an_assignee_the_real_cancel_would_not() -> None:
    clock = Clock()
    duress, _ = alert.decide(_offered(clock), alert.Duress(USER), clock.advance(1))
    taken, _ = alert.decide(duress, AcceptOffer(AGENT_A), clock.advance(1))
    assert taken.assigned_agent_id == AGENT_A
    assert taken.as_user_sees().assigned_agent_id is None
    assert taken.as_user_sees().updated_at == duress.as_user_sees().updated_at


def test_a_duress_cancel_under_way_shows_the_assignee_a_real_cancel_keeps() -> None:
    clock = Clock()
    taken, _ = alert.decide(_offered(clock), AcceptOffer(AGENT_A), clock.advance(1))
    at = clock.advance(1)
    real, real_effects = alert.decide(taken, alert.Cancel(USER), at)
    duress, duress_effects = alert.decide(taken, alert.Duress(USER), at)
    assert duress.status is S.ASSIGNED
    assert _seen(duress) == _seen(real)
    assert _user_frames(duress_effects) == _user_frames(real_effects)
    assert duress.as_user_sees().assigned_agent_id == AGENT_A


def test_a_refused_pin_is_recorded_for_responders_and_not_shown_to_the_user() -> None:
    clock = Clock()
    base = _offered(clock)
    new, effects = alert.decide(base, PinRefused(USER), clock.advance(5))
    assert_effect_order(effects)
    assert (new.status, new.timeline[-1].type) == (S.DISPATCHING, "pin_refused")
    assert _user_frames(effects) == []
    assert [e.type for e in effects if isinstance(e, Emit)] == [EventType.ALERT_PIN_REFUSED]
    assert _seen(new) == _seen(base)  # not even updated_at moves


def test_past_the_pin_limit_the_alert_is_escalated_quietly_not_cancelled() -> None:
    clock = Clock()
    base = _offered(clock)
    new, effects = alert.decide(base, PinRefused(USER, over_limit=True), clock.advance(5))
    assert_effect_order(effects)
    assert new.status is S.ESCALATED
    assert new.coerced_at == clock.now
    assert [e.type for e in new.timeline[-2:]] == ["pin_refused", "escalated"]
    assert new.timeline[-1].data["reason"] == "pin_attempts"
    assert _user_frames(effects) == []
    admins = admin_pushes(effects, "alert.escalated")
    assert [(p.frame_type, p.data["reason"]) for p in admins] == [
        (FrameType.ALERT_ESCALATED, "pin_attempts")
    ]
    # The user is shown the alert as it was; responders hear of it marked duress.
    assert _seen(new) == _seen(base)
    assert new.to_snapshot()["user_status"] == "dispatching"
    assert AlertState.from_snapshot(new.to_snapshot()) == new
    taken, effects = alert.decide(new, AcceptOffer(AGENT_A), clock.advance(1))
    assert _user_frames(effects) == []
    (assigned,) = pushes_to(effects, "agent", AGENT_A)
    assert assigned.data["duress"] is True
    # Further refusals are only recorded.
    again, _ = alert.decide(taken, PinRefused(USER, over_limit=True), clock.advance(1))
    assert (again.status, again.coerced_at) == (S.ASSIGNED, new.coerced_at)
    assert again.as_user_sees().status is S.DISPATCHING


def test_after_a_pin_lock_the_assignee_the_user_is_shown_keeps_moving_on_their_map() -> None:
    """A wrong PIN leaves the responder's position coming; so must the lock."""
    clock = Clock()
    taken, _ = alert.decide(_offered(clock), AcceptOffer(AGENT_A), clock.advance(1))
    locked, _ = alert.decide(taken, PinRefused(USER, over_limit=True), clock.advance(1))
    assert locked.coerced_at is not None
    assert locked.as_user_sees().assigned_agent_id == AGENT_A
    at = clock.advance(1)
    _, effects = alert.decide(locked, AgentLocation(AGENT_A, LAT, LON, 5.0, at), at)
    to_user, eta = pushes_to(effects, "user", USER)
    assert to_user.frame_type is FrameType.AGENT_LOCATION
    assert eta.frame_type is FrameType.ALERT_ETA
