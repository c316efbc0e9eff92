"""Accounts and tokens made directly (not through /auth), for API tests of
other resources: a row in ``users`` (and ``agents``), an open Redis session
and a signed access token, exactly as a login leaves them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import asyncpg

from config.settings import Settings
from gateway.auth.passwords import PasswordHasher
from gateway.auth.principal import Role
from gateway.auth.tokens import issue_access_token
from persistence.drivers.redis import create_redis, location_key, session_key
from persistence.stores.sessions import RedisSessions


@dataclass(frozen=True)
class Account:
    id: UUID
    role: Role
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_account(pool: asyncpg.Pool, settings: Settings, role: Role) -> Account:
    account_id: UUID = await pool.fetchval(
        "INSERT INTO users (email, password_hash, full_name, role) "
        "VALUES ($1, 'not-a-real-hash', 'API Test', $2) RETURNING id",
        f"{uuid.uuid4().hex}@example.org",
        role.value,
    )
    if role is Role.AGENT:
        # Approved: these stand for vetted responders (a self-registered agent is pending).
        await pool.execute(
            "INSERT INTO agents (id, on_duty, vetting) VALUES ($1, true, 'approved')", account_id
        )
    session_id = uuid.uuid4().hex
    redis = create_redis(settings.redis)
    try:
        await RedisSessions(redis).open_session(
            role.value, account_id, session_id, settings.auth.refresh_ttl_s
        )
    finally:
        await redis.aclose()
    token, _ = issue_access_token(
        settings.auth, account_id=account_id, role=role, session_id=session_id
    )
    return Account(account_id, role, token)


async def set_password(
    pool: asyncpg.Pool, settings: Settings, account: Account, password: str
) -> None:
    """Give an account made here a real password (e.g. to change its PINs)."""
    hashed = PasswordHasher(settings.auth).hash(password)
    status = await pool.execute(
        "UPDATE users SET password_hash = $2 WHERE id = $1", account.id, hashed
    )
    assert status == "UPDATE 1", f"no account {account.id}"


async def approve_agent(pool: asyncpg.Pool, agent_id: UUID | str) -> None:
    """Approve an agent directly (for tests of other things that register one
    through /auth and need it on duty; ``/admin`` has its own tests)."""
    status = await pool.execute(
        "UPDATE agents SET vetting = 'approved', vetted_at = now() WHERE id = $1",
        UUID(str(agent_id)),
    )
    assert status == "UPDATE 1", f"no agent {agent_id}"


async def forget_accounts(settings: Settings, accounts: Sequence[Account]) -> None:
    """Delete the Redis keys ``accounts`` left: their sessions (kept for the
    refresh TTL, 30 days by default) and last locations. Their rows go with
    the scratch database."""
    redis = create_redis(settings.redis)
    try:
        for start in range(0, len(accounts), 1000):
            keys = [
                key(account.role.value, account.id)
                for account in accounts[start : start + 1000]
                for key in (session_key, location_key)
            ]
            await redis.delete(*keys)
    finally:
        await redis.aclose()
