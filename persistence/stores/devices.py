"""Push registrations (``user_devices``) of every account, and the VAPID key.

Implements ``gateway.ports.Devices`` and ``gateway.ports.VapidKeys`` (the
registration routes) and ``notify.ports.WebDevices`` (the web push worker).
Agents are users rows, so one table holds both (migration 0013).

**Registration** is idempotent: the same token for the same account is the
same row, its ``last_seen_at`` bumped. A token registered under another
account moves (the old row is deleted in the same transaction): a device
signed in as someone else must not get the first account's pushes. The
per-account cap evicts the rows seen least recently, under a transaction
advisory lock on the account, so racing registrations never leave more.

**The VAPID key** lives in ``system_config`` under ``webpush.vapid``
(``{"private_key": "<base64url>"}``) unless the settings give one: the first
process that needs it generates it, ``INSERT … ON CONFLICT DO NOTHING``
makes every racer read the same one, and restarts keep it (and with it
every browser's subscription) valid. Never logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from notify import vapid
from notify.ports import WebDevice
from persistence.drivers import postgres

VAPID_CONFIG_KEY: Final = "webpush.vapid"


@dataclass(frozen=True, slots=True)
class Device:
    id: UUID
    platform: str
    created_at: datetime
    last_seen_at: datetime


def _device(row: asyncpg.Record) -> Device:
    return Device(row["id"], row["platform"], row["created_at"], row["last_seen_at"])


_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1::text, 19))"

_MOVE = """
DELETE FROM user_devices
 WHERE md5(push_token) = md5($2) AND push_token = $2 AND user_id <> $1
"""

_UPSERT = """
INSERT INTO user_devices (user_id, platform, push_token)
VALUES ($1, $2, $3)
ON CONFLICT ON CONSTRAINT user_devices_user_token
DO UPDATE SET last_seen_at = now(), platform = EXCLUDED.platform
RETURNING id, platform, created_at, last_seen_at, (xmax = 0) AS created
"""

_EVICT = """
DELETE FROM user_devices
 WHERE id IN (SELECT id FROM user_devices WHERE user_id = $1
               ORDER BY last_seen_at DESC, created_at DESC, id OFFSET $2)
"""

_LIST = """
SELECT id, platform, created_at, last_seen_at FROM user_devices WHERE user_id = $1
 ORDER BY last_seen_at DESC, created_at DESC, id
"""


class PostgresDevices:
    """Devices of one account at a time; a device of another account is not found."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def register(
        self, account_id: UUID, platform: str, push_token: str, *, limit: int
    ) -> tuple[Device, bool]:
        """Register (or see again) a device; whether its row is new. Keeps at most
        ``limit`` devices for the account, evicting those seen least recently."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_LOCK, str(account_id))
                await conn.execute(_MOVE, account_id, push_token)
                row = await conn.fetchrow(_UPSERT, account_id, platform, push_token)
                assert row is not None
                await conn.execute(_EVICT, account_id, limit)
        return _device(row), bool(row["created"])

    async def list_devices(self, account_id: UUID) -> list[Device]:
        with postgres.EDGE:
            rows = await self._pool.fetch(
                _LIST,
                account_id,
            )
        return [_device(r) for r in rows]

    async def delete_device(self, account_id: UUID, device_id: UUID) -> bool:
        with postgres.EDGE:
            done = await self._pool.execute(
                "DELETE FROM user_devices WHERE id = $1 AND user_id = $2", device_id, account_id
            )
        return bool(done.endswith(" 1"))

    async def web_devices(self, account_id: UUID) -> Sequence[WebDevice]:
        with postgres.EDGE:
            rows = await self._pool.fetch(
                "SELECT id, push_token FROM user_devices WHERE user_id = $1 AND platform = 'web' "
                "ORDER BY last_seen_at DESC, id",
                account_id,
            )
        return [WebDevice(r["id"], r["push_token"]) for r in rows]

    async def forget(self, device_id: UUID) -> None:
        with postgres.EDGE:
            await self._pool.execute("DELETE FROM user_devices WHERE id = $1", device_id)


_VAPID_READ = "SELECT value FROM system_config WHERE key = $1"
_VAPID_KEEP = """
INSERT INTO system_config (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING
"""


class PostgresVapidKeys:
    """The VAPID key pair: ``configured`` (the settings') or the one kept in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, configured: str = "") -> None:
        self.pool = pool
        self._private: str | None = configured.strip() or None

    async def private_key(self) -> str:
        if self._private is None:
            self._private = await self._stored()
        return self._private

    async def public_key(self) -> str:
        return vapid.public_key(await self.private_key())

    async def _stored(self) -> str:
        with postgres.EDGE:
            value = await self.pool.fetchval(_VAPID_READ, VAPID_CONFIG_KEY)
            if value is None:
                fresh = {"private_key": vapid.generate_private_key()}
                await self.pool.execute(_VAPID_KEEP, VAPID_CONFIG_KEY, fresh)
                value = await self.pool.fetchval(_VAPID_READ, VAPID_CONFIG_KEY)
        key: str = value["private_key"]
        return key
