"""CORS: only the origins listed in settings.http.cors_origins are allowed."""

from __future__ import annotations

from tests.unit.gateway.support import ClientFactory

PORTAL = "https://portal.example.org"


async def test_listed_origin_is_allowed_and_sees_the_request_id(
    gateway_client: ClientFactory,
) -> None:
    async with gateway_client(cors_origins=[PORTAL]) as client:
        preflight = await client.options(
            "/items/1",
            headers={
                "Origin": PORTAL,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        simple = await client.get("/items/1", headers={"Origin": PORTAL})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == PORTAL
    assert simple.headers["access-control-allow-origin"] == PORTAL
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_unlisted_origin_gets_no_cors_headers(gateway_client: ClientFactory) -> None:
    async with gateway_client(cors_origins=[PORTAL]) as client:
        preflight = await client.options(
            "/items/1",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        simple = await client.get("/items/1", headers={"Origin": "https://evil.example"})
    assert preflight.status_code == 400
    assert preflight.headers["content-type"] == "application/problem+json"
    assert "origin" in preflight.json()["detail"]
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


async def test_no_origins_configured_means_no_cors(gateway_client: ClientFactory) -> None:
    async with gateway_client() as client:
        response = await client.get("/items/1", headers={"Origin": PORTAL})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_a_browser_may_speak_tus(gateway_client: ClientFactory) -> None:
    async with gateway_client(cors_origins=[PORTAL]) as client:
        preflight = await client.options(
            "/media/uploads/1",
            headers={
                "Origin": PORTAL,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "authorization, tus-resumable, upload-offset, "
                "upload-length, upload-metadata, content-type",
            },
        )
        simple = await client.get("/items/1", headers={"Origin": PORTAL})
    assert preflight.status_code == 200, preflight.text
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    exposed = {
        h.strip() for h in simple.headers["access-control-expose-headers"].lower().split(",")
    }
    assert {
        "location",
        "upload-offset",
        "upload-length",
        "upload-expires",
        "tus-resumable",
    } <= exposed
    assert {"tus-version", "tus-extension", "tus-max-size", "media-id"} <= exposed
