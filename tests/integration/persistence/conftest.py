"""Fixtures for the persistence adapters, against the real local services.

Each session gets its own scratch PostgreSQL database (created from
template1, which already has PostGIS) and its own MongoDB database, both
dropped at the end, so concurrent test runs and developers do not collide.
Kafka topics are the shared seed topics: tests only look at messages they
produced themselves (by event id), read from offsets committed just before.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pymongo import AsyncMongoClient

from panic_alert.settings import Settings
from persistence.kafka import KafkaPublisher
from persistence.migrations import apply_migrations
from persistence.mongo import EventStore
from persistence.postgres import create_pool


def scratch_name(prefix: str = "pa_persist") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_database(settings: Settings, name: str) -> None:
    admin = await asyncpg.connect(settings.postgres.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def drop_database(settings: Settings, name: str) -> None:
    admin = await asyncpg.connect(settings.postgres.dsn())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def empty_database(settings: Settings) -> AsyncIterator[str]:
    """A fresh, unmigrated database (PostGIS from template1); dropped afterwards."""
    name = scratch_name()
    await create_database(settings, name)
    try:
        yield name
    finally:
        await drop_database(settings, name)


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[str]:
    """The session's migrated scratch database."""
    name = scratch_name()
    await create_database(settings, name)
    try:
        yield name
    finally:
        await drop_database(settings, name)


@pytest.fixture(scope="session")
async def pool(settings: Settings, database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.postgres, database=database)
    await apply_migrations(pool)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def event_store(settings: Settings) -> AsyncIterator[EventStore]:
    name = scratch_name()
    store = EventStore(settings.mongo, database=name)
    await store.ensure_indexes()
    try:
        yield store
    finally:
        await store.close()
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.uri())
        try:
            await client.drop_database(name)
        finally:
            await client.close()


@pytest.fixture(scope="session")
async def publisher(settings: Settings) -> AsyncIterator[KafkaPublisher]:
    publisher = KafkaPublisher(settings.kafka)
    await publisher.start()
    try:
        yield publisher
    finally:
        await publisher.stop()
