"""/healthz and /readyz over injected fake backends."""

from __future__ import annotations

import time

import pytest

from actors.store_errors import SchemaNotMigrated
from gateway.problems import PROBLEM_JSON
from gateway.readiness import BackendSet
from tests.fakes.readiness import FakeBackend, healthy_backends
from tests.unit.gateway.support import ClientFactory


async def test_healthz_is_200_even_when_every_backend_is_down(
    gateway_client: ClientFactory,
) -> None:
    backends = [FakeBackend(n, healthy=False, fail_open=True) for n in ("postgres", "redis")]
    async with gateway_client(backends=backends) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_200_when_all_checks_pass(gateway_client: ClientFactory) -> None:
    backends = healthy_backends("postgres", "redis", "mongo", "kafka", "ray")
    async with gateway_client(backends=backends) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "mongo": "ok", "kafka": "ok", "ray": "ok"},
    }
    assert all(b.checked == 1 for b in backends)


async def test_readyz_names_the_failed_backend(gateway_client: ClientFactory) -> None:
    backends = healthy_backends()
    backends[1].healthy = False  # redis
    async with gateway_client(backends=backends) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 503
    assert body["type"] == "urn:panic-alert:problem:not-ready"
    assert body["title"] == "Service Unavailable"
    assert "redis" in body["detail"]
    for healthy in ("postgres", "mongo", "kafka"):
        assert healthy not in body["detail"]
    assert body["checks"] == {
        "postgres": "ok",
        "redis": "unavailable",
        "mongo": "ok",
        "kafka": "ok",
    }
    # The failure reason (hosts, driver text) stays in the logs.
    assert "refused" not in response.text


async def test_readyz_recovers_when_the_backend_comes_back(gateway_client: ClientFactory) -> None:
    backends = healthy_backends("postgres", "redis")
    backends[0].healthy = False
    async with gateway_client(backends=backends) as client:
        assert (await client.get("/readyz")).status_code == 503
        backends[0].healthy = True
        response = await client.get("/readyz")
    assert response.status_code == 200


async def test_checks_run_concurrently_with_a_timeout_each(
    gateway_client: ClientFactory,
) -> None:
    backends = [
        FakeBackend("postgres", hang=True),
        FakeBackend("mongo", hang=True),
        FakeBackend("kafka", hang=True),
        FakeBackend("redis"),
    ]
    async with gateway_client(backends=backends, readiness_timeout_s=0.3) as client:
        started = time.perf_counter()
        response = await client.get("/readyz")
        elapsed = time.perf_counter() - started
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks == {"postgres": "timeout", "mongo": "timeout", "kafka": "timeout", "redis": "ok"}
    # Three hung checks cost one timeout, not three.
    assert 0.3 <= elapsed < 0.8


async def test_start_up_tolerates_a_backend_that_is_down(gateway_client: ClientFactory) -> None:
    backends = healthy_backends("postgres", "redis")
    backends[1].fail_open = True
    backends[1].healthy = False
    async with gateway_client(backends=backends) as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503
    assert [b.opened for b in backends] == [1, 1]
    assert [b.closed for b in backends] == [1, 1]


def test_backend_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="redis"):
        BackendSet([FakeBackend("redis"), FakeBackend("postgres"), FakeBackend("redis")])


class UnmigratedPostgres(FakeBackend):
    """PostgreSQL answering with its schema behind this build (a fake)."""

    async def check(self) -> None:
        self.checked += 1
        raise SchemaNotMigrated("pending: 0014, 0015")


async def test_readyz_tells_an_unmigrated_schema_and_what_to_run(
    gateway_client: ClientFactory,
) -> None:
    backends = [UnmigratedPostgres("postgres"), *healthy_backends("redis")]
    async with gateway_client(backends=backends) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"postgres": "not_migrated", "redis": "ok"}
    assert body["detail"] == "not ready: postgres not_migrated (run: panic-alert migrate)"
