"""Agent vetting (``agents.vetting``), the admin roster and agent invites, in PostgreSQL.

Implements ``gateway.ports.AgentVetting``. Vetting is ``pending`` (a
self-registered agent), ``approved`` or ``suspended`` (migration 0008).

**Audit trail.** Every decision is written to the outbox on topic
``audit-logs`` in the same transaction as the change it records, so the
event exists if and only if the change committed: ``agent.approved`` and
``agent.suspended`` (only when the status really changes: a repeated
decision changes nothing and writes nothing), ``agent.invite_issued`` and
``agent.invite_used``. The data names the agent, the admin, the reason and
the time, never an invite code.

**Invites.** A code is stored only as its SHA-256 (codes are random and
long, so no salt is needed: nothing to guess from the hash). Redeeming one
locks its row, so two registrations racing with one code cannot both win:
the loser sees it spent and creates nothing.

**Suspension** also revokes the agent's refresh-token families in the same
transaction, so a suspended agent cannot mint new access tokens; closing its
live sessions (Redis) is the caller's next step.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid4

import asyncpg

from actors.effects import EventType, Topic
from actors.roles import Role
from persistence.drivers import postgres
from persistence.drivers.postgres import Binds, Connection
from persistence.outbox.writer import OutboxEvent, insert_statement
from persistence.stores.accounts import CREATE_EDGE, insert_account
from persistence.stores.alerts import Cursor
from persistence.stores.cursors import CursorPage, page_of

log = logging.getLogger(__name__)

PENDING: Final = "pending"
APPROVED: Final = "approved"
SUSPENDED: Final = "suspended"

_DECISION_EVENTS: Final = {
    APPROVED: EventType.AGENT_APPROVED,
    SUSPENDED: EventType.AGENT_SUSPENDED,
}

#: The reason recorded on an agent that registered with an invite.
INVITED_REASON: Final = "registered with an invite"


def hash_code(code: str) -> bytes:
    """What is stored of an invite code (and looked up by)."""
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True, slots=True)
class RosterRecord:
    """One agent as the admin roster shows it."""

    id: UUID
    email: str
    full_name: str
    badge_number: str | None
    vetting: str
    vetting_reason: str | None
    vetted_at: datetime | None
    vetted_by: UUID | None
    #: ``agents.status``: the agent entity's availability, as last committed.
    availability: str
    latitude: float | None
    longitude: float | None
    accuracy_m: float | None
    last_seen_at: datetime | None
    #: The newest open alert assigned to the agent, if any.
    current_alert_id: UUID | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VettingRecord:
    """An agent's vetting after a decision; ``changed`` is False for a repeat."""

    agent_id: UUID
    vetting: str
    reason: str | None
    vetted_at: datetime | None
    vetted_by: UUID | None
    changed: bool


@dataclass(frozen=True, slots=True)
class InviteRecord:
    id: UUID
    expires_at: datetime


def audit_event(
    event_type: EventType, key: UUID, data: Mapping[str, Any], at: datetime
) -> OutboxEvent:
    """One ``audit-logs`` event about ``key`` (an agent or an invite)."""
    return OutboxEvent(
        event_id=uuid4(),
        topic=Topic.AUDIT_LOGS.value,
        key=str(key),
        type=event_type.value,
        subject=str(key),
        data={**data, "at": at.isoformat()},
        time=at,
    )


async def _write_audit(conn: Connection, event: OutboxEvent, source: str) -> None:
    statement, args = insert_statement([event], source=source)
    await conn.execute(statement, *args)


# --- lookups ----------------------------------------------------------------------


async def vettings_of(pool: asyncpg.Pool, agent_ids: Sequence[UUID]) -> list[str | None]:
    """Each agent's vetting now, in the order asked (None: no such agent)."""
    with postgres.EDGE:
        rows = await pool.fetch(
            "SELECT id, vetting FROM agents WHERE id = ANY($1::uuid[])", list(agent_ids)
        )
    found = {row["id"]: str(row["vetting"]) for row in rows}
    return [found.get(agent_id) for agent_id in agent_ids]


_ROSTER = """
SELECT g.id, u.email::text AS email, u.full_name, g.badge_number, g.vetting, g.vetting_reason,
       g.vetted_at, g.vetted_by, g.status, ST_Y(g.last_location::geometry) AS latitude,
       ST_X(g.last_location::geometry) AS longitude, g.last_accuracy_m, g.last_seen_at,
       g.created_at,
       (SELECT a.id FROM alerts a
         WHERE a.assigned_agent_id = g.id AND a.status NOT IN ('resolved', 'cancelled')
         ORDER BY a.created_at DESC, a.id DESC LIMIT 1) AS current_alert_id
  FROM agents g JOIN users u ON u.id = g.id
"""


def _roster_record(row: asyncpg.Record) -> RosterRecord:
    return RosterRecord(
        id=row["id"],
        email=row["email"],
        full_name=row["full_name"],
        badge_number=row["badge_number"],
        vetting=row["vetting"],
        vetting_reason=row["vetting_reason"],
        vetted_at=row["vetted_at"],
        vetted_by=row["vetted_by"],
        availability=row["status"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        accuracy_m=row["last_accuracy_m"],
        last_seen_at=row["last_seen_at"],
        current_alert_id=row["current_alert_id"],
        created_at=row["created_at"],
    )


async def list_agents(
    pool: asyncpg.Pool, *, vetting: str | None, limit: int, after: Cursor | None = None
) -> tuple[tuple[RosterRecord, ...], Cursor | None]:
    """One page of agents, newest first (by ``agents.created_at``, then id)."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    where = ["TRUE"]
    bind = Binds()
    if vetting is not None:
        where.append(f"g.vetting = {bind(vetting)}")
    if after is not None:
        where.append(f"(g.created_at, g.id) < ({bind(after.created_at)}, {bind(after.id)})")
    sql = (
        f"{_ROSTER} WHERE {' AND '.join(where)} "
        f"ORDER BY g.created_at DESC, g.id DESC LIMIT {bind(limit + 1)}"
    )
    with postgres.EDGE:
        rows = await pool.fetch(sql, *bind.values)
    return page_of(rows, limit, _roster_record, lambda last: Cursor(last.created_at, last.id))


# --- decisions --------------------------------------------------------------------


async def set_vetting(
    pool: asyncpg.Pool,
    agent_id: UUID,
    vetting: str,
    *,
    reason: str | None,
    admin_id: UUID,
    at: datetime,
    source: str,
) -> VettingRecord | None:
    """Approve or suspend an agent, with its audit event, in one transaction.

    None for an unknown agent. Idempotent: the same decision again changes
    nothing and writes no event (``changed`` False; the first reason stays).
    Suspending revokes the agent's refresh tokens every time (so a retry
    after a partial failure leaves none behind).
    """
    event_type = _DECISION_EVENTS[vetting]
    with postgres.EDGE:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT vetting, vetting_reason, vetted_at, vetted_by FROM agents "
                "WHERE id = $1 FOR UPDATE",
                agent_id,
            )
            if row is None:
                return None
            if vetting == SUSPENDED:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = $2 "
                    "WHERE user_id = $1 AND revoked_at IS NULL",
                    agent_id,
                    at,
                )
            if row["vetting"] == vetting:
                return VettingRecord(
                    agent_id,
                    vetting,
                    row["vetting_reason"],
                    row["vetted_at"],
                    row["vetted_by"],
                    changed=False,
                )
            await conn.execute(
                "UPDATE agents SET vetting = $2, vetting_reason = $3, vetted_at = $4, "
                "vetted_by = $5 WHERE id = $1",
                agent_id,
                vetting,
                reason,
                at,
                admin_id,
            )
            data = {
                "agent_id": str(agent_id),
                "admin_id": str(admin_id),
                "reason": reason,
                "previous": row["vetting"],
            }
            await _write_audit(conn, audit_event(event_type, agent_id, data, at), source)
    log.info("agent %s: vetting %s -> %s by %s", agent_id, row["vetting"], vetting, admin_id)
    return VettingRecord(agent_id, vetting, reason, at, admin_id, changed=True)


async def issue_invite(
    pool: asyncpg.Pool,
    code: str,
    *,
    admin_id: UUID,
    at: datetime,
    expires_at: datetime,
    source: str,
) -> InviteRecord:
    """Store the invite (its hash) with its audit event. Not idempotent: each call
    is a new code (a repeated code, astronomically unlikely, is a ``Conflict``)."""
    with postgres.EDGE:
        async with pool.acquire() as conn, conn.transaction():
            invite_id = await conn.fetchval(
                "INSERT INTO agent_invites (code_hash, created_by, created_at, expires_at) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                hash_code(code),
                admin_id,
                at,
                expires_at,
            )
            data = {
                "invite_id": str(invite_id),
                "admin_id": str(admin_id),
                "expires_at": expires_at.isoformat(),
            }
            event = audit_event(EventType.AGENT_INVITE_ISSUED, invite_id, data, at)
            await _write_audit(conn, event, source)
    return InviteRecord(invite_id, expires_at)


async def create_invited_agent(
    pool: asyncpg.Pool,
    invite_code: str,
    *,
    email: str,
    password_hash: str,
    full_name: str,
    phone: str | None,
    badge_number: str | None,
    at: datetime,
    source: str,
) -> UUID | None:
    """Create an approved agent and spend ``invite_code``, with the audit event,
    in one transaction; None (and nothing created) if the code is unknown,
    spent or expired at ``at``. A taken email or badge raises the same
    ``Conflict`` as :func:`persistence.stores.accounts.create_account` and
    leaves the code unspent."""
    with CREATE_EDGE:
        async with pool.acquire() as conn, conn.transaction():
            invite = await conn.fetchrow(
                "SELECT id, created_by FROM agent_invites "
                "WHERE code_hash = $1 AND used_at IS NULL AND expires_at > $2 FOR UPDATE",
                hash_code(invite_code),
                at,
            )
            if invite is None:
                return None
            agent_id = await insert_account(
                conn,
                email=email,
                password_hash=password_hash,
                full_name=full_name,
                role=Role.AGENT,
                phone=phone,
                badge_number=badge_number,
                vetting=APPROVED,
            )
            await conn.execute(
                "UPDATE agents SET vetting_reason = $2, vetted_at = $3, vetted_by = $4 "
                "WHERE id = $1",
                agent_id,
                INVITED_REASON,
                at,
                invite["created_by"],
            )
            await conn.execute(
                "UPDATE agent_invites SET used_by = $2, used_at = $3 WHERE id = $1",
                invite["id"],
                agent_id,
                at,
            )
            issuer = invite["created_by"]
            data = {
                "agent_id": str(agent_id),
                "invite_id": str(invite["id"]),
                "admin_id": None if issuer is None else str(issuer),
                "reason": INVITED_REASON,
            }
            event = audit_event(EventType.AGENT_INVITE_USED, agent_id, data, at)
            await _write_audit(conn, event, source)
    log.info("account created: id=%s role=agent (invite %s)", agent_id, invite["id"])
    return agent_id


class PostgresAgentVetting:
    """``gateway.ports.AgentVetting`` on one pool (cheap to make; the root makes one per use)."""

    __slots__ = ("_pool", "_source")

    def __init__(self, pool: asyncpg.Pool, *, source: str) -> None:
        self._pool = pool
        self._source = source

    async def vetting_of(self, agent_id: UUID) -> str | None:
        return (await vettings_of(self._pool, [agent_id]))[0]

    async def vettings_of(self, agent_ids: Sequence[UUID]) -> list[str | None]:
        return await vettings_of(self._pool, agent_ids)

    def check_cursor(self, cursor: str) -> None:
        Cursor.decode(cursor)

    async def list_agents(
        self, *, vetting: str | None, limit: int, cursor: str | None
    ) -> CursorPage[RosterRecord]:
        after = None if cursor is None else Cursor.decode(cursor)
        items, next_cursor = await list_agents(
            self._pool, vetting=vetting, limit=limit, after=after
        )
        return CursorPage(items, None if next_cursor is None else next_cursor.encode())

    async def set_vetting(
        self, agent_id: UUID, vetting: str, *, reason: str | None, admin_id: UUID, at: datetime
    ) -> VettingRecord | None:
        return await set_vetting(
            self._pool,
            agent_id,
            vetting,
            reason=reason,
            admin_id=admin_id,
            at=at,
            source=self._source,
        )

    async def issue_invite(
        self, code: str, *, admin_id: UUID, at: datetime, expires_at: datetime
    ) -> InviteRecord:
        return await issue_invite(
            self._pool, code, admin_id=admin_id, at=at, expires_at=expires_at, source=self._source
        )

    async def create_invited_agent(
        self,
        invite_code: str,
        *,
        email: str,
        password_hash: str,
        full_name: str,
        phone: str | None,
        badge_number: str | None,
        at: datetime,
    ) -> UUID | None:
        return await create_invited_agent(
            self._pool,
            invite_code,
            email=email,
            password_hash=password_hash,
            full_name=full_name,
            phone=phone,
            badge_number=badge_number,
            at=at,
            source=self._source,
        )
