"""Administrators' TOTP enrolments and recovery codes, in PostgreSQL (migration 0011).

Implements ``gateway.ports.AdminTotp``. The store never sees a secret in
clear (the gateway encrypts it, ``gateway.auth.totp``) nor a recovery code
(only its SHA-256).

**Audit trail.** Confirming an enrolment, disabling it and spending a
recovery code each write an ``audit-logs`` event in the transaction of the
change: ``admin.totp_enrolled``, ``admin.totp_disabled``,
``admin.totp_recovery_code_used`` (with how many codes are left), keyed by
the administrator; never a secret or a code.

**Replay.** :meth:`PostgresAdminTotp.accept_step` is one conditional UPDATE
(``last_step < step``), so of two logins racing with one code only one wins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from actors.effects import EventType
from persistence.drivers import postgres
from persistence.drivers.postgres import Connection
from persistence.outbox.writer import OutboxEvent, insert_statement
from persistence.stores.vetting import audit_event

log = logging.getLogger(__name__)


async def _write_audit(conn: Connection, event: OutboxEvent, source: str) -> None:
    statement, args = insert_statement([event], source=source)
    await conn.execute(statement, *args)


@dataclass(frozen=True, slots=True)
class TotpRecord:
    secret_ciphertext: bytes
    confirmed: bool
    recovery_codes_left: int


class PostgresAdminTotp:
    """``gateway.ports.AdminTotp`` on one pool (cheap to make; the root makes one per use)."""

    __slots__ = ("_pool", "_source")

    def __init__(self, pool: asyncpg.Pool, *, source: str) -> None:
        self._pool = pool
        self._source = source

    async def totp_of(self, account_id: UUID) -> TotpRecord | None:
        with postgres.EDGE:
            row = await self._pool.fetchrow(
                "SELECT t.secret_ciphertext, t.confirmed_at IS NOT NULL AS confirmed, "
                "(SELECT count(*) FROM admin_recovery_codes r "
                "  WHERE r.account_id = t.account_id AND r.used_at IS NULL) AS left_ "
                "FROM admin_totp t WHERE t.account_id = $1",
                account_id,
            )
        if row is None:
            return None
        return TotpRecord(bytes(row["secret_ciphertext"]), row["confirmed"], int(row["left_"]))

    async def start_enrolment(self, account_id: UUID, secret_ciphertext: bytes) -> bool:
        with postgres.EDGE:
            stored = await self._pool.fetchval(
                "INSERT INTO admin_totp (account_id, secret_ciphertext) VALUES ($1, $2) "
                "ON CONFLICT (account_id) DO UPDATE "
                "SET secret_ciphertext = EXCLUDED.secret_ciphertext, created_at = now(), "
                "last_step = NULL "
                "WHERE admin_totp.confirmed_at IS NULL RETURNING true",
                account_id,
                secret_ciphertext,
            )
        return bool(stored)

    async def confirm_enrolment(
        self, account_id: UUID, *, step: int, recovery_code_hashes: Sequence[bytes], at: datetime
    ) -> bool:
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                done = await conn.fetchval(
                    "UPDATE admin_totp SET confirmed_at = $2, last_step = $3 "
                    "WHERE account_id = $1 AND confirmed_at IS NULL RETURNING true",
                    account_id,
                    at,
                    step,
                )
                if not done:
                    return False
                await conn.execute(
                    "DELETE FROM admin_recovery_codes WHERE account_id = $1", account_id
                )
                await conn.executemany(
                    "INSERT INTO admin_recovery_codes (account_id, code_hash, created_at) "
                    "VALUES ($1, $2, $3)",
                    [(account_id, code_hash, at) for code_hash in recovery_code_hashes],
                )
                data = {
                    "admin_id": str(account_id),
                    "recovery_codes": len(recovery_code_hashes),
                }
                event = audit_event(EventType.ADMIN_TOTP_ENROLLED, account_id, data, at)
                await _write_audit(conn, event, self._source)
        log.info("admin %s: second factor enrolled", account_id)
        return True

    async def accept_step(self, account_id: UUID, step: int) -> bool:
        with postgres.EDGE:
            accepted = await self._pool.fetchval(
                "UPDATE admin_totp SET last_step = $2 WHERE account_id = $1 "
                "AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2) "
                "RETURNING true",
                account_id,
                step,
            )
        return bool(accepted)

    async def use_recovery_code(self, account_id: UUID, code_hash: bytes, at: datetime) -> bool:
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                spent = await conn.fetchval(
                    "UPDATE admin_recovery_codes r SET used_at = $3 "
                    "FROM admin_totp t WHERE r.account_id = $1 AND r.code_hash = $2 "
                    "AND r.used_at IS NULL AND t.account_id = r.account_id "
                    "AND t.confirmed_at IS NOT NULL RETURNING true",
                    account_id,
                    code_hash,
                    at,
                )
                if not spent:
                    return False
                left = await conn.fetchval(
                    "SELECT count(*) FROM admin_recovery_codes "
                    "WHERE account_id = $1 AND used_at IS NULL",
                    account_id,
                )
                data = {"admin_id": str(account_id), "recovery_codes_left": int(left)}
                event = audit_event(EventType.ADMIN_TOTP_RECOVERY_CODE_USED, account_id, data, at)
                await _write_audit(conn, event, self._source)
        log.info("admin %s: recovery code used (%s left)", account_id, left)
        return True

    async def disable(self, account_id: UUID, *, at: datetime) -> bool:
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                removed = await conn.fetchval(
                    "DELETE FROM admin_totp WHERE account_id = $1 "
                    "RETURNING confirmed_at IS NOT NULL",
                    account_id,
                )
                if removed is None:
                    return False
                await conn.execute(
                    "DELETE FROM admin_recovery_codes WHERE account_id = $1", account_id
                )
                if removed:
                    data = {"admin_id": str(account_id)}
                    event = audit_event(EventType.ADMIN_TOTP_DISABLED, account_id, data, at)
                    await _write_audit(conn, event, self._source)
        log.info("admin %s: second factor disabled", account_id)
        return True
