"""Refresh tokens in PostgreSQL (``refresh_tokens``): issue, rotate, revoke.

Only the SHA-256 of a token is stored; the token itself is a random opaque
string that exists only on the client. Tokens form *families*: the first
token of a login starts one, each rotation adds the successor to it. A family
is exactly one login session (the gateway uses the family id as the session
id), so revoking a family and closing that session go together.

Rotation is strict: presenting a token spends it. Presenting a spent token
again means it was copied (or a client raced itself), and the whole family is
revoked (RFC 9700 §4.14.2, refresh token rotation with reuse detection).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from uuid import UUID

import asyncpg

from persistence.drivers import postgres

log = logging.getLogger(__name__)


def hash_token(token: str) -> bytes:
    """The stored form of a refresh token: its SHA-256 digest (32 bytes)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Outcome(Enum):
    ROTATED = "rotated"
    #: The token was already spent: its family is now revoked.
    REUSED = "reused"
    #: Unknown, expired, revoked, or its account is disabled.
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Rotation:
    """What :func:`rotate` did. ``account_id``/``role``/``family_id`` are set
    for ``ROTATED`` and ``REUSED`` (the family to close), None for ``INVALID``."""

    outcome: Outcome
    account_id: UUID | None = None
    role: str | None = None
    family_id: UUID | None = None


_INSERT = """
INSERT INTO refresh_tokens (user_id, family_id, token_hash, issued_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
RETURNING id
"""


def _revoked_in(family: str) -> str:
    """SQL: whether the family ``family`` (a column or a parameter) is revoked.

    A family is revoked when any of its tokens is: revocation is always
    family-wide, but an UPDATE that began before a rotation committed misses
    the successor."""
    return (
        "EXISTS (SELECT 1 FROM refresh_tokens f "  # noqa: S608 (fixed fragments)
        f"WHERE f.family_id = {family} AND f.revoked_at IS NOT NULL)"
    )


_LOCK = f"""
SELECT t.id, t.user_id, t.family_id, t.expires_at, t.spent_at, t.revoked_at,
       u.role, u.disabled, {_revoked_in("t.family_id")} AS family_revoked
FROM refresh_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = $1
FOR UPDATE OF t
"""  # noqa: S608 (fixed fragments)

_FAMILY_REVOKED = f"SELECT {_revoked_in('$1')}"

_REVOKE_FAMILY = """
UPDATE refresh_tokens SET revoked_at = $2
WHERE family_id = $1 AND revoked_at IS NULL
"""


async def issue(
    pool: asyncpg.Pool,
    *,
    account_id: UUID,
    family_id: UUID,
    token_hash: bytes,
    issued_at: datetime,
    expires_at: datetime,
) -> UUID:
    """Store the first token of a family (a login). Not idempotent."""
    with postgres.EDGE:
        row_id = await pool.fetchval(
            _INSERT, account_id, family_id, token_hash, issued_at, expires_at
        )
    assert isinstance(row_id, UUID)
    return row_id


async def rotate(
    pool: asyncpg.Pool,
    *,
    token_hash: bytes,
    new_hash: bytes,
    now: datetime,
    expires_at: datetime,
) -> Rotation:
    """Spend the token ``token_hash`` and store ``new_hash`` as its successor.

    One transaction with the old row locked, so two concurrent presentations of
    one token cannot both succeed: the second sees it spent and revokes the
    family. Not safe to retry blindly (a retry after a lost answer looks like
    reuse), which is the intended, conservative behaviour.
    """
    with postgres.EDGE:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK, token_hash)
            if row is None:
                return Rotation(Outcome.INVALID)
            family_id: UUID = row["family_id"]
            if row["spent_at"] is not None:
                await conn.execute(_REVOKE_FAMILY, family_id, now)
                log.warning(
                    "refresh token reused; family revoked: account=%s family=%s",
                    row["user_id"],
                    family_id,
                )
                return Rotation(Outcome.REUSED, row["user_id"], row["role"], family_id)
            if (
                row["revoked_at"] is not None
                or row["family_revoked"]
                or row["disabled"]
                or row["expires_at"] <= now
            ):
                return Rotation(Outcome.INVALID)
            new_id = await conn.fetchval(
                _INSERT, row["user_id"], family_id, new_hash, now, expires_at
            )
            await conn.execute(
                "UPDATE refresh_tokens SET spent_at = $2, replaced_by = $3 WHERE id = $1",
                row["id"],
                now,
                new_id,
            )
            return Rotation(Outcome.ROTATED, row["user_id"], row["role"], family_id)


async def revoke_family(
    pool: asyncpg.Pool, *, account_id: UUID, family_id: UUID, now: datetime
) -> int:
    """Revoke every live token of one of ``account_id``'s families; how many. Idempotent.

    Scoped by account, so nobody can revoke another account's family.
    """
    with postgres.EDGE:
        status = await pool.execute(
            _REVOKE_FAMILY.replace("revoked_at IS NULL", "revoked_at IS NULL AND user_id = $3"),
            family_id,
            now,
            account_id,
        )
    return int(str(status).rsplit(" ", 1)[-1])


async def family_revoked(pool: asyncpg.Pool, family_id: UUID) -> bool:
    """Whether the family was revoked (any of its tokens was: see :func:`_revoked_in`)."""
    with postgres.EDGE:
        found = await pool.fetchval(_FAMILY_REVOKED, family_id)
    return bool(found)


async def family_of(pool: asyncpg.Pool, token_hash: bytes) -> tuple[UUID, UUID] | None:
    """``(account_id, family_id)`` of a stored token (spent or not), or None."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            "SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1", token_hash
        )
    return None if row is None else (row["user_id"], row["family_id"])


class PostgresRefreshTokens:
    """``gateway.ports.RefreshTokens`` on one pool; tokens are hashed here (:func:`hash_token`)."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def issue(
        self,
        *,
        account_id: UUID,
        family_id: UUID,
        token: str,
        issued_at: datetime,
        expires_at: datetime,
    ) -> None:
        await issue(
            self._pool,
            account_id=account_id,
            family_id=family_id,
            token_hash=hash_token(token),
            issued_at=issued_at,
            expires_at=expires_at,
        )

    async def rotate(
        self, *, token: str, successor: str, now: datetime, expires_at: datetime
    ) -> Rotation:
        return await rotate(
            self._pool,
            token_hash=hash_token(token),
            new_hash=hash_token(successor),
            now=now,
            expires_at=expires_at,
        )

    async def revoke_family(self, *, account_id: UUID, family_id: UUID, now: datetime) -> int:
        return await revoke_family(self._pool, account_id=account_id, family_id=family_id, now=now)

    async def family_revoked(self, family_id: UUID) -> bool:
        return await family_revoked(self._pool, family_id)

    async def family_of(self, token: str) -> tuple[UUID, UUID] | None:
        return await family_of(self._pool, hash_token(token))
