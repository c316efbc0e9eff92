"""/readyz against the real PostgreSQL, Redis, FerretDB and Kafka.

Stops and restarts the local Redis (only Redis: the other services are shared
with concurrent test runs). Redis is always brought back up, even on failure.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator

import httpx
import pytest

from config.settings import REPO_ROOT, Settings
from panic_alert.gateway_root import build_gateway
from persistence.drivers.postgres import create_pool
from persistence.migrations import apply_migrations
from tests.integration.gateway.support import poll, running_app
from tests.local import free_port
from tests.scratch import on_database, scratch_database

pytestmark = pytest.mark.integration

SERVICES = REPO_ROOT / "scripts" / "services"
ALL_OK = {"postgres": "ok", "redis": "ok", "mongo": "ok", "kafka": "ok"}


def _ready(response: httpx.Response) -> bool:
    return response.status_code == 200


def _redis_not_ready(response: httpx.Response) -> bool:
    return response.status_code == 503 and response.json()["checks"]["redis"] != "ok"


async def _services(action: str, service: str) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [str(SERVICES), action, service],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"services {action} {service}: {result.stderr}"


@pytest.fixture(scope="module")
async def migrated(settings: Settings) -> AsyncIterator[Settings]:
    """Settings on a migrated scratch database: the state a deployment serves from."""
    async with scratch_database(settings, "pa_readyz") as database:
        yield on_database(settings, database)


async def test_readyz_follows_redis_going_down_and_coming_back(migrated: Settings) -> None:
    settings = migrated
    async with running_app(build_gateway(settings)) as client:
        response = await poll(client, "/readyz", _ready, deadline_s=30)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ready", "checks": ALL_OK}

        try:
            await _services("down", "redis")
            response = await poll(client, "/readyz", _redis_not_ready, deadline_s=20)
            assert response.status_code == 503
            assert response.headers["content-type"] == "application/problem+json"
            body = response.json()
            assert "redis" in body["detail"]
            for other in ("postgres", "mongo", "kafka"):
                assert other not in body["detail"]
            assert body["checks"]["redis"] in {"unavailable", "timeout"}
            assert {k: v for k, v in body["checks"].items() if k != "redis"} == {
                "postgres": "ok",
                "mongo": "ok",
                "kafka": "ok",
            }
            # Liveness is not readiness: the process still answers.
            assert (await client.get("/healthz")).status_code == 200

            # A process started while Redis is down still comes up ...
            async with running_app(build_gateway(settings)) as late:
                assert (await late.get("/healthz")).status_code == 200
                late_response = await late.get("/readyz")
                assert late_response.status_code == 503
                assert late_response.json()["checks"]["redis"] != "ok"
                await _services("up", "redis")
                # ... and connects once Redis is back, without a restart.
                late_response = await poll(late, "/readyz", _ready, deadline_s=30)
                assert late_response.status_code == 200, late_response.text
        finally:
            await _services("up", "redis")

        response = await poll(client, "/readyz", _ready, deadline_s=30)
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == ALL_OK


async def test_readyz_reports_an_unreachable_mongo_within_the_timeout(migrated: Settings) -> None:
    settings = migrated
    # A MongoDB endpoint where nothing listens: no shared service is disturbed.
    broken = settings.model_copy(
        update={"mongo": settings.mongo.model_copy(update={"port": free_port()})}
    )
    async with running_app(build_gateway(broken)) as client:
        assert (await client.get("/healthz")).status_code == 200
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.get("/readyz")
        elapsed = loop.time() - started
    assert response.status_code == 503
    body = response.json()
    assert "mongo" in body["detail"]
    assert body["checks"]["mongo"] in {"unavailable", "timeout"}
    assert body["checks"]["postgres"] == "ok"
    assert body["checks"]["redis"] == "ok"
    assert elapsed < settings.http.readiness_timeout_s + 1.0


async def test_readyz_is_503_until_the_schema_is_migrated(settings: Settings) -> None:
    async with scratch_database(settings, "pa_readyz_empty", migrated=False) as database:
        empty = on_database(settings, database)
        async with running_app(build_gateway(empty)) as client:
            response = await client.get("/readyz")
            assert response.status_code == 503
            assert response.json()["checks"]["postgres"] == "not_migrated"
            assert "postgres not_migrated (run: panic-alert migrate)" in response.json()["detail"]

            pool = await create_pool(empty.postgres)
            try:
                assert await apply_migrations(pool)
            finally:
                await pool.close()
            response = await poll(client, "/readyz", _ready, deadline_s=30)
            assert response.json()["checks"] == ALL_OK
