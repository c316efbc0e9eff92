"""Emergency contacts (``emergency_contacts``) of one user.

Every function is scoped by the owner's id: a contact id of another user is
indistinguishable from one that does not exist (None / False), which the
gateway answers 404 without revealing existence.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import asyncpg

from persistence.drivers import postgres
from persistence.errors import Conflict

log = logging.getLogger(__name__)


class TooManyContacts(Conflict):
    """The user already has the most contacts allowed. Not retriable."""

    def __init__(self, limit: int) -> None:
        self.public_detail = f"At most {limit} emergency contacts per user."
        super().__init__(self.public_detail)


@dataclass(frozen=True, slots=True)
class ContactFields:
    name: str
    phone: str | None
    email: str | None
    relationship: str | None
    notify_via: tuple[str, ...]


class ContactValues(Protocol):
    """What a write reads of its fields (``ContactFields`` or the gateway's own)."""

    @property
    def name(self) -> str: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def relationship(self) -> str | None: ...
    @property
    def notify_via(self) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class Contact:
    id: UUID
    name: str
    phone: str | None
    email: str | None
    relationship: str | None
    notify_via: tuple[str, ...]


_COLUMNS = "id, name, phone, email, relationship, notify_via"


def _contact(row: asyncpg.Record) -> Contact:
    return Contact(
        id=row["id"],
        name=row["name"],
        phone=row["phone"],
        email=row["email"],
        relationship=row["relationship"],
        notify_via=tuple(row["notify_via"]),
    )


async def list_contacts(pool: asyncpg.Pool, user_id: UUID) -> list[Contact]:
    """The user's contacts, oldest first."""
    with postgres.EDGE:
        rows: Sequence[asyncpg.Record] = await pool.fetch(
            f"SELECT {_COLUMNS} FROM emergency_contacts "  # noqa: S608
            "WHERE user_id = $1 ORDER BY created_at, id",
            user_id,
        )
    return [_contact(row) for row in rows]


async def get_contact(pool: asyncpg.Pool, user_id: UUID, contact_id: UUID) -> Contact | None:
    with postgres.EDGE:
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM emergency_contacts "  # noqa: S608
            "WHERE id = $1 AND user_id = $2",
            contact_id,
            user_id,
        )
    return None if row is None else _contact(row)


async def create_contact(
    pool: asyncpg.Pool, user_id: UUID, fields: ContactValues, *, limit: int
) -> Contact:
    """Add a contact; :class:`TooManyContacts` if the user already has ``limit``.

    The user's row is locked while counting, so concurrent creations cannot
    overshoot the limit. Not idempotent.
    """
    with postgres.EDGE:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
            count = await conn.fetchval(
                "SELECT count(*) FROM emergency_contacts WHERE user_id = $1", user_id
            )
            if int(count) >= limit:
                raise TooManyContacts(limit)
            row = await conn.fetchrow(
                "INSERT INTO emergency_contacts "
                "(user_id, name, phone, email, relationship, notify_via) "
                "VALUES ($1, $2, $3, $4, $5, $6) "
                "RETURNING id, name, phone, email, relationship, notify_via",
                user_id,
                fields.name,
                fields.phone,
                fields.email,
                fields.relationship,
                list(fields.notify_via),
            )
    assert row is not None
    return _contact(row)


async def replace_contact(
    pool: asyncpg.Pool, user_id: UUID, contact_id: UUID, fields: ContactValues
) -> Contact | None:
    """Replace every field of one of the user's contacts; None if not theirs. Idempotent."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            "UPDATE emergency_contacts SET name = $3, phone = $4, email = $5, "
            "relationship = $6, notify_via = $7 "
            "WHERE id = $1 AND user_id = $2 "
            "RETURNING id, name, phone, email, relationship, notify_via",
            contact_id,
            user_id,
            fields.name,
            fields.phone,
            fields.email,
            fields.relationship,
            list(fields.notify_via),
        )
    return None if row is None else _contact(row)


async def delete_contact(pool: asyncpg.Pool, user_id: UUID, contact_id: UUID) -> bool:
    """Delete one of the user's contacts; False if there was none of theirs."""
    with postgres.EDGE:
        status = await pool.execute(
            "DELETE FROM emergency_contacts WHERE id = $1 AND user_id = $2", contact_id, user_id
        )
    return bool(status == "DELETE 1")


class PostgresContacts:
    """``gateway.ports.Contacts`` on one pool."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def list_contacts(self, user_id: UUID) -> list[Contact]:
        return await list_contacts(self._pool, user_id)

    async def get_contact(self, user_id: UUID, contact_id: UUID) -> Contact | None:
        return await get_contact(self._pool, user_id, contact_id)

    async def create_contact(self, user_id: UUID, fields: ContactValues, *, limit: int) -> Contact:
        return await create_contact(self._pool, user_id, fields, limit=limit)

    async def replace_contact(
        self, user_id: UUID, contact_id: UUID, fields: ContactValues
    ) -> Contact | None:
        return await replace_contact(self._pool, user_id, contact_id, fields)

    async def delete_contact(self, user_id: UUID, contact_id: UUID) -> bool:
        return await delete_contact(self._pool, user_id, contact_id)
