"""Fixtures for the persistence adapters, against the real local services.

Each session gets its own scratch PostgreSQL database (created from
template1, which already has PostGIS) and its own MongoDB database, both
dropped at the end, so concurrent test runs and developers do not collide.
Kafka topics are the shared seed topics: tests only look at messages they
produced themselves (by event id), read from offsets committed just before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from config.settings import Settings
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.drivers.postgres import create_pool
from persistence.drivers.redis import create_redis
from persistence.migrations import apply_migrations
from tests.scratch import drop_mongo_database, scratch_database, scratch_name


@pytest.fixture
async def empty_database(settings: Settings) -> AsyncIterator[str]:
    """A fresh, unmigrated database (PostGIS from template1); dropped afterwards."""
    async with scratch_database(settings, "pa_persist", migrated=False) as name:
        yield name


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[str]:
    """The session's scratch database (migrated by the ``pool`` fixture)."""
    async with scratch_database(settings, "pa_persist", migrated=False) as name:
        yield name


@pytest.fixture(scope="session")
async def pool(settings: Settings, database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.postgres, database=database)
    await apply_migrations(pool)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = create_redis(settings.redis)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def event_store(settings: Settings) -> AsyncIterator[EventStore]:
    name = scratch_name("pa_persist")
    store = EventStore(settings.mongo, database=name)
    await store.ensure_indexes()
    try:
        yield store
    finally:
        await store.close()
        await drop_mongo_database(settings, name)


@pytest.fixture(scope="session")
async def publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(settings.kafka)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()
