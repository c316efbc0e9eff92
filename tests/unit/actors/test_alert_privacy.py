"""What an alert tells whom (actors.alert_state): coarse offers, exact assignment,
and who may read the alert at all (``AlertState.access``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

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
)

from actors import alert
from actors.alert import (
    AcceptOffer,
    CreateAlert,
    DeclineOffer,
    OfferExpired,
    OfferMade,
    UpdateStatus,
)
from actors.alert_state import ActorRole, AlertAccess, AlertState, AlertStatus, AlertType
from geo.cells import haversine_m
from geo.coarse import COARSE_PRECISION_M

DOOR_CODE = "door code 4711, 3rd floor"


def created(clock: Clock) -> AlertState:
    msg = CreateAlert(ALERT_ID, USER, AlertType.MEDICAL, LAT, LON, 8.0, DOOR_CODE, False)
    state, _ = alert.decide(None, msg, clock.now)
    assert state is not None
    return state


def offered(clock: Clock, *agents: UUID) -> AlertState:
    state = created(clock)
    for agent in agents:
        state, _ = alert.decide(state, OfferMade(agent, distance_m=420.5), clock.now)
    return state


def step(state: AlertState, msg: object, clock: Clock) -> AlertState:
    new, _ = alert.decide(state, msg, clock.now)  # type: ignore[arg-type]
    return new


# --- the offer is coarse, the assignment exact -------------------------------------------


def test_the_offer_frame_has_no_description_and_a_coarse_position() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    frame = state.offer_frame(state.offered_to[0])

    assert frame["description"] is None
    assert frame["accuracy_m"] is None
    assert frame["position_precision_m"] == COARSE_PRECISION_M
    off = haversine_m(LAT, LON, frame["latitude"], frame["longitude"])
    assert 1.0 < off <= 600.0
    assert frame["distance_m"] == 400.0  # told to the 100 m, not 420.5
    assert frame["alert_type"] == "medical"
    assert DOOR_CODE not in repr(frame)


def test_every_offer_of_one_alert_tells_the_same_coarse_point() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A, AGENT_B)
    first, second = (state.offer_frame(o) for o in state.offered_to)
    assert (first["latitude"], first["longitude"]) == (second["latitude"], second["longitude"])


def test_the_assigned_frame_is_exact() -> None:
    clock = Clock()
    state = step(offered(clock, AGENT_A), AcceptOffer(AGENT_A), clock)
    frame = state.assigned_frame()
    assert (frame["latitude"], frame["longitude"]) == (LAT, LON)
    assert frame["description"] == DOOR_CODE
    assert frame["accuracy_m"] == 8.0
    assert frame.get("position_precision_m") is None


def test_the_offer_holder_view_hides_the_description_position_and_notes() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    noted = step(
        state,
        UpdateStatus(AlertStatus.ESCALATED, ADMIN, ActorRole.ADMIN, note="user is deaf"),
        clock,
    )
    seen = noted.as_offer_holder_sees()
    assert seen.description is None
    assert seen.accuracy_m is None
    assert (seen.latitude, seen.longitude) != (LAT, LON)
    assert haversine_m(LAT, LON, seen.latitude, seen.longitude) <= COARSE_PRECISION_M
    assert all("note" not in e.data and "reason" not in e.data for e in seen.timeline)
    assert "user is deaf" not in repr(seen.timeline)
    assert [e.type for e in seen.timeline] == [e.type for e in noted.timeline]


# --- who may read the alert --------------------------------------------------------------


def test_an_agent_reads_the_coarse_alert_only_while_its_offer_is_pending() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    assert state.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.OFFER
    # Never offered.
    assert state.access(AGENT_B, ActorRole.AGENT, clock.now) is AlertAccess.NONE
    # Past its expiry, even before the timer took it away.
    late = clock.now + timedelta(seconds=3600)
    assert state.access(AGENT_A, ActorRole.AGENT, late) is AlertAccess.NONE


def test_declined_expired_and_revoked_offers_give_no_access() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A, AGENT_B)
    declined = step(state, DeclineOffer(AGENT_A, reason="far"), clock)
    assert declined.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.NONE

    clock.advance(3600)
    expired = step(state, OfferExpired(AGENT_A), clock)
    assert AGENT_A in expired.expired_for
    assert expired.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.NONE

    # Revoked: another agent took it.
    clock = Clock()
    taken = step(offered(clock, AGENT_A, AGENT_B), AcceptOffer(AGENT_B), clock)
    assert taken.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.NONE


def test_the_assigned_agent_reads_it_all_also_after_it_ended() -> None:
    clock = Clock()
    state = step(offered(clock, AGENT_A), AcceptOffer(AGENT_A), clock)
    assert state.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.FULL
    for status in (AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE, AlertStatus.RESOLVED):
        state = step(state, UpdateStatus(status, AGENT_A, ActorRole.AGENT), clock)
    assert state.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.FULL


def test_an_agent_once_assigned_keeps_reading_it_after_a_reassignment() -> None:
    clock = Clock()
    state = step(offered(clock, AGENT_A), AcceptOffer(AGENT_A), clock)
    moved = replace(state, assigned_agent_id=AGENT_B)  # however it came to be reassigned
    assert moved.access(AGENT_A, ActorRole.AGENT, clock.now) is AlertAccess.FULL


def test_users_read_their_own_alerts_and_admins_every_alert() -> None:
    clock = Clock()
    state = offered(clock, AGENT_A)
    assert state.access(USER, ActorRole.USER, clock.now) is AlertAccess.FULL
    assert state.access(OTHER_USER, ActorRole.USER, clock.now) is AlertAccess.NONE
    assert state.access(ADMIN, ActorRole.ADMIN, clock.now) is AlertAccess.FULL
    # An agent whose id is the alert's user id is still not its user.
    assert state.access(USER, ActorRole.AGENT, clock.now) is AlertAccess.NONE
    # A user whose id holds an offer is still not an agent.
    assert state.access(AGENT_A, ActorRole.USER, clock.now) is AlertAccess.NONE
