"""Reading server frames: typed by type, unknown members and types passed through."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from panic_alert_client import (
    Ack,
    AlertEta,
    AlertMessage,
    AlertOffer,
    AlertUpdated,
    AuthOk,
    ErrorFrame,
    GenericFrame,
    LocationUpdate,
    ProtocolError,
    parse_frame,
)
from panic_alert_client.frames import client_frame

ALERT = str(uuid.uuid4())


def text(kind: str, data: object, **extra: object) -> str:
    return json.dumps({"type": kind, "data": data, **extra})


def test_an_offer_is_typed_and_keeps_members_this_client_does_not_know() -> None:
    frame = parse_frame(
        text(
            "alert.offer",
            {
                "alert_id": ALERT,
                "alert_type": "medical",
                "latitude": 52.5,
                "longitude": 13.4,
                "position_precision_m": 600,
                "distance_m": 1200,
                "expires_at": "2030-01-01T00:00:30Z",
                "resync": True,
                "added_by_a_newer_server": {"x": 1},
            },
        )
    )
    assert isinstance(frame, AlertOffer)
    assert frame.alert_id == uuid.UUID(ALERT)
    assert (frame.latitude, frame.position_precision_m, frame.distance_m) == (52.5, 600.0, 1200.0)
    assert frame.expires_at == datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert frame.resync is True
    assert frame.data["added_by_a_newer_server"] == {"x": 1}


def test_answers_carry_their_ref() -> None:
    ack = parse_frame(
        text("ack", {"ref": "c1", "type": "offer.accept", "alert_id": ALERT, "status": "assigned"})
    )
    assert ack == Ack("c1", "offer.accept", uuid.UUID(ALERT), "assigned")
    error = parse_frame(
        text("error", {"code": "forbidden", "message": "pending", "ref": "c2", "retriable": False})
    )
    assert isinstance(error, ErrorFrame)
    assert (error.code, error.ref, error.retriable) == ("forbidden", "c2", False)
    auth = parse_frame(
        text("auth.ok", {"id": ALERT, "role": "agent", "heartbeat_timeout_s": 60}, id="x")
    )
    assert isinstance(auth, AuthOk)
    assert (auth.account_id, auth.heartbeat_timeout_s, auth.id) == (uuid.UUID(ALERT), 60.0, "x")


def test_both_location_pushes_share_one_type() -> None:
    for kind in ("alert.location", "agent.location"):
        frame = parse_frame(text(kind, {"alert_id": ALERT, "latitude": 1, "longitude": 2}))
        assert isinstance(frame, LocationUpdate)
        assert frame.type == kind


def test_an_unknown_type_or_an_unreadable_known_one_is_a_generic_frame() -> None:
    chat = parse_frame(text("alert.message", {"alert_id": ALERT, "text": "on my way"}))
    assert chat == GenericFrame("alert.message", data={"alert_id": ALERT, "text": "on my way"})
    assert chat.data["text"] == "on my way"
    broken = parse_frame(text("alert.updated", {"status": "assigned"}))  # no alert_id
    assert isinstance(broken, GenericFrame)
    assert broken.type == "alert.updated"
    assert not isinstance(broken, AlertUpdated)
    no_data = parse_frame(json.dumps({"type": "pong"}))
    assert no_data.type == "pong"


@pytest.mark.parametrize("message", ["not json", "[1, 2]", '{"data": {}}', '{"type": 3}'])
def test_what_is_not_a_frame_at_all_is_a_protocol_error(message: str) -> None:
    with pytest.raises(ProtocolError):
        parse_frame(message)


def test_client_frames_leave_out_nones_and_carry_an_id_when_given() -> None:
    sent = json.loads(client_frame("offer.decline", {"alert_id": ALERT, "reason": None}, "c9"))
    assert sent == {"type": "offer.decline", "data": {"alert_id": ALERT}, "id": "c9"}
    assert json.loads(client_frame("ping", {})) == {"type": "ping", "data": {}}


def test_chat_messages_and_arrival_estimates_are_typed() -> None:
    sender, message_id, agent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    message = parse_frame(
        text(
            "alert.message",
            {
                "alert_id": ALERT,
                "message_id": str(message_id),
                "sender_role": "agent",
                "sender_id": str(sender),
                "text": "Two minutes.\nStay inside.",
                "at": "2030-01-01T00:00:00+00:00",
            },
        )
    )
    assert isinstance(message, AlertMessage)
    assert (message.message_id, message.sender_role, message.sender_id) == (
        message_id,
        "agent",
        sender,
    )
    assert message.text == "Two minutes.\nStay inside."
    assert message.at == datetime(2030, 1, 1, tzinfo=UTC)
    eta = parse_frame(
        text(
            "alert.eta",
            {
                "alert_id": ALERT,
                "agent_id": str(agent),
                "eta_s": 134,
                "distance_m": 1111.9,
                "method": "great_circle",
                "at": "2030-01-01T00:00:05+00:00",
            },
        )
    )
    assert eta == AlertEta(
        uuid.UUID(ALERT),
        agent,
        134,
        1111.9,
        "great_circle",
        datetime(2030, 1, 1, 0, 0, 5, tzinfo=UTC),
    )
    ack = parse_frame(
        text(
            "ack",
            {
                "ref": "c2",
                "type": "alert.message",
                "alert_id": ALERT,
                "message_id": str(message_id),
            },
        )
    )
    assert isinstance(ack, Ack)
    assert ack.message_id == message_id


def test_an_estimate_without_whole_seconds_is_passed_through_as_generic() -> None:
    frame = parse_frame(text("alert.eta", {"alert_id": ALERT, "eta_s": 1.5}))
    assert isinstance(frame, GenericFrame)
    assert frame.data["eta_s"] == 1.5


def test_a_chat_frame_is_written_as_the_server_reads_it() -> None:
    written = json.loads(client_frame("alert.message", {"alert_id": ALERT, "text": "hi"}, "c3"))
    assert written == {
        "type": "alert.message",
        "id": "c3",
        "data": {"alert_id": ALERT, "text": "hi"},
    }
