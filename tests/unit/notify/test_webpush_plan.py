"""Who gets which web push (notify.webpush_plan): offers to the offered agent
with the type and a coarse distance only, admin assignments to the agent,
status changes to the user; nothing to a silent or duress alert's user,
nothing for the user's own change, nothing to an account whose app is open."""

from __future__ import annotations

import json
from uuid import UUID

import pytest

from notify.webpush_plan import (
    USER_TEXTS,
    AlertFlags,
    Audience,
    Target,
    Urgency,
    message_for,
    target_of,
    targets_of,
    wanted,
)

ALERT = UUID(int=0xA1)
USER = UUID(int=0x01)
AGENT = UUID(int=0x02)
ADMIN = UUID(int=0x03)
NORMAL = AlertFlags("medical", silent=False, duress=False)
SILENT = AlertFlags("medical", silent=True, duress=False)
DURESS = AlertFlags("panic", silent=False, duress=True)


def offered(**extra: object) -> Target:
    data = {"alert_id": str(ALERT), "agent_id": str(AGENT), "distance_m": 1234.0, **extra}
    found = target_of("alert.offered", data)
    assert found is not None
    return found


def status(status: str, actor: UUID | None = AGENT) -> Target | None:
    data = {
        "alert_id": str(ALERT),
        "user_id": str(USER),
        "status": status,
        "actor_id": None if actor is None else str(actor),
    }
    return target_of("alert.status_changed", data)


def test_an_offer_goes_to_the_offered_agent_as_alert_offer() -> None:
    target = offered()
    assert (target.audience, target.account_id, target.alert_id, target.frame) == (
        Audience.AGENT,
        AGENT,
        ALERT,
        "alert.offer",
    )
    message = message_for(target, NORMAL)
    assert message is not None
    assert message.urgency is Urgency.HIGH
    assert json.loads(message.payload()) == {
        "type": "alert.offer",
        "alert_id": str(ALERT),
        "title": "Incoming alert",
        "body": "Medical alert about 1.2 km away. Open the app to accept or decline.",
    }


def test_an_offer_never_carries_the_position_the_description_or_a_name() -> None:
    # Even an event that carried them (it does not) cannot put them in the push.
    target = offered(
        latitude=48.858370, longitude=2.294481, description="Flat 3, blue door", full_name="Ann"
    )
    message = message_for(target, NORMAL)
    assert message is not None
    text = message.payload().decode()
    for secret in ("48.85", "2.29", "Flat 3", "blue door", "Ann"):
        assert secret not in text


def test_an_offer_distance_is_coarse_and_short_ones_read_in_metres() -> None:
    message = message_for(offered(distance_m=449.0), NORMAL)
    assert message is not None
    assert "about 400 m away" in message.body
    unknown = target_of("alert.offered", {"alert_id": str(ALERT), "agent_id": str(AGENT)})
    assert unknown is not None
    message = message_for(unknown, NORMAL)
    assert message is not None
    assert "alert nearby" in message.body


@pytest.mark.parametrize("flags", [SILENT, DURESS])
def test_agents_are_offered_silent_and_duress_alerts_too(flags: AlertFlags) -> None:
    assert message_for(offered(), flags) is not None


def test_an_admin_assignment_goes_to_the_agent_without_details() -> None:
    data = {
        "alert_id": str(ALERT),
        "user_id": str(USER),
        "assigned_agent_id": str(AGENT),
        "actor_id": str(ADMIN),
        "status": "assigned",
    }
    target = target_of("alert.assigned", data)
    assert target is not None
    assert target.audience is Audience.AGENT
    assert target.account_id == AGENT
    message = message_for(target, NORMAL)
    assert message is not None
    assert message.frame == "alert.assigned"
    assert message.title == "Alert assigned to you"


def test_an_agent_is_not_pushed_its_own_acceptance() -> None:
    data = {"alert_id": str(ALERT), "assigned_agent_id": str(AGENT), "actor_id": str(AGENT)}
    assert target_of("alert.assigned", data) is None


@pytest.mark.parametrize("name", sorted(USER_TEXTS))
def test_each_status_the_user_is_told_of(name: str) -> None:
    target = status(name)
    assert target is not None
    assert target.audience is Audience.USER
    assert target.account_id == USER
    message = message_for(target, NORMAL)
    assert message is not None
    assert json.loads(message.payload()) == {
        "type": "alert.updated",
        "alert_id": str(ALERT),
        "title": USER_TEXTS[name][0],
        "body": USER_TEXTS[name][1],
    }


@pytest.mark.parametrize("name", ["dispatching", "escalated", "bogus"])
def test_other_statuses_tell_nobody(name: str) -> None:
    assert status(name) is None


def test_the_users_own_change_is_not_pushed_back_to_them() -> None:
    assert status("cancelled", actor=USER) is None
    assert status("cancelled", actor=ADMIN) is not None
    assert status("resolved", actor=None) is not None


@pytest.mark.parametrize("name", sorted(USER_TEXTS))
def test_nothing_at_all_reaches_a_silent_alerts_user(name: str) -> None:
    target = status(name)
    assert target is not None
    assert message_for(target, SILENT) is None


@pytest.mark.parametrize("name", sorted(USER_TEXTS))
def test_nothing_reaches_the_user_after_a_duress_cancel(name: str) -> None:
    target = status(name)
    assert target is not None
    assert message_for(target, DURESS) is None


@pytest.mark.parametrize(
    ("event_type", "data"),
    [
        ("alert.created", {"alert_id": str(ALERT), "user_id": str(USER)}),
        ("alert.offered", {"alert_id": "not-a-uuid", "agent_id": str(AGENT)}),
        ("alert.offered", {"alert_id": str(ALERT)}),
        ("alert.status_changed", {"alert_id": str(ALERT), "status": "resolved"}),
        ("alert.duress", {"alert_id": str(ALERT), "user_id": str(USER), "status": "escalated"}),
    ],
)
def test_events_without_a_target_tell_nobody(event_type: str, data: dict[str, object]) -> None:
    assert target_of(event_type, data) is None


def test_a_push_goes_only_when_the_app_is_not_open() -> None:
    message = message_for(offered(), NORMAL)
    assert wanted(message, online=False)
    assert not wanted(message, online=True)
    assert not wanted(None, online=False)


def cancel(actor: UUID | None, agent: UUID | None = AGENT) -> dict[str, object]:
    return {
        "alert_id": str(ALERT),
        "user_id": str(USER),
        "assigned_agent_id": None if agent is None else str(agent),
        "actor_id": None if actor is None else str(actor),
        "status": "cancelled",
    }


def test_a_cancel_tells_the_agent_that_held_the_alert_to_stand_down() -> None:
    targets = targets_of("alert.status_changed", cancel(actor=ADMIN))
    assert [(t.audience, t.account_id) for t in targets] == [
        (Audience.USER, USER),
        (Audience.AGENT, AGENT),
    ]
    agent_told = message_for(targets[1], SILENT)  # agents are told whatever the flags
    assert agent_told is not None
    assert (agent_told.frame, agent_told.title) == ("alert.updated", "Alert cancelled")
    # The user's own cancel: only the agent; no agent held it: only the user.
    only_agent = targets_of("alert.status_changed", cancel(actor=USER))
    assert [t.audience for t in only_agent] == [Audience.AGENT]
    only_user = targets_of("alert.status_changed", cancel(actor=ADMIN, agent=None))
    assert [t.audience for t in only_user] == [Audience.USER]
    assert targets_of("alert.status_changed", cancel(actor=AGENT)) == (
        target_of("alert.status_changed", cancel(actor=AGENT)),
    )
