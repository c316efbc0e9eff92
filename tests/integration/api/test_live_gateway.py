"""The live gateway fixture itself: real HTTP on loopback, every dependency ready."""

from __future__ import annotations

import httpx
import pytest

from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration


async def test_a_live_gateway_serves_over_real_http(gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=10) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert health.status_code == 200
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "postgres": "ok",
        "redis": "ok",
        "mongo": "ok",
        "kafka": "ok",
    }
