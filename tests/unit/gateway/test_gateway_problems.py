"""Every error answers RFC 9457 problem details, without leaking internals."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from gateway.errors import status_for
from gateway.problems import PROBLEM_JSON
from persistence.errors import Conflict, PersistenceError, ServiceUnavailable
from persistence.stores.accounts import DuplicateEmail
from tests.unit.gateway.support import ClientFactory


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert isinstance(body, dict)
    assert body["status"] == status
    for member in ("type", "title", "detail"):
        assert isinstance(body[member], str)
        assert body[member]
    # The request id in the body is the one echoed in the header.
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_unknown_route_is_404_problem(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/no/such/thing?q=1")
    body = assert_problem(response, 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["instance"] == "/no/such/thing"


async def test_wrong_method_is_405_problem(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.delete("/healthz")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


async def test_validation_error_is_422_with_loc_and_msg_only(
    gateway_client: ClientFactory,
) -> None:
    async with gateway_client() as client:
        response = await client.post(
            "/signup", json={"email": "a@example.org", "password": "short1", "age": 999}
        )
    body = assert_problem(response, 422)
    assert body["type"] == "urn:panic-alert:problem:validation"
    errors = body["errors"]
    assert isinstance(errors, list)
    by_loc = {tuple(e["loc"]): e for e in errors}
    assert set(by_loc) == {("body", "password"), ("body", "age")}
    for error in errors:
        assert set(error) == {"loc", "msg"}
        assert error["msg"]
    # Submitted values (a password here) are never echoed back.
    assert "short1" not in response.text


async def test_malformed_json_is_422_not_500(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.post(
            "/signup", content=b'{"email": ', headers={"content-type": "application/json"}
        )
    body = assert_problem(response, 422)
    assert body["errors"]


async def test_body_that_is_not_utf8_is_422_not_400(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.post(
            "/signup",
            content=b'{"email": "\xff\xfe"}',
            headers={"content-type": "application/json"},
        )
    body = assert_problem(response, 422)
    assert body["errors"] == [{"loc": ["body"], "msg": "malformed JSON body"}]


async def test_http_exception_keeps_its_detail(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/forbidden")
    body = assert_problem(response, 403)
    assert body["detail"] == "You may not see this."


async def test_http_exception_5xx_detail_is_hidden(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/http-500")
    body = assert_problem(response, 500)
    assert "internals" not in str(body["detail"])


async def test_unhandled_exception_is_generic_500_and_logged(
    gateway_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with gateway_client() as client:
        response = await client.get("/boom", headers={"X-Request-ID": "crash-1"})
    body = assert_problem(response, 500)
    assert body["request_id"] == "crash-1"
    for leaked in ("secret", "hunter2", "db-7", "RuntimeError", "Traceback"):
        assert leaked not in response.text
    crashes = [r for r in caplog.records if r.exc_info and r.name == "gateway.middleware"]
    assert len(crashes) == 1
    exc_info = crashes[0].exc_info
    assert exc_info is not None
    assert exc_info[0] is RuntimeError
    access = [r for r in caplog.records if r.name == "gateway.access"]
    assert [getattr(r, "status", None) for r in access] == [500]


@pytest.mark.parametrize(
    ("kind", "status", "detail"),
    [
        ("conflict", 409, "The request conflicts with the current state of the resource."),
        ("retriable-conflict", 503, "A backing service is temporarily unavailable; retry later."),
        ("duplicate-email", 409, "An account with this email already exists."),
        ("unavailable", 503, "A backing service is temporarily unavailable; retry later."),
        ("persistence", 500, None),
        ("cluster", 503, "A backing service is temporarily unavailable; retry later."),
    ],
)
async def test_domain_errors_map_to_status(
    gateway_client: ClientFactory, kind: str, status: int, detail: str | None
) -> None:
    async with gateway_client() as client:
        response = await client.get(f"/domain/{kind}")
    body = assert_problem(response, status)
    if detail is not None:
        assert body["detail"] == detail
    # Driver text (SQL, constraint names, hosts) never reaches the client.
    for leaked in ("users_email_key", "10.1.2.3", "users_xyz", "10.9.9.9", "serialize"):
        assert leaked not in response.text
    if status == 503:
        assert int(response.headers["retry-after"]) > 0
    else:
        assert "retry-after" not in response.headers


def test_status_for_prefers_the_most_specific_class() -> None:
    assert status_for(DuplicateEmail()) == 409
    assert status_for(Conflict("x")) == 409
    assert status_for(Conflict("x", retriable=True)) == 503
    assert status_for(ServiceUnavailable("redis")) == 503
    assert status_for(PersistenceError("x")) == 500
    assert status_for(PersistenceError("x", retriable=True)) == 503
