"""One local Ray for the component tests, with shard actors on a scratch database.

Package-scoped: Ray is shut down when the component tests are done, so other
tiers start from a process without Ray (the fault tests bring their own
two-node cluster).

The shards are real Ray actors talking to the real PostgreSQL and Redis; the
database is this session's own (see ``tests/scratch.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import ray

from cluster.client import EntityClient
from config.settings import Settings
from panic_alert import shard_root
from persistence.drivers.postgres import create_pool
from tests.local import init_local_ray
from tests.scratch import on_database, scratch_database

SHARDS = 2
NAMESPACE = "panic-alert-component-tests"


@pytest.fixture(scope="package")
async def component_database(settings: Settings) -> AsyncIterator[str]:
    async with scratch_database(settings, "pa_component") as name:
        yield name


@pytest.fixture(scope="package")
async def component_pool(
    settings: Settings, component_database: str
) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.postgres, database=component_database)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="package")
def local_ray() -> Iterator[None]:
    init_local_ray(NAMESPACE)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="package")
def shards(settings: Settings, local_ray: None, component_database: str) -> list[Any]:
    # Nothing here acknowledges offers as an agent's app would: they stay until their ttl.
    actors = settings.actors.model_copy(update={"offer_ack_timeout_s": 600.0})
    on_db = on_database(settings, component_database).model_copy(update={"actors": actors})
    return shard_root.start(on_db, SHARDS, namespace=NAMESPACE)


@pytest.fixture
def client(shards: list[Any]) -> EntityClient:
    return EntityClient(SHARDS, namespace=NAMESPACE, linger_s=0.002, max_batch=500)
