"""Secure deployment defaults (issue 16, item 6), over real HTTP.

Trusted proxies, security headers, uncacheable token responses, docs and
metrics behind a setting, and a 405's ``Allow`` header.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import ip_network
from typing import Any

import httpx
import pytest

from cluster.client import EntityClient
from config.settings import RateRule, Settings
from tests.integration.api.authkit import ROOMY, gateway_with, register
from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def secured(settings: Settings, **security: Any) -> Settings:
    return settings.model_copy(update={"security": settings.security.model_copy(update=security)})


@asynccontextmanager
async def client_of(
    settings: Settings, entities: EntityClient, **rules: RateRule
) -> AsyncIterator[tuple[Gateway, httpx.AsyncClient]]:
    async with (
        gateway_with(settings, entities, **rules) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client,
    ):
        yield gateway, client


# ----------------------------------------------------------- trusted proxies


async def test_finding_spoofed_x_forwarded_for_from_loopback_does_not_pick_the_rate_limit_bucket(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    """uvicorn trusted X-Forwarded-For from loopback: each spoofed address got
    a fresh bucket. Now no proxy is trusted by default, so the bucket is the
    real peer's (127.0.0.1) and the 4th refresh of a 3-per-minute rule is refused."""
    rule = RateRule(limit=3, window_s=60)
    async with client_of(api_settings, api_entities, refresh_per_ip=rule) as (_, http):
        statuses = []
        for n in range(4):
            response = await http.post(
                "/auth/refresh",
                json={"refresh_token": "x" * 43},
                headers={"X-Forwarded-For": f"203.0.113.{n + 1}"},
            )
            statuses.append(response.status_code)
    assert statuses[:3] != [429] * 3
    assert statuses[3] == 429, statuses


async def test_a_configured_proxy_is_trusted_for_address_and_scheme(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    settings = secured(api_settings, trusted_proxies=[ip_network("127.0.0.1/32")])
    rule = RateRule(limit=1, window_s=60)
    async with client_of(settings, api_entities, refresh_per_ip=rule) as (_, http):
        statuses = []
        for n in range(2):  # two clients behind the proxy: a bucket each
            response = await http.post(
                "/auth/refresh",
                json={"refresh_token": "x" * 43},
                headers={"X-Forwarded-For": f"203.0.113.{n + 1}", "X-Forwarded-Proto": "https"},
            )
            statuses.append(response.status_code)
        assert 429 not in statuses
        # Served over TLS (as the proxy says): HSTS.
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


# ----------------------------------------------------------- security headers


async def test_finding_responses_carry_security_headers(
    http: httpx.AsyncClient, gateway: Gateway
) -> None:
    host = gateway.base_url.removeprefix("http://")
    for response in (
        await http.get("/healthz"),
        await http.get("/no-such-path"),
        await http.get("/alerts"),  # 401
    ):
        headers = response.headers
        assert headers["X-Content-Type-Options"] == "nosniff", response.url
        assert headers["Referrer-Policy"] == "no-referrer"
        csp = dict(
            part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";")
        )
        assert csp["script-src"] == "'self'"
        assert csp["style-src"] == "'self'"
        assert {"data:", "blob:"} <= set(csp["img-src"].split())
        assert "blob:" in csp["worker-src"].split()
        assert {"'self'", f"ws://{host}"} <= set(csp["connect-src"].split())
        assert csp["frame-ancestors"] == "'none'"
        # Plain HTTP from a client no proxy vouches for: no HSTS.
        assert "Strict-Transport-Security" not in headers


async def test_finding_token_responses_are_not_cacheable(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    async with client_of(api_settings, api_entities, **ROOMY) as (_, http):
        email, _account = await register(http)
        login = await http.post(
            "/auth/login/user", json={"email": email, "password": "correct horse battery staple"}
        )
        assert login.status_code == 200
        refreshed = await http.post(
            "/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
        )
        assert refreshed.status_code == 200
        registered = await http.post(
            "/auth/register/user",
            json={
                "email": f"u-{uuid.uuid4().hex}@example.org",
                "password": "correct horse battery staple",
                "full_name": "Test Person",
            },
        )
        for response in (login, refreshed, registered):
            assert response.headers["Cache-Control"] == "no-store", response.url
            assert response.headers["Pragma"] == "no-cache"


# ------------------------------------------------------------ docs, metrics


async def test_finding_docs_and_metrics_can_be_restricted_by_setting(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    settings = secured(
        api_settings,
        docs_allowed_networks=[],
        metrics_allowed_networks=[ip_network("10.0.0.0/8")],
    )
    async with client_of(settings, api_entities) as (_, http):
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"
        assert (await http.get("/healthz")).status_code == 200
    loopback = secured(
        api_settings,
        docs_allowed_networks=[ip_network("127.0.0.0/8")],
        metrics_allowed_networks=[ip_network("127.0.0.1/32")],
    )
    async with client_of(loopback, api_entities) as (_, http):
        for path in ("/docs", "/openapi.json", "/metrics"):
            assert (await http.get(path)).status_code == 200, path


async def test_docs_pages_get_a_policy_their_assets_fit(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs")
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    for asset in re.findall(r"https://[^\"'\s]+", response.text):
        origin = "/".join(asset.split("/")[:3])
        assert origin in csp, origin


# ------------------------------------------------------------------- 405


async def test_finding_a_405_carries_its_allow_header(http: httpx.AsyncClient) -> None:
    """RFC 9110: every 405 names the methods the resource supports. Paths
    served by two routes (GET in one, PUT in another) named only the first."""
    document = (await http.get("/openapi.json")).json()
    checked = 0
    for template, operations in document["paths"].items():
        documented = {m.upper() for m in operations if m.upper() in HTTP_METHODS}
        # OPTIONS and HEAD are not tried, but a resource that serves them (tus) says so.
        served = {m.upper() for m in operations if m.upper() in (*HTTP_METHODS, "OPTIONS", "HEAD")}
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        for method in sorted(set(HTTP_METHODS) - documented):
            response = await http.request(method, path)
            assert response.status_code == 405, (method, template)
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert allowed == served, (method, template, allowed)
            checked += 1
    assert checked > 20
