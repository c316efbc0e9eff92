"""Parsing and validation of ``/ws`` client frames (gateway.ws.frames), no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from actors.agent import Availability
from actors.alert_state import AlertStatus
from gateway.ws.codes import ErrorCode
from gateway.ws.frames import (
    AgentStatusData,
    AlertStatusData,
    ClientFrame,
    FrameError,
    LocationData,
    OfferDeclineData,
    error_frame,
    parse_client_frame,
)


def parse(frame: Any) -> ClientFrame | FrameError:
    return parse_client_frame(json.dumps(frame))


def test_a_valid_location_frame_is_parsed_with_its_id() -> None:
    parsed = parse(
        {
            "type": "location",
            "id": "f1",
            "data": {
                "latitude": -33.9,
                "longitude": 18,
                "accuracy_m": 4.5,
                "heading": 359.9,
                "speed_mps": 0,
                "recorded_at": "2026-01-02T03:04:05Z",
            },
        }
    )
    assert isinstance(parsed, ClientFrame)
    assert parsed.id == "f1"
    assert isinstance(parsed.data, LocationData)
    assert parsed.data.longitude == 18.0
    assert parsed.data.recorded_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_data_defaults_to_empty_and_id_is_optional() -> None:
    parsed = parse({"type": "ping"})
    assert isinstance(parsed, ClientFrame)
    assert parsed.id is None


def test_agent_frames_parse_to_their_domain_values() -> None:
    alert_id = uuid4()
    status = parse({"type": "agent.status", "data": {"status": "on_break"}})
    assert isinstance(status, ClientFrame)
    assert isinstance(status.data, AgentStatusData)
    assert status.data.status is Availability.ON_BREAK
    update = parse(
        {"type": "alert.status", "data": {"alert_id": str(alert_id), "status": "en_route"}}
    )
    assert isinstance(update, ClientFrame)
    assert isinstance(update.data, AlertStatusData)
    assert (update.data.alert_id, update.data.status) == (alert_id, AlertStatus.EN_ROUTE)
    decline = parse({"type": "offer.decline", "data": {"alert_id": str(alert_id)}})
    assert isinstance(decline, ClientFrame)
    assert isinstance(decline.data, OfferDeclineData)
    assert decline.data.reason is None


@pytest.mark.parametrize(
    ("text", "code", "ref"),
    [
        ("", ErrorCode.BAD_FRAME, None),
        ("{", ErrorCode.BAD_FRAME, None),
        ("null", ErrorCode.BAD_FRAME, None),
        ('"ping"', ErrorCode.BAD_FRAME, None),
        ('{"type": "ping", "id": 5}', ErrorCode.BAD_FRAME, None),
        ('{"type": "ping", "id": "' + "x" * 129 + '"}', ErrorCode.BAD_FRAME, None),
        ('{"id": "a"}', ErrorCode.BAD_FRAME, "a"),
        ('{"type": null, "id": "a"}', ErrorCode.BAD_FRAME, "a"),
        ('{"type": "ping", "id": "a", "extra": 1}', ErrorCode.BAD_FRAME, "a"),
        ('{"type": "ping", "id": "a", "data": "x"}', ErrorCode.BAD_FRAME, "a"),
        ('{"type": "Ping", "id": "a"}', ErrorCode.UNKNOWN_TYPE, "a"),
        ('{"type": "ping", "id": "a", "data": {"x": 1}}', ErrorCode.INVALID_DATA, "a"),
        ('{"type": "auth", "id": "a", "data": {"token": ""}}', ErrorCode.INVALID_DATA, "a"),
        ('{"type": "auth", "id": "a", "data": {"token": 12}}', ErrorCode.INVALID_DATA, "a"),
    ],
)
def test_malformed_frames_give_an_error_with_the_readable_id(
    text: str, code: ErrorCode, ref: str | None
) -> None:
    parsed = parse_client_frame(text)
    assert isinstance(parsed, FrameError)
    assert (parsed.code, parsed.ref) == (code, ref)
    assert parsed.message


@pytest.mark.parametrize(
    "data",
    [
        {"longitude": 1},
        {"latitude": "1", "longitude": 1},
        {"latitude": True, "longitude": 1},
        {"latitude": 90.5, "longitude": 1},
        {"latitude": 1, "longitude": -180.01},
        {"latitude": 1, "longitude": 1, "accuracy_m": -1},
        {"latitude": 1, "longitude": 1, "heading": 360},
        {"latitude": 1, "longitude": 1, "speed_mps": -0.1},
        {"latitude": 1, "longitude": 1, "recorded_at": "2026-01-02T03:04:05"},  # naive
        {"latitude": 1, "longitude": 1, "recorded_at": "yesterday"},
        {"latitude": 1, "longitude": 1, "altitude": 3},
    ],
)
def test_out_of_range_or_mistyped_location_fields_are_invalid(data: dict[str, Any]) -> None:
    parsed = parse({"type": "location", "id": "loc", "data": data})
    assert isinstance(parsed, FrameError)
    assert (parsed.code, parsed.ref) == (ErrorCode.INVALID_DATA, "loc")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_not_json(constant: str) -> None:
    text = '{"type": "location", "data": {"latitude": ' + constant + ', "longitude": 1}}'
    parsed = parse_client_frame(text)
    assert isinstance(parsed, FrameError)
    assert parsed.code is ErrorCode.BAD_FRAME


@pytest.mark.parametrize(
    ("frame_type", "data"),
    [
        ("agent.status", {"status": "sleeping"}),
        ("agent.status", {"status": 1}),
        ("offer.accept", {"alert_id": "not-a-uuid"}),
        ("offer.accept", {}),
        ("offer.decline", {"alert_id": str(uuid4()), "reason": "x" * 1001}),
        ("alert.status", {"alert_id": str(uuid4()), "status": "teleported"}),
        ("offer.decline", {"alert_id": str(uuid4()), "reason": "busy\r\nok"}),
        ("alert.status", {"alert_id": str(uuid4()), "status": "on_scene", "note": "in\u202e"}),
    ],
)
def test_agent_frames_with_bad_data_are_invalid(frame_type: str, data: dict[str, Any]) -> None:
    parsed = parse({"type": frame_type, "id": "r", "data": data})
    assert isinstance(parsed, FrameError)
    assert (parsed.code, parsed.ref) == (ErrorCode.INVALID_DATA, "r")


def test_error_frames_leave_out_a_missing_ref() -> None:
    assert error_frame("bad_frame", "no") == {
        "type": "error",
        "data": {"code": "bad_frame", "message": "no", "retriable": False},
    }
    assert error_frame("timeout", "slow", "r1", retriable=True)["data"]["ref"] == "r1"
