"""Schemathesis over the OpenAPI document of a live ``panic-alert serve``.

The server runs as a subprocess (embedded Ray, shard actors, relay) on this
module's own migrated scratch database. For every operation the document
describes, Hypothesis generates a bounded number of requests, valid and
invalid, and each response must be no 5xx and must match the document
(status code, content type, headers, body schema).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.settings import Settings
from gateway.auth.principal import Role
from persistence.drivers.postgres import create_pool
from tests.integration.api.accounts import Account, make_account
from tests.local import cli_env, free_port, serve_process
from tests.scratch import create_database, drop_database, migrate, on_database, scratch_name

pytestmark = pytest.mark.integration

# tus chunks (``PATCH /media/uploads/{id}``) are raw bytes of their own media type.
schemathesis.openapi.media_type("application/offset+octet-stream", st.binary(max_size=4096))

#: Requests generated per operation: bounded so the suite stays fast.
EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    accounts: dict[Role, Account]

    def headers_for(self, path: str) -> dict[str, str]:
        """Admin routes get an admin token (zones too: their writes are admin-only,
        so every generated body reaches validation and the database), everything
        else a user's."""
        admin = path.endswith(("/assign", "/notifications")) or path.startswith(
            ("/geofencing/zones", "/admin/", "/analytics/")
        )
        role = Role.ADMIN if admin else Role.USER
        return self.accounts[role].headers


async def _prepare(settings: Settings, database: str) -> dict[Role, Account]:
    await create_database(settings, database)
    await migrate(settings, database)
    pool = await create_pool(settings.postgres, database=database)
    try:
        on_db = on_database(settings, database)
        return {role: await make_account(pool, on_db, role) for role in Role}
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def live_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    database = scratch_name("pa_openapi")
    accounts = asyncio.run(_prepare(settings, database))
    port, dashboard = free_port(), free_port()
    env = cli_env(
        PANIC_POSTGRES__DATABASE=database,
        PANIC_HTTP__PORT=str(port),
        PANIC_RAY__DASHBOARD_PORT=str(dashboard),
        PANIC_RAY__NUM_CPUS="1",
        PANIC_RAY__SHARDS="1",
    )
    log_path = tmp_path_factory.mktemp("openapi") / "serve.log"
    try:
        with serve_process(env, log_path) as base_url:
            yield LiveServer(base_url, accounts)
    finally:
        asyncio.run(drop_database(settings, database))


def test_every_operation_answers_per_the_document(live_server: LiveServer) -> None:
    # Driven through the schema's operations directly (one Hypothesis run per
    # operation) rather than schemathesis' pytest plugin, which does not run
    # on this pytest version.
    schema = schemathesis.openapi.from_url(f"{live_server.base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the document lists no operation"
    calls: dict[str, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            response = case.call(
                base_url=live_server.base_url,
                headers=live_server.headers_for(case.path),
                timeout=30,
            )
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            case.validate_response(response, checks=CHECKS)

        exercise()
    # Every operation was really exercised (not skipped by an empty strategy).
    assert set(calls) == {operation.label for operation in operations}
