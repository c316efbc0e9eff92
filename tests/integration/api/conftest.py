"""A live gateway for API tests: real HTTP and WebSocket on loopback.

Package-scoped: one local Ray with the shard actors and one migrated scratch
database for the whole package; ``gateway`` starts the real app (uvicorn, in
this process) on a free port, and ``start_gateway`` starts more replicas
sharing the same Redis, database and shards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import ray
import uvicorn

from cluster.client import EntityClient
from config.settings import Settings
from gateway.app import server_options
from gateway.auth.principal import Role
from panic_alert import shard_root
from panic_alert.gateway_root import build_gateway
from persistence.drivers.postgres import create_pool
from tests.integration.api.accounts import Account, make_account
from tests.integration.receivers import receiver, smtp
from tests.local import free_port, init_local_ray
from tests.scratch import on_database, scratch_database

NAMESPACE = "panic-alert-api-tests"
SHARDS = 2


@dataclass(frozen=True)
class Gateway:
    base_url: str
    ws_url: str
    settings: Settings


#: "security" alerts of this package escalate within seconds (test_alerts.py);
#: the other types keep the default steps, which come too late to matter here.
FAST_ESCALATION = {
    "security": [{"after_s": 1.5, "rings": 6}, {"after_s": 3.0, "escalate": True}],
}
#: An agent assigned an "other" alert must be en route within 1.5 s here
#: (test_responders.py); the other types keep the default deadline.
FAST_EN_ROUTE = {"other": 1.5}


#: A dropped agent goes offline this long after its last socket closed (20 s by default).
DISCONNECT_GRACE_S = 1.5


@pytest.fixture(scope="package")
async def api_settings(settings: Settings) -> AsyncIterator[Settings]:
    """The session's settings on this package's own migrated database."""
    async with scratch_database(settings, "pa_api") as database:
        yield on_database(settings, database)


@pytest.fixture(scope="package")
async def api_pool(api_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(api_settings.postgres)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="package")
def api_entities(api_settings: Settings) -> Iterator[EntityClient]:
    init_local_ray(NAMESPACE)
    try:
        actors = api_settings.actors.model_validate(
            {
                **api_settings.actors.model_dump(),
                "escalation": FAST_ESCALATION,
                "en_route_s": FAST_EN_ROUTE,
                "disconnect_grace_s": DISCONNECT_GRACE_S,
            }
        )
        shard_root.start(
            api_settings.model_copy(update={"actors": actors}), SHARDS, namespace=NAMESPACE
        )
        yield EntityClient(SHARDS, namespace=NAMESPACE)
    finally:
        ray.shutdown()


@asynccontextmanager
async def serving(settings: Settings, entities: EntityClient) -> AsyncIterator[Gateway]:
    """The real gateway app served by uvicorn on a free loopback port."""
    port = free_port()
    app = build_gateway(settings, entities=entities)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_config=None,
            lifespan="on",
            **server_options(settings),  # as `serve` configures it (panic_alert/cli.py)
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if task.done():
                    task.result()  # raises what stopped it
                    raise RuntimeError("gateway exited before it started")
                await asyncio.sleep(0.05)
        yield Gateway(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", settings)
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="package")
async def start_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Callable[[], Awaitable[Gateway]]]:
    """Starts another gateway replica (all stopped at the end of the package)."""
    async with AsyncExitStack() as stack:

        async def start() -> Gateway:
            return await stack.enter_async_context(serving(api_settings, api_entities))

        yield start


@pytest.fixture(scope="package")
async def gateway(start_gateway: Callable[[], Awaitable[Gateway]]) -> Gateway:
    return await start_gateway()


__all__ = ["receiver", "smtp"]  # fixtures from tests/integration/receivers.py


@pytest.fixture
async def sockets() -> AsyncIterator[AsyncExitStack]:
    """Sockets (agents' apps) a test opens, closed at its end."""
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the package's gateway (modules with their own gateway override it)."""
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
async def user(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.USER)


@pytest.fixture
async def admin(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.ADMIN)
