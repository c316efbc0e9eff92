"""Scratch databases for tests: each test session gets its own, dropped at the end.

Created from template1 (which ``scripts/services`` gives PostGIS), so
concurrent runs and developers never collide on tables or rows.
"""

from __future__ import annotations

import uuid

import asyncpg

from panic_alert.settings import Settings


def scratch_name(prefix: str) -> str:
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
