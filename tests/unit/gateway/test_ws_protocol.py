"""The pure per-socket state machine of ``/ws`` (gateway.ws.protocol): frames in, actions out."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID, uuid4

import pytest

from actors.agent import AgentState, Availability, Heartbeat, LocationFix, SetStatus, TakeOffer
from actors.alert_messages import DeclineOffer, UpdateStatus
from actors.alert_state import ActorRole, AlertStatus
from actors.effects import Audience, EntityKind
from actors.errors import InvalidTransition
from gateway.auth.principal import Principal, Role
from gateway.ws.codes import CloseCode, describe_error
from gateway.ws.protocol import (
    Action,
    AskEntity,
    Authenticate,
    CheckVetting,
    CloseSocket,
    Limits,
    Phase,
    Resync,
    SendFrame,
    SessionProtocol,
    StoreLocation,
    Subscribe,
    TellEntity,
)

LIMITS = Limits(auth_timeout_s=5.0, heartbeat_timeout_s=30.0, max_frame_bytes=2048)
#: A token expiry beyond every test's clock.
NEVER = 1e9


def frame(frame_type: str, data: dict[str, Any] | None = None, frame_id: str | None = None) -> str:
    body: dict[str, Any] = {"type": frame_type, "data": data or {}}
    if frame_id is not None:
        body["id"] = frame_id
    return json.dumps(body)


def principal(role: Role, principal_id: UUID | None = None) -> Principal:
    return Principal(id=principal_id or uuid4(), role=role, session_id="s", token_id="t")


def sent(actions: list[Action]) -> list[dict[str, Any]]:
    return [a.frame for a in actions if isinstance(a, SendFrame)]


def opened(role: Role, principal_id: UUID | None = None) -> SessionProtocol:
    proto = SessionProtocol(LIMITS, now=0.0)
    assert proto.receive_text(frame("auth", {"token": "tok"}), 1.0) == [Authenticate("tok")]
    proto.auth_succeeded(principal(role, principal_id), now=1.0, token_expires=NEVER)
    assert proto.phase is Phase.OPEN
    return proto


# --- authentication -------------------------------------------------------------------------


def test_an_auth_frame_is_checked_then_subscribes_answers_and_resyncs() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    assert proto.deadline() == 5.0
    assert proto.receive_text(frame("auth", {"token": "abc"}, "a"), 4.9) == [Authenticate("abc")]
    assert proto.phase is Phase.AUTHENTICATING
    who = principal(Role.AGENT)
    actions = proto.auth_succeeded(who, now=4.9, token_expires=NEVER)
    assert actions[0] == Subscribe(Audience.agent(who.id))
    assert actions[2] == Resync(Audience.agent(who.id))
    assert sent(actions) == [
        {
            "type": "auth.ok",
            "data": {"id": str(who.id), "role": "agent", "heartbeat_timeout_s": 30.0},
        }
    ]
    assert proto.principal == who


def test_a_user_subscribes_to_the_user_audience() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    who = principal(Role.USER)
    assert proto.auth_succeeded(who, now=1.0, token_expires=NEVER)[0] == Subscribe(
        Audience.user(who.id)
    )


def test_no_auth_frame_before_the_deadline_closes_4401() -> None:
    proto = SessionProtocol(LIMITS, now=10.0)
    assert proto.tick(14.99) == []
    assert proto.tick(15.0) == [CloseSocket(CloseCode.UNAUTHENTICATED, "no auth frame in time")]
    assert proto.phase is Phase.CLOSED
    assert proto.deadline() is None
    assert proto.receive_text(frame("auth", {"token": "late"}), 16.0) == []


@pytest.mark.parametrize(
    "text",
    [frame("ping"), "{oops", frame("auth", {}), frame("auth", {"token": 3}), frame("teleport")],
)
def test_any_first_frame_but_a_valid_auth_closes_4401(text: str) -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    actions = proto.receive_text(text, 1.0)
    assert len(actions) == 1
    assert isinstance(actions[0], CloseSocket)
    assert actions[0].code is CloseCode.UNAUTHENTICATED


def test_a_binary_first_frame_closes_4401() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    [close] = proto.receive_bytes(b"{}", 1.0)
    assert isinstance(close, CloseSocket)
    assert close.code is CloseCode.UNAUTHENTICATED


def test_a_refused_token_closes_4401_with_the_reason() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    assert proto.auth_failed("session has ended") == [
        CloseSocket(CloseCode.UNAUTHENTICATED, "session has ended")
    ]
    assert proto.phase is Phase.CLOSED


def test_admin_sockets_listen_to_the_admins_audience_and_only_ping() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    subscribe, ok, resync = proto.auth_succeeded(
        principal(Role.ADMIN), now=1.0, token_expires=NEVER
    )
    assert subscribe == Subscribe(Audience.admins())
    assert isinstance(ok, SendFrame)
    assert ok.frame["data"]["role"] == "admin"
    assert resync == Resync(Audience.admins())
    [pong] = sent(proto.receive_text(frame("ping", frame_id="p"), 2.0))
    assert pong["type"] == "pong"
    for frame_type, data in (
        ("location", {"latitude": 1, "longitude": 2}),
        ("offer.accept", {"alert_id": str(uuid4())}),
    ):
        [error] = sent(proto.receive_text(frame(frame_type, data, frame_id="x"), 3.0))
        assert error["data"]["code"] == "forbidden"


def test_a_second_auth_frame_is_an_error_not_a_close() -> None:
    proto = opened(Role.USER)
    [reply] = sent(proto.receive_text(frame("auth", {"token": "x"}, "again"), 2.0))
    assert reply["data"]["code"] == "already_authenticated"
    assert reply["data"]["ref"] == "again"
    assert proto.phase is Phase.OPEN


# --- revocation and token expiry ---------------------------------------------------------


def test_the_end_of_the_session_closes_an_open_socket_4401() -> None:
    proto = opened(Role.AGENT)
    assert proto.revoked() == [CloseSocket(CloseCode.UNAUTHENTICATED, "session revoked")]
    assert proto.phase is Phase.CLOSED
    # Nothing more: no frame is carried out, no second close.
    assert proto.receive_text(frame("ping", frame_id="p"), 2.0) == []
    assert proto.revoked() == []


def test_the_end_of_the_session_during_authentication_closes_4401_and_no_auth_ok() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    assert proto.revoked() == [CloseSocket(CloseCode.UNAUTHENTICATED, "session revoked")]
    assert proto.auth_succeeded(principal(Role.USER), now=1.1, token_expires=NEVER) == []
    assert proto.phase is Phase.CLOSED


def test_an_open_socket_is_closed_4401_when_its_access_token_expires() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    proto.auth_succeeded(principal(Role.USER), now=1.0, token_expires=11.0)
    assert proto.deadline() == 11.0  # before the heartbeat timeout (31.0)
    proto.receive_text(frame("ping"), 10.0)  # a live socket is closed all the same
    assert proto.tick(10.99) == []
    assert proto.tick(11.0) == [CloseSocket(CloseCode.UNAUTHENTICATED, "token expired")]
    assert proto.phase is Phase.CLOSED


def test_the_heartbeat_still_closes_first_when_the_token_lives_longer() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    proto.auth_succeeded(principal(Role.USER), now=1.0, token_expires=100.0)
    assert proto.deadline() == 31.0
    assert proto.tick(31.0) == [CloseSocket(CloseCode.IDLE_TIMEOUT, "heartbeat timeout")]


def test_a_token_expired_by_the_time_it_is_checked_closes_4401_without_auth_ok() -> None:
    proto = SessionProtocol(LIMITS, now=0.0)
    proto.receive_text(frame("auth", {"token": "abc"}), 1.0)
    assert proto.auth_succeeded(principal(Role.USER), now=2.0, token_expires=2.0) == [
        CloseSocket(CloseCode.UNAUTHENTICATED, "token expired")
    ]
    assert proto.principal is None


# --- heartbeats and limits ---------------------------------------------------------------


def test_ping_is_answered_pong_with_the_ref() -> None:
    proto = opened(Role.USER)
    assert sent(proto.receive_text(frame("ping", frame_id="p1"), 2.0)) == [
        {"type": "pong", "data": {"ref": "p1"}}
    ]


def test_an_agent_ping_is_also_a_heartbeat_of_its_entity_which_may_wait_for_others() -> None:
    agent_id = uuid4()
    proto = opened(Role.AGENT, agent_id)
    actions = proto.receive_text(frame("ping"), 2.0)
    assert actions[1:] == [TellEntity(EntityKind.AGENT, str(agent_id), Heartbeat(), lazy=True)]


def test_a_silent_socket_is_closed_after_the_heartbeat_timeout() -> None:
    proto = opened(Role.USER)  # authenticated at t=1
    assert proto.deadline() == 31.0
    proto.receive_text("not json", 20.0)  # any frame is a sign of life
    assert proto.deadline() == 50.0
    assert proto.tick(49.0) == []
    assert proto.tick(50.0) == [CloseSocket(CloseCode.IDLE_TIMEOUT, "heartbeat timeout")]


def test_an_oversized_frame_closes_1009_even_if_multibyte() -> None:
    proto = opened(Role.USER)
    text = '{"type": "ping", "data": {"pad": "' + "é" * 1100 + '"}}'
    assert len(text) < 2048 < len(text.encode())
    [close] = proto.receive_text(text, 2.0)
    assert close == CloseSocket(CloseCode.TOO_BIG, "frame too big")
    proto = opened(Role.USER)
    assert sent(proto.receive_text(frame("ping", frame_id="x" * 100), 2.0))[0]["type"] == "pong"


def test_binary_frames_are_errors_once_open() -> None:
    proto = opened(Role.USER)
    [reply] = sent(proto.receive_bytes(b"\x00", 2.0))
    assert reply["data"]["code"] == "binary_unsupported"


def test_bad_frames_once_open_are_error_frames_with_ref() -> None:
    proto = opened(Role.AGENT)
    [reply] = sent(proto.receive_text(frame("location", {"latitude": 100}, "L"), 2.0))
    assert reply["type"] == "error"
    assert reply["data"]["code"] == "invalid_data"
    assert reply["data"]["ref"] == "L"
    assert proto.phase is Phase.OPEN


# --- agent and user frames ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame_type", "data"),
    [
        ("agent.status", {"status": "available"}),
        ("offer.accept", {"alert_id": str(uuid4())}),
        ("offer.decline", {"alert_id": str(uuid4())}),
        ("alert.status", {"alert_id": str(uuid4()), "status": "en_route"}),
    ],
)
def test_agent_frames_from_a_user_are_forbidden(frame_type: str, data: dict[str, Any]) -> None:
    proto = opened(Role.USER)
    actions = proto.receive_text(frame(frame_type, data, "u"), 2.0)
    assert len(actions) == 1
    [reply] = sent(actions)
    assert (reply["data"]["code"], reply["data"]["ref"]) == ("forbidden", "u")


def test_agent_status_asks_the_agent_entity_and_acks_its_answer() -> None:
    agent_id = uuid4()
    proto = opened(Role.AGENT, agent_id)
    [check] = proto.receive_text(frame("agent.status", {"status": "available"}, "s"), 2.0)
    ask = AskEntity(
        EntityKind.AGENT, str(agent_id), SetStatus(Availability.AVAILABLE), "s", "agent.status"
    )
    assert check == CheckVetting(agent_id, Availability.AVAILABLE, ask)
    assert isinstance(check, CheckVetting)
    assert proto.vetting_checked(check, "approved") == [ask]
    reply = AgentState(id=agent_id, availability=Availability.AVAILABLE)
    assert sent(proto.ask_succeeded(ask, reply)) == [
        {"type": "ack", "data": {"ref": "s", "type": "agent.status", "status": "available"}}
    ]


@pytest.mark.parametrize(
    ("vetting", "words"),
    [("pending", "pending approval by an administrator"), ("suspended", "suspended"), (None, "")],
)
@pytest.mark.parametrize("status", ["available", "busy", "on_break"])
def test_an_agent_not_approved_may_not_go_on_duty(
    vetting: str | None, words: str, status: str
) -> None:
    proto = opened(Role.AGENT)
    [check] = proto.receive_text(frame("agent.status", {"status": status}, "s"), 2.0)
    assert isinstance(check, CheckVetting)
    [reply] = sent(proto.vetting_checked(check, vetting))
    assert (reply["data"]["code"], reply["data"]["ref"]) == ("forbidden", "s")
    assert words in reply["data"]["message"]


def test_going_offline_needs_no_vetting() -> None:
    agent_id = uuid4()
    proto = opened(Role.AGENT, agent_id)
    [ask] = proto.receive_text(frame("agent.status", {"status": "offline"}, "s"), 2.0)
    assert ask == AskEntity(
        EntityKind.AGENT, str(agent_id), SetStatus(Availability.OFFLINE), "s", "agent.status"
    )


def test_a_vetting_answer_after_the_socket_closed_does_nothing() -> None:
    proto = opened(Role.AGENT)
    [check] = proto.receive_text(frame("agent.status", {"status": "available"}, "s"), 2.0)
    assert isinstance(check, CheckVetting)
    proto.closed()
    assert proto.vetting_checked(check, "approved") == []


def test_a_rejected_frame_is_an_error_frame_with_the_entity_code() -> None:
    proto = opened(Role.AGENT)
    code, message, retriable = describe_error(
        InvalidTransition("busy", "available", entity="agent")
    )
    [reply] = sent(proto.action_failed("s", code, message, retriable=retriable))
    assert reply["data"]["code"] == "invalid_transition"
    assert reply["data"]["ref"] == "s"
    assert reply["data"]["retriable"] is False


def test_offer_and_alert_frames_ask_the_alert_with_the_agent_as_actor() -> None:
    agent_id, alert_id = uuid4(), uuid4()
    proto = opened(Role.AGENT, agent_id)
    # Accepting is one action: the agent's entity reserves the agent and asks the alert.
    [accept] = proto.receive_text(frame("offer.accept", {"alert_id": str(alert_id)}), 2.0)
    assert accept == AskEntity(
        EntityKind.AGENT, str(agent_id), TakeOffer(alert_id), None, "offer.accept"
    )
    [decline] = proto.receive_text(
        frame("offer.decline", {"alert_id": str(alert_id), "reason": "far"}), 2.0
    )
    assert isinstance(decline, AskEntity)
    assert decline.message == DeclineOffer(agent_id, "far")
    [status] = proto.receive_text(
        frame("alert.status", {"alert_id": str(alert_id), "status": "on_scene", "note": "n"}), 2.0
    )
    assert isinstance(status, AskEntity)
    assert status.message == UpdateStatus(AlertStatus.ON_SCENE, agent_id, ActorRole.AGENT, "n")


def test_an_agent_location_is_told_to_its_entity_and_stored() -> None:
    agent_id = uuid4()
    proto = opened(Role.AGENT, agent_id)
    actions = proto.receive_text(
        frame("location", {"latitude": 1.5, "longitude": 2, "speed_mps": 3}, "l"), 2.0
    )
    assert actions[0] == TellEntity(
        EntityKind.AGENT, str(agent_id), LocationFix(1.5, 2.0, speed_mps=3.0)
    )
    store = actions[1]
    assert isinstance(store, StoreLocation)
    assert (store.role, store.subject_id, store.ref) == ("agent", agent_id, "l")
    assert store.location.latitude == 1.5
    assert len(actions) == 2  # no ack: locations are fire-and-forget


def test_a_user_location_is_only_stored() -> None:
    """Stored and tracked; the user's entity relays it to a responder (actors.subject)."""
    user_id = uuid4()
    proto = opened(Role.USER, user_id)
    data = {"latitude": 1, "longitude": 2, "accuracy_m": 7}
    [store] = proto.receive_text(frame("location", data), 2.0)
    assert isinstance(store, StoreLocation)
    assert (store.role, store.subject_id) == ("user", user_id)


def test_a_closed_protocol_ignores_everything() -> None:
    proto = opened(Role.AGENT)
    proto.closed()
    assert proto.receive_text(frame("ping"), 2.0) == []
    assert proto.tick(1000.0) == []
    assert proto.abort(CloseCode.INTERNAL, "x") == []


# --- location fixes refused as overload -------------------------------------------------------


def told(actions: list[Action]) -> list[tuple[int, str | None]]:
    """Each ``unavailable`` frame's ``refused`` count and ``ref``."""
    frames = sent(actions)
    assert all(f["data"]["code"] == "unavailable" and f["data"]["retriable"] for f in frames)
    return [(f["data"]["refused"], f["data"].get("ref")) for f in frames]


def test_refused_fixes_without_an_id_are_told_at_once_then_together_every_notice_period() -> None:
    proto = opened(Role.USER)  # LIMITS: the default notice period, 5 s
    assert told(proto.location_refused(None, 10.0)) == [(1, None)]  # the first, at once
    assert told(proto.location_refused(None, 11.0)) == []
    assert told(proto.location_refused(None, 14.9)) == []
    assert proto.untold_refusals == 2
    assert told(proto.refusals_due(14.99)) == []
    # The next refusal after the period tells all three since.
    assert told(proto.location_refused(None, 15.0)) == [(3, None)]
    assert proto.untold_refusals == 0
    assert told(proto.refusals_due(100.0)) == []  # nothing untold, nothing sent


def test_refusals_are_told_with_a_fix_taken_after_the_period_once_they_stop() -> None:
    proto = opened(Role.USER)
    proto.location_refused(None, 10.0)
    proto.location_refused(None, 12.0)
    proto.location_refused(None, 13.0)
    assert told(proto.refusals_due(14.0)) == []  # a fix taken within the period
    assert told(proto.refusals_due(15.5)) == [(2, None)]  # and one after it
    # Told at 15.5: a new refusal 3 s later waits for the period from then.
    assert told(proto.location_refused(None, 18.5)) == []
    assert told(proto.location_refused(None, 20.5)) == [(2, None)]


def test_a_refused_fix_sent_with_an_id_is_answered_at_once_by_its_ref() -> None:
    proto = opened(Role.AGENT)
    proto.location_refused(None, 10.0)
    proto.location_refused(None, 11.0)
    assert told(proto.location_refused("l7", 11.5)) == [(1, "l7")]
    assert told(proto.location_refused("l8", 11.6)) == [(1, "l8")]
    assert proto.untold_refusals == 1  # the id-less one stays counted for its notice


def test_a_notice_period_of_zero_answers_every_refused_fix() -> None:
    proto = SessionProtocol(Limits(refusal_notice_s=0.0), now=0.0)
    proto.receive_text(frame("auth", {"token": "tok"}), 1.0)
    proto.auth_succeeded(principal(Role.USER), now=1.0, token_expires=NEVER)
    assert [told(proto.location_refused(None, 2.0 + n / 1000)) for n in range(3)] == [
        [(1, None)]
    ] * 3


def test_a_closed_socket_is_told_nothing() -> None:
    proto = opened(Role.USER)
    proto.location_refused(None, 10.0)
    proto.location_refused(None, 11.0)
    proto.closed()
    assert proto.refusals_due(20.0) == []
    assert proto.location_refused("l1", 20.0) == []
