"""Who is told what: the user, the assigned agent, and the silent-alert rule."""

from __future__ import annotations

from uuid import UUID

import pytest
from actors_kit import (
    AGENT_A,
    ALERT_ID,
    USER,
    Clock,
    agent_pushes,
    alert_in,
    create,
    of_type,
    pushes_to,
    told_user,
)

from actors import alert
from actors.alert import (
    TERMINAL,
    AcceptOffer,
    ActorRole,
    AlertStatus,
    Cancel,
    Escalate,
    OfferMade,
    UpdateStatus,
    user_sees,
)
from actors.alert_messages import AgentLocation, UserLocation
from actors.effects import Effect, Emit, EventType, FrameType, Reply

S = AlertStatus


def walk(*, silent: bool) -> list[tuple[AlertStatus, tuple[Effect, ...]]]:
    """Effects of each status change along dispatching → ... → resolved."""
    clock = Clock()
    state = create(clock, silent=silent)
    state, _ = alert.decide(state, OfferMade(AGENT_A), clock.advance(1))
    out: list[tuple[AlertStatus, tuple[Effect, ...]]] = []
    for msg in [
        AcceptOffer(AGENT_A),
        UpdateStatus(S.EN_ROUTE, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.ON_SCENE, AGENT_A, ActorRole.AGENT),
        UpdateStatus(S.RESOLVED, AGENT_A, ActorRole.AGENT),
    ]:
        state, effects = alert.decide(state, msg, clock.advance(1))
        out.append((state.status, effects))
    return out


def test_a_normal_alert_tells_its_user_every_status_change() -> None:
    for status, effects in walk(silent=False):
        (push,) = pushes_to(effects, "user", USER)
        assert push.frame_type is FrameType.ALERT_UPDATED
        assert push.data["alert_id"] == str(ALERT_ID)
        assert push.data["status"] == status.value
        assert push.data["assigned_agent_id"] == str(AGENT_A)


def test_a_silent_alert_tells_its_user_only_the_end() -> None:
    told = {status: pushes_to(effects, "user", USER) for status, effects in walk(silent=True)}
    assert told[S.ASSIGNED] == []
    assert told[S.EN_ROUTE] == []
    assert told[S.ON_SCENE] == []
    assert [p.data["status"] for p in told[S.RESOLVED]] == ["resolved"]


@pytest.mark.parametrize("silent", [True, False])
def test_silence_never_hides_anything_from_agents_or_kafka(silent: bool) -> None:
    for status, effects in walk(silent=silent):
        agent_frames = pushes_to(effects, "agent", AGENT_A)
        expected = FrameType.ALERT_ASSIGNED if status is S.ASSIGNED else FrameType.ALERT_UPDATED
        assert [p.frame_type for p in agent_frames] == [expected]
        changed = [e for e in of_type(effects, Emit) if e.type is EventType.ALERT_STATUS_CHANGED]
        assert [e.data["status"] for e in changed] == [status.value]
        if status is S.ASSIGNED:
            assert agent_frames[0].data["silent"] is silent


def test_the_offer_frame_tells_the_agent_the_alert_is_silent() -> None:
    clock = Clock()
    state = create(clock, silent=True)
    _, effects = alert.decide(state, OfferMade(AGENT_A), clock.now)
    (push,) = agent_pushes(effects)
    assert push.data["silent"] is True


@pytest.mark.parametrize("status", list(AlertStatus))
def test_user_sees_rule(status: AlertStatus) -> None:
    assert user_sees(alert_in(S.DISPATCHING), status) is True
    assert user_sees(alert_in(S.DISPATCHING, silent=True), status) is (status in TERMINAL)


def test_a_silent_alert_cancelled_or_escalated() -> None:
    clock = Clock()
    state = create(clock, silent=True)
    escalated, effects = alert.decide(state, Escalate("slow"), clock.advance(1))
    assert pushes_to(effects, "user", USER) == []
    _, effects = alert.decide(escalated, Cancel(USER), clock.advance(1))
    assert [p.data["status"] for p in pushes_to(effects, "user", USER)] == ["cancelled"]


def test_a_cancelled_assignment_is_told_to_the_agent() -> None:
    state = alert_in(S.EN_ROUTE)
    _, effects = alert.decide(state, Cancel(USER), state.updated_at)
    (push,) = pushes_to(effects, "agent", AGENT_A)
    assert push.frame_type is FrameType.ALERT_UPDATED
    assert push.data["status"] == "cancelled"
    assert push.data["previous_status"] == "en_route"
    assert push.frame() == {"type": "alert.updated", "data": dict(push.data)}


# --- live locations while an agent responds ----------------------------------------------


def test_live_locations_flow_both_ways_while_an_agent_responds() -> None:
    clock = Clock()
    state = alert_in(AlertStatus.EN_ROUTE, clock=clock)
    at = clock.advance(1)
    same, effects = alert.decide(state, UserLocation(52.5, 13.4, 9.0, at), at)
    assert same is state
    (to_agent,) = pushes_to(effects, "agent", AGENT_A)
    assert to_agent.frame_type is FrameType.ALERT_LOCATION
    assert to_agent.data == {
        "alert_id": str(ALERT_ID),
        "latitude": 52.5,
        "longitude": 13.4,
        "accuracy_m": 9.0,
        "at": at.isoformat(),
    }
    _, effects = alert.decide(state, AgentLocation(AGENT_A, 52.51, 13.41, 5.0, at), at)
    to_user, eta = pushes_to(effects, "user", USER)
    assert to_user.frame_type is FrameType.AGENT_LOCATION
    assert to_user.data["latitude"] == 52.51
    assert eta.frame_type is FrameType.ALERT_ETA


def test_no_live_location_outside_a_response_from_strangers_or_to_a_silent_user() -> None:
    clock = Clock()
    at = clock.now
    dispatching = alert_in(AlertStatus.DISPATCHING, clock=clock)
    # A user still relaying here (a late "responding") is told to stop.
    assert alert.decide(dispatching, UserLocation(1.0, 2.0, None, at), at)[1] == (
        told_user(False),
        Reply(dispatching),
    )
    responding = alert_in(AlertStatus.ON_SCENE, clock=clock)
    stranger = AgentLocation(UUID(int=0xBAD), 1.0, 2.0, None, at)
    assert alert.decide(responding, stranger, at)[1] == (Reply(responding),)
    silent = alert_in(AlertStatus.ASSIGNED, silent=True, clock=Clock())
    fix = AgentLocation(AGENT_A, 1.0, 2.0, None, at)
    assert pushes_to(alert.decide(silent, fix, at)[1], "user", USER) == []
    # The agent still sees where a silent alert's user is.
    assert pushes_to(
        alert.decide(silent, UserLocation(1.0, 2.0, None, at), at)[1], "agent", AGENT_A
    )
    resolved = alert_in(AlertStatus.RESOLVED, clock=Clock())
    assert alert.decide(resolved, UserLocation(1.0, 2.0, None, at), at)[1] == (
        told_user(False),
        Reply(resolved),
    )
