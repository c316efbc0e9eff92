"""Integration keys (``integration_keys``, migration 0014) in PostgreSQL.

Implements ``gateway.ports.IntegrationKeys``. A key is stored as its id, a
name and the SHA-256 of its secret (``gateway.auth.integration_keys``); the
secret itself never reaches this module.

**Audit trail.** Creating a key and revoking it each write one event to the
outbox on topic ``audit-logs`` in the same transaction as the change, so the
event exists if and only if the change committed:
``integration.key_created`` and ``integration.key_revoked`` (only when the
key really was active: revoking again changes nothing and writes nothing).
The data names the key, its name, the administrator and the time, never a
secret or its digest.

**The cap.** ``add`` counts the active keys and inserts under one
transaction-scoped advisory lock, so racing creations never leave more than
``max_active`` active keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from actors.effects import EventType
from persistence.drivers import postgres
from persistence.drivers.postgres import Connection
from persistence.outbox.writer import insert_statement
from persistence.stores.vetting import audit_event

log = logging.getLogger(__name__)

#: Serialises ``add`` (count, then insert) across every gateway replica.
_LOCK: Final = "SELECT pg_advisory_xact_lock(hashtextextended('integration_keys', 20))"

_INSERT: Final = """
INSERT INTO integration_keys (id, name, secret_sha256, created_by) VALUES ($1, $2, $3, $4)
RETURNING id, name, secret_sha256, created_by, created_at, revoked_at, last_used_at
"""

_LIST: Final = """
SELECT id, name, secret_sha256, created_by, created_at, revoked_at, last_used_at
  FROM integration_keys ORDER BY created_at DESC, id DESC
"""

_FIND: Final = """
SELECT id, name, secret_sha256, created_by, created_at, revoked_at, last_used_at
  FROM integration_keys WHERE id = $1
"""


@dataclass(frozen=True, slots=True)
class IntegrationKeyRecord:
    id: UUID
    name: str
    secret_sha256: bytes
    created_by: UUID
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


async def _audit(
    conn: Connection,
    event_type: EventType,
    key_id: UUID,
    data: dict[str, str],
    at: datetime,
    source: str,
) -> None:
    """One ``audit-logs`` event about the key, in ``conn``'s transaction."""
    statement, args = insert_statement([audit_event(event_type, key_id, data, at)], source=source)
    await conn.execute(statement, *args)


def _record(row: asyncpg.Record) -> IntegrationKeyRecord:
    return IntegrationKeyRecord(
        id=row["id"],
        name=row["name"],
        secret_sha256=bytes(row["secret_sha256"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


class PostgresIntegrationKeys:
    """``gateway.ports.IntegrationKeys`` on one pool (cheap to make; the root makes one per use)."""

    __slots__ = ("_pool", "_source")

    def __init__(self, pool: asyncpg.Pool, *, source: str) -> None:
        self._pool = pool
        self._source = source

    async def add(
        self,
        key_id: UUID,
        name: str,
        secret_sha256: bytes,
        created_by: UUID,
        *,
        max_active: int,
    ) -> IntegrationKeyRecord | None:
        """Insert an active key with its ``integration.key_created`` event; None
        (nothing written) when ``max_active`` keys are active already."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_LOCK)
                active = await conn.fetchval(
                    "SELECT count(*) FROM integration_keys WHERE revoked_at IS NULL"
                )
                if active >= max_active:
                    return None
                row = await conn.fetchrow(
                    _INSERT,
                    key_id,
                    name,
                    secret_sha256,
                    created_by,
                )
                assert row is not None
                key = _record(row)
                data = {"key_id": str(key_id), "name": name, "admin_id": str(created_by)}
                await _audit(
                    conn,
                    EventType.INTEGRATION_KEY_CREATED,
                    key_id,
                    data,
                    key.created_at,
                    self._source,
                )
        log.info("integration key %s created by %s", key_id, created_by)
        return key

    async def list_keys(self) -> list[IntegrationKeyRecord]:
        with postgres.EDGE:
            rows = await self._pool.fetch(_LIST)
        return [_record(r) for r in rows]

    async def revoke(self, key_id: UUID, *, revoked_by: UUID) -> bool:
        """Revoke an active key with its ``integration.key_revoked`` event; False
        (nothing written) for a key already revoked or unknown."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "UPDATE integration_keys SET revoked_at = now() "
                    "WHERE id = $1 AND revoked_at IS NULL RETURNING name, revoked_at",
                    key_id,
                )
                if row is None:
                    return False
                data = {"key_id": str(key_id), "name": row["name"], "admin_id": str(revoked_by)}
                await _audit(
                    conn,
                    EventType.INTEGRATION_KEY_REVOKED,
                    key_id,
                    data,
                    row["revoked_at"],
                    self._source,
                )
        log.info("integration key %s revoked by %s", key_id, revoked_by)
        return True

    async def find(self, key_id: UUID) -> IntegrationKeyRecord | None:
        with postgres.EDGE:
            row = await self._pool.fetchrow(_FIND, key_id)
        return None if row is None else _record(row)

    async def touch(self, key_id: UUID) -> None:
        with postgres.EDGE:
            await self._pool.execute(
                "UPDATE integration_keys SET last_used_at = now() WHERE id = $1", key_id
            )
