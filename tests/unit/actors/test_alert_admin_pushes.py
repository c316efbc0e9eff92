"""What the admins' sockets (the dispatcher console) are pushed: ``alert.created`` and
an ``alert.updated`` carrying the admin view after every change they are shown."""

from __future__ import annotations

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
    create,
    pushes_to,
)

from actors import alert
from actors.alert import (
    AcceptOffer,
    AlertStatus,
    Assign,
    Duress,
    OfferMade,
)
from actors.alert_messages import UserLocation

S = AlertStatus

#: Every ``alert.updated`` to admins carries these on top of what users get.
ADMIN_FIELDS = {
    "alert_type",
    "latitude",
    "longitude",
    "silent",
    "duress",
    "created_at",
    "updated_at",
    "escalation_step",
    "offered_at",
}


def test_a_new_alert_is_pushed_to_admins_with_its_admin_view() -> None:
    clock = Clock()
    state, effects = alert.decide(None, _create_msg(), clock.now)
    (created,) = admin_pushes(effects)
    assert created.frame_type.value == "alert.created"
    assert created.data["alert_id"] == str(ALERT_ID)
    assert created.data["status"] == "dispatching"
    assert created.data["duress"] is False
    assert created.data["escalation_step"] == 0
    assert created.data["offered_at"] is None
    assert created.data == state.admin_created_frame()
    # The user and agents hear nothing of a creation.
    assert pushes_to(effects, "user", USER) == []


def test_an_offer_and_an_accept_are_pushed_to_admins_as_alert_updated() -> None:
    clock = Clock()
    state = create(clock)
    state, effects = alert.decide(state, OfferMade(AGENT_A), clock.advance(1))
    (offered,) = admin_pushes(effects)
    assert offered.frame_type.value == "alert.updated"
    assert offered.data["offered_at"] == clock.now.isoformat()
    assert offered.data["status"] == offered.data["previous_status"] == "dispatching"
    state, effects = alert.decide(state, AcceptOffer(AGENT_A), clock.advance(1))
    (accepted,) = admin_pushes(effects)
    assert accepted.frame_type.value == "alert.updated"
    assert set(accepted.data) >= ADMIN_FIELDS
    assert accepted.data["status"] == "assigned"
    assert accepted.data["previous_status"] == "dispatching"
    assert accepted.data["assigned_agent_id"] == str(AGENT_A)
    # The user's frame is what it always was: no admin fields.
    (user,) = pushes_to(effects, "user", USER)
    assert set(user.data) == {
        "alert_id",
        "status",
        "previous_status",
        "assigned_agent_id",
        "updated_at",
    }


def test_a_reassignment_is_one_admin_push_naming_the_new_agent() -> None:
    clock = Clock()
    state = alert_in(S.ASSIGNED, clock=clock)
    state, effects = alert.decide(state, Assign(AGENT_B, ADMIN), clock.advance(1))
    (updated,) = admin_pushes(effects)
    assert updated.data["assigned_agent_id"] == str(AGENT_B)
    assert updated.data["status"] == "assigned"


def test_a_duress_cancel_shows_admins_the_truth_and_its_user_a_cancel() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    state, effects = alert.decide(state, Duress(USER), clock.advance(1))
    updated = admin_pushes(effects, "alert.updated")
    assert [(p.data["status"], p.data["duress"]) for p in updated] == [("en_route", True)]
    (user,) = pushes_to(effects, "user", USER)
    assert user.data["status"] == "cancelled"
    assert "duress" not in user.data


def _create_msg() -> alert.CreateAlert:
    return alert.CreateAlert(ALERT_ID, USER, alert.AlertType.PANIC, LAT, LON)


def test_the_users_moves_reach_the_admins_as_alert_location_while_an_agent_responds() -> None:
    clock = Clock()
    state = alert_in(S.EN_ROUTE, clock=clock)
    _, effects = alert.decide(state, UserLocation(52.5, 13.4, 9.0, clock.now), clock.now)
    (told,) = admin_pushes(effects)
    assert told.frame_type.value == "alert.location"
    assert told.data["alert_id"] == str(ALERT_ID)
    assert (told.data["latitude"], told.data["longitude"]) == (52.5, 13.4)
    (agent,) = pushes_to(effects, "agent", AGENT_A)
    assert agent.data == told.data
