"""Accounts (rows of ``users``, and ``agents`` for agents) in PostgreSQL.

Emails are stored lowercased and stripped; the column is ``citext`` with a
unique constraint, so uniqueness is case-insensitive whatever the caller
sends. Password hashes arrive already hashed (argon2id, by the gateway's
``auth.passwords``); this module never sees a password.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from actors.roles import Role
from persistence.drivers import postgres
from persistence.drivers.postgres import Connection
from persistence.errors import Conflict, PersistenceError

log = logging.getLogger(__name__)


class DuplicateEmail(Conflict):
    """An account with this email already exists. Not retriable."""

    #: Safe to show to API clients and CLI users (it names no internals).
    public_detail = "An account with this email already exists."

    def __init__(self) -> None:
        super().__init__(self.public_detail)


def normalize_email(email: str) -> str:
    """The stored form of an email address: stripped and lowercased."""
    return email.strip().lower()


class DuplicateBadge(Conflict):
    """Another agent already carries this badge number. Not retriable."""

    public_detail = "An agent with this badge number already exists."

    def __init__(self) -> None:
        super().__init__(self.public_detail)


@dataclass(frozen=True, slots=True)
class Account:
    """An account as its owner may see it (never the password hash)."""

    id: UUID
    email: str
    full_name: str
    role: Role
    phone: str | None
    created_at: datetime
    #: Whether PINs are set (a PIN is then needed to cancel); never which ones.
    has_cancel_pin: bool = False


@dataclass(frozen=True, slots=True)
class PinHashes:
    """The argon2 hashes of a user's cancel and duress PINs (None: not set)."""

    cancel: str | None
    duress: str | None


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a login checks: the hash, the role, whether the account is disabled,
    and an agent's vetting status (None for other roles)."""

    id: UUID
    role: Role
    password_hash: str
    disabled: bool
    vetting: str | None = None


_INSERT = """
INSERT INTO users (email, password_hash, full_name, role, phone)
VALUES ($1, $2, $3, $4, $5)
RETURNING id
"""

_INSERT_AGENT = "INSERT INTO agents (id, badge_number, vetting) VALUES ($1, $2, $3)"

#: A self-registered agent waits for an admin (migration 0008).
PENDING = "pending"

_ACCOUNT_COLUMNS = (
    "id, email::text AS email, full_name, role, phone, created_at, "
    "(cancel_pin_hash IS NOT NULL OR duress_pin_hash IS NOT NULL) AS has_cancel_pin"
)


def _create_error(exc: BaseException) -> PersistenceError:
    # The two unique constraints a new account can hit say what is taken.
    if isinstance(exc, asyncpg.UniqueViolationError):
        if exc.constraint_name == "users_email_key":
            return DuplicateEmail()
        if exc.constraint_name == "agents_badge_number_key":
            return DuplicateBadge()
    return postgres.translate_error(exc)


#: The edge of every write that creates an account (names what is taken).
CREATE_EDGE = postgres.EDGE.with_translate(_create_error)


async def insert_account(
    conn: Connection,
    *,
    email: str,
    password_hash: str,
    full_name: str,
    role: Role | str,
    phone: str | None = None,
    badge_number: str | None = None,
    vetting: str = PENDING,
) -> UUID:
    """Insert the ``users`` row (and an agent's ``agents`` row, vetted ``vetting``)
    on ``conn``, inside the caller's transaction, under :data:`CREATE_EDGE`."""
    role_value = Role(role).value
    row_id = await conn.fetchval(
        _INSERT, normalize_email(email), password_hash, full_name.strip(), role_value, phone
    )
    if not isinstance(row_id, UUID):
        raise PersistenceError("users insert returned no id")
    if role_value == Role.AGENT.value:
        await conn.execute(_INSERT_AGENT, row_id, badge_number, vetting)
    return row_id


async def create_account(
    pool: asyncpg.Pool,
    *,
    email: str,
    password_hash: str,
    full_name: str,
    role: Role | str,
    phone: str | None = None,
    badge_number: str | None = None,
) -> UUID:
    """Insert one account (and its ``agents`` row for an agent) and return its id.

    One transaction: an agent never exists without its ``agents`` row. An
    agent made here is ``pending`` (an admin approves it, or it registers
    with an invite: ``persistence.stores.vetting``).
    Not idempotent: a second call with the same email (in any case) raises
    :class:`DuplicateEmail` and changes nothing; a taken badge number raises
    :class:`DuplicateBadge`. Other failures are translated to
    ``persistence.errors`` (``ServiceUnavailable("postgres")`` when the
    database cannot be reached: retriable).
    """
    with CREATE_EDGE:
        async with pool.acquire() as conn, conn.transaction():
            row_id = await insert_account(
                conn,
                email=email,
                password_hash=password_hash,
                full_name=full_name,
                role=role,
                phone=phone,
                badge_number=badge_number,
            )
    log.info("account created: id=%s role=%s", row_id, Role(role).value)
    return row_id


def _account(row: asyncpg.Record) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        full_name=row["full_name"],
        role=Role(row["role"]),
        phone=row["phone"],
        created_at=row["created_at"],
        has_cancel_pin=row["has_cancel_pin"],
    )


async def find_credentials(pool: asyncpg.Pool, email: str) -> Credentials | None:
    """The login data of the account with this email (any case), or None."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            "SELECT u.id, u.role, u.password_hash, u.disabled, g.vetting "
            "FROM users u LEFT JOIN agents g ON g.id = u.id WHERE u.email = $1",
            normalize_email(email),
        )
    if row is None:
        return None
    return Credentials(
        row["id"], Role(row["role"]), row["password_hash"], row["disabled"], row["vetting"]
    )


async def replace_password_hash(
    pool: asyncpg.Pool, account_id: UUID, old_hash: str, new_hash: str
) -> bool:
    """Swap in a rehashed password; a no-op (False) if the hash changed meanwhile.

    Compare-and-set, so a concurrent password change is never overwritten by
    a login's rehash. Safe to retry.
    """
    with postgres.EDGE:
        status = await pool.execute(
            "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
            account_id,
            old_hash,
            new_hash,
        )
    return bool(status == "UPDATE 1")


async def change_password(
    pool: asyncpg.Pool, account_id: UUID, old_hash: str, new_hash: str, at: datetime
) -> bool:
    """The account's new password hash (compare-and-set on the old one) and, in
    the same transaction, every refresh-token family of it revoked."""
    with postgres.EDGE:
        async with pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
                account_id,
                old_hash,
                new_hash,
            )
            if status != "UPDATE 1":
                return False
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = $2 "
                "WHERE user_id = $1 AND revoked_at IS NULL",
                account_id,
                at,
            )
    return True


async def get_account(pool: asyncpg.Pool, account_id: UUID) -> Account | None:
    """The account, or None if it does not exist or is disabled."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            f"SELECT {_ACCOUNT_COLUMNS} FROM users WHERE id = $1 AND NOT disabled",  # noqa: S608
            account_id,
        )
    return None if row is None else _account(row)


async def update_profile(
    pool: asyncpg.Pool, account_id: UUID, *, full_name: str, phone: str | None
) -> Account | None:
    """Replace the profile fields; the updated account, or None if it is gone. Idempotent."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            "UPDATE users SET full_name = $2, phone = $3 "  # noqa: S608
            f"WHERE id = $1 AND NOT disabled RETURNING {_ACCOUNT_COLUMNS}",
            account_id,
            full_name.strip(),
            phone,
        )
    return None if row is None else _account(row)


#: Leave a PIN as it is (``set_pins``).
KEEP = "keep"


async def set_pins(
    pool: asyncpg.Pool, account_id: UUID, *, cancel: str | None, duress: str | None
) -> None:
    """Set (a hash), clear (None) or keep (:data:`KEEP`) each PIN hash."""
    with postgres.EDGE:
        await pool.execute(
            "UPDATE users SET "
            "cancel_pin_hash = CASE WHEN $2 THEN cancel_pin_hash ELSE $3 END, "
            "duress_pin_hash = CASE WHEN $4 THEN duress_pin_hash ELSE $5 END "
            "WHERE id = $1 AND NOT disabled",
            account_id,
            cancel == KEEP,
            None if cancel == KEEP else cancel,
            duress == KEEP,
            None if duress == KEEP else duress,
        )


async def pin_hashes(pool: asyncpg.Pool, account_id: UUID) -> PinHashes:
    """The user's PIN hashes (both None for an unknown account)."""
    with postgres.EDGE:
        row = await pool.fetchrow(
            "SELECT cancel_pin_hash, duress_pin_hash FROM users WHERE id = $1", account_id
        )
    if row is None:
        return PinHashes(None, None)
    return PinHashes(row["cancel_pin_hash"], row["duress_pin_hash"])


class PostgresAccounts:
    """``gateway.ports.Accounts`` on one pool (cheap to make; the root makes one per use)."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create_account(
        self,
        *,
        email: str,
        password_hash: str,
        full_name: str,
        role: str,
        phone: str | None = None,
        badge_number: str | None = None,
    ) -> UUID:
        return await create_account(
            self._pool,
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            role=role,
            phone=phone,
            badge_number=badge_number,
        )

    async def find_credentials(self, email: str) -> Credentials | None:
        return await find_credentials(self._pool, email)

    async def replace_password_hash(self, account_id: UUID, old_hash: str, new_hash: str) -> bool:
        return await replace_password_hash(self._pool, account_id, old_hash, new_hash)

    async def change_password(
        self, account_id: UUID, old_hash: str, new_hash: str, at: datetime
    ) -> bool:
        return await change_password(self._pool, account_id, old_hash, new_hash, at)

    async def get_account(self, account_id: UUID) -> Account | None:
        return await get_account(self._pool, account_id)

    async def update_profile(
        self, account_id: UUID, *, full_name: str, phone: str | None
    ) -> Account | None:
        return await update_profile(self._pool, account_id, full_name=full_name, phone=phone)

    async def set_pins(self, account_id: UUID, *, cancel: str | None, duress: str | None) -> None:
        await set_pins(self._pool, account_id, cancel=cancel, duress=duress)

    async def pin_hashes(self, account_id: UUID) -> PinHashes:
        return await pin_hashes(self._pool, account_id)


async def admin_exists(pool: asyncpg.Pool) -> bool:
    """Whether any administrator account exists (``create-admin --if-no-admin``)."""
    found: bool = await pool.fetchval("SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')")
    return found
