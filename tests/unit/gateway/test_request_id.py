"""X-Request-ID: validated, echoed, and used as the logging correlation id."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest

from config.logging import JsonFormatter
from gateway.middleware import accept_request_id
from tests.unit.gateway.support import ClientFactory


def _is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False


@pytest.mark.parametrize(
    "candidate",
    ["abc", "3f2c1a7e-0d5b-4c8e-9a6f-1b2c3d4e5f60", "req_1.2:3-x", "A" * 128],
)
def test_safe_ids_are_kept(candidate: str) -> None:
    assert accept_request_id(candidate) == candidate


@pytest.mark.parametrize(
    "candidate",
    [
        None,
        "",
        "A" * 129,
        "has space",
        "new\nline",
        'quote"d',
        "semi;colon",
        "ünïcode",
        "<script>",
        "a/b",
    ],
)
def test_unsafe_ids_are_replaced_by_uuid4(candidate: str | None) -> None:
    replaced = accept_request_id(candidate)
    assert replaced != candidate
    assert _is_uuid4(replaced)


async def test_incoming_id_is_echoed(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "client-42"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "client-42"


async def test_invalid_incoming_id_is_replaced(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert _is_uuid4(response.headers["x-request-id"])


async def test_missing_id_is_generated_per_request(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        first = await client.get("/healthz")
        second = await client.get("/healthz")
    assert _is_uuid4(first.headers["x-request-id"])
    assert _is_uuid4(second.headers["x-request-id"])
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


async def test_one_json_access_line_carries_the_id(gateway_client: ClientFactory) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("gateway.access")
    access.addHandler(handler)
    previous_level = access.level
    access.setLevel(logging.INFO)
    try:
        async with gateway_client() as client:
            await client.get("/items/7?token=abc", headers={"X-Request-ID": "trace-me"})
    finally:
        access.removeHandler(handler)
        access.setLevel(previous_level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["correlation_id"] == "trace-me"
    assert line["logger"] == "gateway.access"
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/items/{item_id}"
    assert line["path"] == "/items/7"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    # The query string (it may carry tokens) is not logged.
    assert "abc" not in json.dumps(line)
