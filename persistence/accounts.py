"""Accounts (rows of ``users``) in PostgreSQL: creation for now.

Emails are stored lowercased and stripped; the column is ``citext`` with a
unique constraint, so uniqueness is case-insensitive whatever the caller
sends. Password hashes arrive already hashed (argon2id, by the gateway's
``auth.passwords``); this module never sees a password.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from uuid import UUID

import asyncpg

from persistence.errors import Conflict, PersistenceError
from persistence.postgres import translate_error

log = logging.getLogger(__name__)


class Role(StrEnum):
    USER = "user"
    AGENT = "agent"
    ADMIN = "admin"


class DuplicateEmail(Conflict):
    """An account with this email already exists. Not retriable."""

    #: Safe to show to API clients and CLI users (it names no internals).
    public_detail = "An account with this email already exists."

    def __init__(self) -> None:
        super().__init__(self.public_detail)


def normalize_email(email: str) -> str:
    """The stored form of an email address: stripped and lowercased."""
    return email.strip().lower()


_INSERT = """
INSERT INTO users (email, password_hash, full_name, role)
VALUES ($1, $2, $3, $4)
RETURNING id
"""


async def create_account(
    pool: asyncpg.Pool,
    *,
    email: str,
    password_hash: str,
    full_name: str,
    role: Role | str,
) -> UUID:
    """Insert one account and return its id.

    Not idempotent: a second call with the same email (in any case) raises
    :class:`DuplicateEmail` and changes nothing. Other failures are
    translated to ``persistence.errors`` (``ServiceUnavailable("postgres")``
    when the database cannot be reached: retriable).
    """
    role_value = Role(role).value
    try:
        async with pool.acquire() as conn:
            row_id = await conn.fetchval(
                _INSERT, normalize_email(email), password_hash, full_name.strip(), role_value
            )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "users_email_key":
            raise DuplicateEmail() from exc
        raise translate_error(exc) from exc
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise translate_error(exc) from exc
    if not isinstance(row_id, UUID):
        raise PersistenceError("users insert returned no id")
    log.info("account created: id=%s role=%s", row_id, role_value)
    return row_id
