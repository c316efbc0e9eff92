"""Request bodies above settings.http.max_body_bytes answer 413 problem details."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.problems import PROBLEM_JSON
from tests.unit.gateway.support import TEST_MAX_BODY, ClientFactory


async def _chunks(total: int, size: int = 512) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        chunk = b"x" * min(size, total - sent)
        sent += len(chunk)
        yield chunk


def _assert_413(status: int, content_type: str, body: dict[str, object]) -> None:
    assert status == 413
    assert content_type == PROBLEM_JSON
    assert body["status"] == 413
    assert body["type"] == "urn:panic-alert:problem:body-too-large"
    assert str(TEST_MAX_BODY) in str(body["detail"])


async def test_declared_length_over_limit_is_refused_before_reading(
    gateway_client: ClientFactory,
) -> None:
    async with gateway_client() as client:
        response = await client.post("/raw", content=b"x" * (TEST_MAX_BODY + 1))
    _assert_413(response.status_code, response.headers["content-type"], response.json())
    assert response.headers["x-request-id"]


async def test_streamed_body_over_limit_is_refused(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        # An async iterator body is sent chunked: no Content-Length to check up front.
        response = await client.post("/raw", content=_chunks(TEST_MAX_BODY * 3))
    assert "content-length" not in response.request.headers
    _assert_413(response.status_code, response.headers["content-type"], response.json())


async def test_streamed_json_over_limit_is_413_not_400(gateway_client: ClientFactory) -> None:
    async def json_chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.org", "age": 3, "password": "'
        async for chunk in _chunks(TEST_MAX_BODY * 2):
            yield chunk
        yield b'"}'

    async with gateway_client() as client:
        response = await client.post(
            "/signup", content=json_chunks(), headers={"content-type": "application/json"}
        )
    _assert_413(response.status_code, response.headers["content-type"], response.json())


async def test_body_at_limit_is_accepted(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        declared = await client.post("/raw", content=b"x" * TEST_MAX_BODY)
        streamed = await client.post("/raw", content=_chunks(TEST_MAX_BODY))
    assert declared.status_code == 200
    assert declared.json() == {"received": TEST_MAX_BODY}
    assert streamed.status_code == 200
    assert streamed.json() == {"received": TEST_MAX_BODY}


async def test_limit_comes_from_settings(gateway_client: ClientFactory) -> None:
    async with gateway_client(max_body_bytes=TEST_MAX_BODY * 4) as client:
        response = await client.post("/raw", content=b"x" * (TEST_MAX_BODY * 3))
    assert response.status_code == 200


async def test_malformed_content_length_is_400_problem(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.post(
            "/raw", content=b"abc", headers={"content-length": "3; drop table"}
        )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM_JSON
