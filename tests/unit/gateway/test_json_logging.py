"""config.logging: one JSON object per line, correlation id, bound context, no PII."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from config.logging import (
    REDACTED,
    bind,
    configure_logging,
    correlation_scope,
    get_correlation_id,
)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_record_is_one_json_line(captured: io.StringIO) -> None:
    log = logging.getLogger("panic.test")
    log.info("alert %s dispatched\nto %s", "a-1", "agent-2")
    (line,) = _lines(captured)
    assert line["message"] == "alert a-1 dispatched\nto agent-2"
    assert line["level"] == "INFO"
    assert line["logger"] == "panic.test"
    assert line["correlation_id"] is None
    assert line["time"].endswith("Z")


def test_correlation_id_and_bound_context(captured: io.StringIO) -> None:
    log = logging.getLogger("panic.test")
    with correlation_scope("req-1"), bind(alert_id="a-1"):
        with bind(agent_id="g-9"):
            log.info("offered")
        log.info("after")
    log.info("outside")
    first, second, third = _lines(captured)
    assert first["correlation_id"] == "req-1"
    assert first["alert_id"] == "a-1"
    assert first["agent_id"] == "g-9"
    assert second["alert_id"] == "a-1"
    assert "agent_id" not in second
    assert third["correlation_id"] is None
    assert "alert_id" not in third
    assert get_correlation_id() is None


def test_personal_fields_are_redacted_at_every_level(captured: io.StringIO) -> None:
    log = logging.getLogger("panic.test")
    with bind(email="a@example.org"):
        log.debug(
            "login",
            extra={"phone": "+15551234", "password": "hunter2", "access_token": "eyJ"},
        )
    (line,) = _lines(captured)
    for key in ("email", "phone", "password", "access_token"):
        assert line[key] == REDACTED
    text = captured.getvalue()
    for secret in ("a@example.org", "+15551234", "hunter2", "eyJ"):
        assert secret not in text


def test_coordinates_are_coarse_above_debug(captured: io.StringIO) -> None:
    log = logging.getLogger("panic.test")
    log.info("located", extra={"latitude": 52.520008, "longitude": 13.404954})
    log.debug("located", extra={"latitude": 52.520008, "longitude": 13.404954})
    info, debug = _lines(captured)
    assert (info["latitude"], info["longitude"]) == (52.52, 13.4)
    assert (debug["latitude"], debug["longitude"]) == (52.520008, 13.404954)


def test_exceptions_are_logged_with_traceback(captured: io.StringIO) -> None:
    log = logging.getLogger("panic.test")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("failed")
    (line,) = _lines(captured)
    assert line["exc_type"] == "ValueError"
    assert "Traceback" in line["exception"]


def test_configure_twice_keeps_one_handler(captured: io.StringIO) -> None:
    configure_logging("INFO", stream=captured)
    configure_logging("INFO", stream=captured)
    logging.getLogger("panic.test").info("once")
    assert len(_lines(captured)) == 1


def test_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        configure_logging("LOUD")
