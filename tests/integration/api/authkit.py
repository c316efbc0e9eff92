"""Helpers for the /auth and /users API tests: gateways with their own
rate-limit namespace, and accounts made through the public endpoints."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from cluster.client import EntityClient
from config.settings import LoginThrottleSettings, RateRule, Settings
from tests.integration.api.conftest import Gateway, serving

PASSWORD = "correct horse battery staple"


def isolated(
    settings: Settings, throttle: LoginThrottleSettings | None = None, **rules: RateRule
) -> Settings:
    """``settings`` with a fresh rate-limit key prefix (counters shared with no
    other test or run), the given rules replaced, and the login throttle if given."""
    limits = settings.rate_limit.model_copy(
        update={"key_prefix": f"test-{uuid.uuid4().hex[:12]}:", **rules}
    )
    update: dict[str, Any] = {"rate_limit": limits}
    if throttle is not None:
        update["login_throttle"] = throttle
    return settings.model_copy(update=update)


#: For tests that are not about rate limits: budgets no test module exhausts.
ROOMY = {
    name: RateRule(limit=10_000, window_s=60)
    for name in ("login_per_ip", "register_per_ip", "refresh_per_ip")
}


@asynccontextmanager
async def gateway_with(
    settings: Settings,
    entities: EntityClient,
    throttle: LoginThrottleSettings | None = None,
    **rules: RateRule,
) -> AsyncIterator[Gateway]:
    async with serving(isolated(settings, throttle, **rules), entities) as gateway:
        yield gateway


def client_from(gateway: Gateway, address: str) -> httpx.AsyncClient:
    """A client whose requests come from ``address`` (any of 127.0.0.0/8: all
    loopback on Linux), so the gateway sees another client address without
    trusting a forwarded header."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=gateway.base_url, timeout=20, transport=transport)


def unique_email() -> str:
    return f"u-{uuid.uuid4().hex}@example.org"


@dataclass(frozen=True)
class Session:
    email: str
    account_id: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(
    http: httpx.AsyncClient, role: str = "user", **extra: Any
) -> tuple[str, dict[str, Any]]:
    email = unique_email()
    body = {"email": email, "password": PASSWORD, "full_name": "Test Person", **extra}
    response = await http.post(f"/auth/register/{role}", json=body)
    assert response.status_code == 201, response.text
    return email, response.json()


async def login(http: httpx.AsyncClient, email: str, role: str = "user") -> dict[str, Any]:
    response = await http.post(f"/auth/login/{role}", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def signed_up(http: httpx.AsyncClient, role: str = "user") -> Session:
    email, account = await register(http, role)
    tokens = await login(http, email, role)
    return Session(email, account["id"], tokens["access_token"], tokens["refresh_token"])
