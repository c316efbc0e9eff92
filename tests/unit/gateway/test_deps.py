"""gateway.deps: the Annotated aliases resolve from app state; a missing port is a 503."""

from __future__ import annotations

from tests.unit.gateway.support import TEST_MAX_BODY, ClientFactory


async def test_settings_dependency_is_the_apps_settings(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/settings-echo")
    assert response.json() == {"max_body_bytes": TEST_MAX_BODY}


async def test_route_needing_an_absent_backend_answers_503_problem(
    gateway_client: ClientFactory,
) -> None:
    # No ports given to create_app: the accounts dependency cannot be satisfied.
    async with gateway_client() as client:
        response = await client.get("/needs-db")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["type"] == "urn:panic-alert:problem:temporarily-unavailable"
    assert "not configured" not in body["detail"]
