"""Scratch data for tests and benchmarks: each run gets its own databases.

PostgreSQL databases are created from template1 (which ``scripts/services``
gives PostGIS) and MongoDB databases on first write; both are dropped at the
end, so concurrent runs and developers never collide on tables or rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg
from pymongo import AsyncMongoClient

from config.settings import Settings
from persistence.drivers.postgres import create_pool
from persistence.migrations import apply_migrations


def scratch_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_database(settings: Settings, name: str) -> None:
    admin = await asyncpg.connect(settings.postgres.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def drop_database(settings: Settings, name: str, *, attempts: int = 20) -> None:
    """Drop database ``name``, ending its connections.

    ``WITH (FORCE)`` refuses when an autovacuum worker is in the database
    (PostgreSQL checks the worker's role, which the project role is not a
    member of); the worker is gone within moments, so the drop is retried.
    """
    admin = await asyncpg.connect(settings.postgres.dsn())
    try:
        for attempt in range(attempts):
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except asyncpg.InsufficientPrivilegeError:
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.25)
    finally:
        await admin.close()


async def migrate(settings: Settings, name: str) -> None:
    """Apply every migration to database ``name``."""
    pool = await create_pool(settings.postgres, database=name)
    try:
        await apply_migrations(pool)
    finally:
        await pool.close()


def on_database(settings: Settings, name: str) -> Settings:
    """``settings`` pointed at database ``name``."""
    return settings.model_copy(
        update={"postgres": settings.postgres.model_copy(update={"database": name})}
    )


@asynccontextmanager
async def scratch_database(
    settings: Settings, prefix: str, *, migrated: bool = True
) -> AsyncIterator[str]:
    """A new database (migrated unless told otherwise), dropped on exit."""
    name = scratch_name(prefix)
    await create_database(settings, name)
    try:
        if migrated:
            await migrate(settings, name)
        yield name
    finally:
        await drop_database(settings, name)


async def drop_mongo_database(settings: Settings, name: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo.uri())
    try:
        await client.drop_database(name)
    finally:
        await client.close()


async def make_user(pool: asyncpg.Pool, *, role: str = "user") -> UUID:
    """A user row (so alerts may reference it); a unique email each time."""
    user_id: UUID = await pool.fetchval(
        "INSERT INTO users (email, password_hash, full_name, role) "
        "VALUES ($1, 'not-a-real-hash', 'Scratch User', $2) RETURNING id",
        f"{uuid.uuid4().hex}@example.org",
        role,
    )
    return user_id
