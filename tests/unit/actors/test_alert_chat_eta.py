"""Chat (``PostMessage``) and arrival estimates (``AgentLocation`` → ``alert.eta``)."""

from __future__ import annotations

import math
from dataclasses import replace
from uuid import UUID

import pytest
from actors_kit import (
    ADMIN,
    AGENT_A,
    AGENT_B,
    ALERT_ID,
    LAT,
    LON,
    USER,
    Clock,
    admin_pushes,
    alert_in,
    assert_effect_order,
    of_type,
    pushes_to,
)

from actors import alert
from actors.alert import ActorRole, AlertState, AlertStatus, PostMessage
from actors.alert_messages import AgentLocation, AlertPolicy
from actors.alert_state import TimelineType
from actors.effects import FrameType, Persist, Reply
from actors.errors import ChatRefused, Conflict, InvalidMessage
from geo.cells import haversine_m

S = AlertStatus
MSG_1 = UUID(int=0x3001)
MSG_2 = UUID(int=0x3002)


def _say(
    state: AlertState,
    text: str,
    *,
    sender: UUID = USER,
    role: ActorRole = ActorRole.USER,
    message_id: UUID = MSG_1,
    policy: AlertPolicy = alert.DEFAULT_POLICY,
) -> tuple[AlertState, tuple[object, ...]]:
    at = state.updated_at
    return alert.decide(state, PostMessage(message_id, sender, role, text), at, policy)


# --- chat ---------------------------------------------------------------------------


def test_a_message_is_a_timeline_entry_pushed_to_user_agent_and_admins() -> None:
    state = alert_in(S.EN_ROUTE)
    new, effects = _say(state, "  I am behind the red door \n")
    assert_effect_order(effects)  # type: ignore[arg-type]
    assert new.version == state.version + 1
    entry = new.timeline[-1]
    assert entry.type == TimelineType.MESSAGE
    assert entry.actor_id == USER
    expected = {
        "message_id": str(MSG_1),
        "sender_role": "user",
        "sender_id": str(USER),
        "text": "I am behind the red door",
        "at": new.updated_at.isoformat(),
    }
    assert dict(entry.data) == expected
    assert new.messages() == [{"alert_id": str(ALERT_ID), **expected}]
    assert of_type(effects, Persist)[0].version == new.version
    for push in (
        *pushes_to(effects, "user", USER),
        *pushes_to(effects, "agent", AGENT_A),
        *admin_pushes(effects),
    ):
        assert push.frame_type is FrameType.ALERT_MESSAGE
        assert push.data == {"alert_id": str(ALERT_ID), **expected}
    assert len(pushes_to(effects, "user", USER)) == 1
    assert len(pushes_to(effects, "agent", AGENT_A)) == 1
    assert len(admin_pushes(effects)) == 1


def test_the_assigned_agent_and_admins_write_too_and_a_retry_changes_nothing() -> None:
    state = alert_in(S.ASSIGNED)
    by_agent, _ = _say(state, "On my way", sender=AGENT_A, role=ActorRole.AGENT)
    assert by_agent.messages()[-1]["sender_role"] == "agent"
    again, effects = _say(by_agent, "On my way", sender=AGENT_A, role=ActorRole.AGENT)
    assert again is by_agent
    assert effects == (Reply(by_agent),)
    by_admin, _ = _say(
        by_agent, "Police called", sender=ADMIN, role=ActorRole.ADMIN, message_id=MSG_2
    )
    assert [m["text"] for m in by_admin.messages()] == ["On my way", "Police called"]


def test_a_user_may_write_before_anyone_is_assigned_but_an_agent_may_not() -> None:
    state = alert_in(S.DISPATCHING)
    new, effects = _say(state, "Hurry")
    assert new.message_count() == 1
    assert pushes_to(effects, "agent", AGENT_A) == []  # nobody assigned: waits for a responder
    with pytest.raises(ChatRefused):
        _say(state, "Hello", sender=AGENT_A, role=ActorRole.AGENT)


@pytest.mark.parametrize(
    ("sender", "role"),
    [(AGENT_B, ActorRole.AGENT), (UUID(int=0x1002), ActorRole.USER)],
)
def test_strangers_are_refused_with_forbidden(sender: UUID, role: ActorRole) -> None:
    state = alert_in(S.EN_ROUTE)
    with pytest.raises(ChatRefused) as caught:
        _say(state, "Hi", sender=sender, role=role)
    assert caught.value.code == "forbidden"


@pytest.mark.parametrize("status", [S.RESOLVED, S.CANCELLED])
def test_nobody_writes_once_the_alert_is_over(status: AlertStatus) -> None:
    state = alert_in(status)
    for sender, role in ((USER, ActorRole.USER), (ADMIN, ActorRole.ADMIN)):
        with pytest.raises(ChatRefused, match="is over"):
            _say(state, "Hi", sender=sender, role=role)


@pytest.mark.parametrize("text", ["", "   ", "x" * 501, "tab\there", "bell\x07", "rtl\u202e"])
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(InvalidMessage):
        _say(alert_in(S.EN_ROUTE), text)


def test_five_hundred_characters_and_line_feeds_are_fine() -> None:
    new, _ = _say(alert_in(S.EN_ROUTE), "a\nb" + "x" * 497)
    assert len(new.messages()[0]["text"]) == 500


def test_past_the_cap_a_message_is_a_conflict() -> None:
    policy = AlertPolicy(max_messages=2)
    state = alert_in(S.EN_ROUTE)
    state, _ = _say(state, "one", message_id=MSG_1, policy=policy)
    state, _ = _say(state, "two", message_id=MSG_2, policy=policy)
    with pytest.raises(Conflict):
        _say(state, "three", message_id=UUID(int=0x3003), policy=policy)


def test_a_silent_alert_s_user_is_pushed_no_message_and_shown_only_their_own() -> None:
    state = alert_in(S.EN_ROUTE, silent=True)
    mine, effects = _say(state, "I cannot talk")
    assert pushes_to(effects, "user", USER) == []
    assert pushes_to(effects, "agent", AGENT_A)
    theirs, effects = _say(
        mine, "Understood", sender=AGENT_A, role=ActorRole.AGENT, message_id=MSG_2
    )
    assert pushes_to(effects, "user", USER) == []
    assert [m["text"] for m in theirs.messages()] == ["I cannot talk", "Understood"]
    shown = theirs.as_user_sees()
    assert [m["text"] for m in shown.messages()] == ["I cannot talk"]
    assert shown.updated_at == mine.updated_at


def test_after_a_duress_cancel_the_user_hears_nothing_and_is_refused_as_over() -> None:
    state = alert_in(S.EN_ROUTE)
    duress, _ = alert.decide(state, alert.Duress(USER), state.updated_at)
    with pytest.raises(ChatRefused, match="is over"):
        _say(duress, "help")
    new, effects = _say(duress, "Coming quietly", sender=AGENT_A, role=ActorRole.AGENT)
    assert pushes_to(effects, "user", USER) == []
    assert pushes_to(effects, "agent", AGENT_A)
    assert new.as_user_sees().messages() == []


def test_an_offer_holder_reads_no_message_text() -> None:
    state = alert_in(S.EN_ROUTE)
    new, _ = _say(state, "secret")
    assert "text" not in new.as_offer_holder_sees().timeline[-1].data


# --- arrival estimates ----------------------------------------------------------------

SOUTH = (LAT - 0.01, LON)  # about 1.1 km due south of the alert


def _fix(
    clock: Clock,
    *,
    lat: float = SOUTH[0],
    heading: float | None = None,
    speed: float | None = None,
    agent: UUID = AGENT_A,
) -> AgentLocation:
    return AgentLocation(agent, lat, LON, 5.0, clock.advance(5), heading=heading, speed_mps=speed)


def test_the_first_estimate_is_pushed_to_all_three_and_recorded() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    fix = _fix(clock)
    new, effects = alert.decide(state, fix, fix.at)
    assert_effect_order(effects)  # type: ignore[arg-type]
    (eta_push,) = [
        p for p in pushes_to(effects, "user", USER) if p.frame_type is FrameType.ALERT_ETA
    ]
    data = dict(eta_push.data)
    assert data["alert_id"] == str(ALERT_ID)
    assert data["agent_id"] == str(AGENT_A)
    assert data["method"] == "great_circle"
    assert data["at"] == fix.at.isoformat()
    assert 1100 < data["distance_m"] < 1120
    assert data["eta_s"] == math.ceil(haversine_m(fix.latitude, LON, LAT, LON) / 8.3)
    assert pushes_to(effects, "agent", AGENT_A)[0].data == data
    assert admin_pushes(effects, "alert.eta")[0].data == data
    entry = new.timeline[-1]
    assert entry.type == TimelineType.ETA
    assert dict(entry.data) == {k: v for k, v in data.items() if k != "alert_id"}
    assert (new.eta_agent_id, new.eta_recorded_s) == (AGENT_A, data["eta_s"])
    assert AlertState.from_snapshot(new.to_snapshot()) == new


def test_small_changes_are_pushed_but_not_recorded_large_ones_are() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    first = _fix(clock)
    recorded, _ = alert.decide(state, first, first.at)
    closer = _fix(clock, lat=SOUTH[0] + 0.001)  # about 110 m nearer: ~13 s
    same, effects = alert.decide(recorded, closer, closer.at)
    assert same is recorded
    assert not of_type(effects, Persist)
    assert admin_pushes(effects, "alert.eta")
    much = _fix(clock, lat=SOUTH[0] + 0.007)  # ~330 m away: minutes earlier
    moved, effects = alert.decide(recorded, much, much.at)
    assert moved.version == recorded.version + 1
    assert moved.timeline[-1].type == TimelineType.ETA
    assert moved.eta_recorded_s is not None
    assert moved.eta_recorded_s < 60


def test_a_new_assignee_s_first_estimate_is_recorded() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    fix = _fix(clock)
    recorded, _ = alert.decide(state, fix, fix.at)
    reassigned = replace(recorded, assigned_agent_id=AGENT_B)
    again = _fix(clock, agent=AGENT_B)
    new, _ = alert.decide(reassigned, again, again.at)
    assert new.eta_agent_id == AGENT_B
    assert new.timeline[-1].type == TimelineType.ETA


def test_a_silent_alert_s_user_gets_no_estimate_nor_sees_one() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, silent=True, clock=clock)
    fix = _fix(clock)
    new, effects = alert.decide(state, fix, fix.at)
    assert pushes_to(effects, "user", USER) == []
    assert pushes_to(effects, "agent", AGENT_A)[0].frame_type is FrameType.ALERT_ETA
    assert new.timeline[-1].type == TimelineType.ETA
    assert all(e.type != TimelineType.ETA for e in new.as_user_sees().timeline)


def test_no_estimate_from_a_stranger_or_outside_a_response() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    fix = _fix(clock, agent=AGENT_B)
    assert alert.decide(state, fix, fix.at)[1] == (Reply(state),)
    resolved = alert_in(S.RESOLVED, clock=Clock())
    fix = _fix(Clock())
    assert alert.decide(resolved, fix, fix.at)[1] == (Reply(resolved),)


def test_a_faster_agent_heading_there_is_estimated_at_its_own_speed() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    slow_fix = _fix(clock)
    fast_fix = _fix(clock, heading=0.0, speed=25.0)
    slow = alert.decide(state, slow_fix, slow_fix.at)[0].eta_recorded_s
    fast = alert.decide(state, fast_fix, fast_fix.at)[0].eta_recorded_s
    assert slow is not None
    assert fast is not None
    assert fast < slow / 2


def test_a_duress_cancel_leaves_the_chat_history_as_a_real_cancel_does() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    said, _ = _say(state, "Coming", sender=AGENT_A, role=ActorRole.AGENT)
    fix = _fix(clock)
    estimated, _ = alert.decide(said, fix, fix.at)
    at = clock.advance(1)
    real, _ = alert.decide(estimated, alert.Cancel(USER), at)
    duress, _ = alert.decide(estimated, alert.Duress(USER), at)
    later, _ = _say(duress, "Still coming", sender=AGENT_A, role=ActorRole.AGENT, message_id=MSG_2)
    assert later.as_user_sees().messages() == real.as_user_sees().messages()
    assert [m["text"] for m in later.as_user_sees().messages()] == ["Coming"]
    assert later.as_user_sees().timeline == real.as_user_sees().timeline
