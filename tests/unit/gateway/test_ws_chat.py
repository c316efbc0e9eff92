"""``alert.message`` frames in the pure socket protocol (gateway.ws.protocol)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from actors.alert_messages import PostMessage
from actors.alert_state import ActorRole, AlertState, AlertStatus, AlertType
from actors.effects import EntityKind
from actors.errors import ChatRefused
from gateway.auth.principal import Principal, Role
from gateway.ws.codes import describe_error
from gateway.ws.frames import SERVER_FRAMES, FrameError, parse_client_frame
from gateway.ws.protocol import AskEntity, Authenticate, Limits, SendFrame, SessionProtocol

LIMITS = Limits(auth_timeout_s=5.0, heartbeat_timeout_s=30.0)
MESSAGE_ID = UUID(int=0x3001)
ALERT = UUID(int=0xE001)


def _frame(data: dict[str, Any], frame_id: str | None = "m1") -> str:
    body: dict[str, Any] = {"type": "alert.message", "data": data}
    if frame_id is not None:
        body["id"] = frame_id
    return json.dumps(body)


def _opened(role: Role, principal_id: UUID) -> SessionProtocol:
    proto = SessionProtocol(LIMITS, now=0.0, ids=lambda: MESSAGE_ID)
    assert proto.receive_text(json.dumps({"type": "auth", "data": {"token": "t"}}), 1.0) == [
        Authenticate("t")
    ]
    who = Principal(id=principal_id, role=role, session_id="s", token_id="t")
    proto.auth_succeeded(who, now=1.0, token_expires=1e9)
    return proto


@pytest.mark.parametrize(
    ("role", "actor_role"), [(Role.USER, ActorRole.USER), (Role.AGENT, ActorRole.AGENT)]
)
def test_a_message_goes_to_the_alert_with_a_fresh_id(role: Role, actor_role: ActorRole) -> None:
    sender = uuid4()
    proto = _opened(role, sender)
    actions = proto.receive_text(_frame({"alert_id": str(ALERT), "text": " Where are you?\n"}), 2.0)
    post = PostMessage(MESSAGE_ID, sender, actor_role, "Where are you?")
    assert actions == [AskEntity(EntityKind.ALERT, str(ALERT), post, "m1", "alert.message")]


def test_the_ack_names_the_message() -> None:
    proto = _opened(Role.USER, uuid4())
    (ask,) = proto.receive_text(_frame({"alert_id": str(ALERT), "text": "hi"}), 2.0)
    assert isinstance(ask, AskEntity)
    state = alert_in_en_route()
    (reply,) = proto.ask_succeeded(ask, state)
    assert isinstance(reply, SendFrame)
    assert reply.frame == {
        "type": "ack",
        "data": {
            "ref": "m1",
            "type": "alert.message",
            "alert_id": str(state.id),
            "status": "en_route",
            "message_id": str(MESSAGE_ID),
        },
    }


def alert_in_en_route() -> AlertState:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return AlertState(
        id=ALERT,
        user_id=uuid4(),
        alert_type=AlertType.PANIC,
        status=AlertStatus.EN_ROUTE,
        latitude=52.5,
        longitude=13.4,
        accuracy_m=None,
        description=None,
        silent=False,
        created_at=at,
        updated_at=at,
        assigned_agent_id=uuid4(),
    )


def test_admin_sockets_do_not_chat() -> None:
    proto = _opened(Role.ADMIN, uuid4())
    actions = proto.receive_text(_frame({"alert_id": str(ALERT), "text": "hi"}), 2.0)
    (error,) = [a.frame for a in actions if isinstance(a, SendFrame)]
    assert error["data"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "data",
    [
        {"alert_id": str(ALERT), "text": ""},
        {"alert_id": str(ALERT), "text": "   "},
        {"alert_id": str(ALERT), "text": "x" * 501},
        {"alert_id": str(ALERT), "text": "a\rb"},
        {"alert_id": str(ALERT), "text": 5},
        {"alert_id": str(ALERT)},
        {"alert_id": "nope", "text": "hi"},
        {"alert_id": str(ALERT), "text": "hi", "extra": 1},
    ],
)
def test_bad_messages_are_invalid_data_with_their_ref(data: dict[str, Any]) -> None:
    proto = _opened(Role.USER, uuid4())
    actions = proto.receive_text(_frame(data), 2.0)
    (error,) = [a.frame for a in actions if isinstance(a, SendFrame)]
    assert error["data"]["code"] == "invalid_data"
    assert error["data"]["ref"] == "m1"


def test_a_refusal_is_forbidden_and_the_push_models_read_the_entity_s_frames() -> None:
    assert describe_error(ChatRefused("no"))[0] == "forbidden"
    parsed = parse_client_frame(_frame({"alert_id": str(ALERT), "text": "a\nb"}))
    assert not isinstance(parsed, FrameError)
    assert getattr(parsed.data, "text", None) == "a\nb"
    message = {
        "alert_id": str(ALERT),
        "message_id": str(MESSAGE_ID),
        "sender_role": "agent",
        "sender_id": str(uuid4()),
        "text": "a\nb",
        "at": "2026-01-01T00:00:00+00:00",
    }
    assert SERVER_FRAMES["alert.message"].model_validate(message)
    eta = {
        "alert_id": str(ALERT),
        "agent_id": str(uuid4()),
        "eta_s": 120,
        "distance_m": 996.1,
        "method": "great_circle",
        "at": "2026-01-01T00:00:00+00:00",
    }
    assert SERVER_FRAMES["alert.eta"].model_validate(eta)
