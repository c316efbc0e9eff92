"""``/admin``: agent vetting, the agent roster and agent invites (administrators only).

A self-registered agent is ``pending``: it may sign in but not go on duty
(``gateway.vetting``). An administrator approves it, or suspends any agent
(a suspended agent may not sign in; approving it again reinstates it), or
issues a single-use invite code with which an agent registers already
approved. Every decision, and every invite issued or used, is written to the
``audit-logs`` topic in the same transaction as the change
(``persistence.stores.vetting``). Decisions are idempotent: repeating one
changes nothing, records nothing and answers ``changed: false``.

Suspension, once committed, ends every session of the agent and takes it
off its offers and alerts (``Sessions.close_all_sessions`` and the
``AgentWithdrawal`` port). Both are idempotent and run on a repeated suspension too, so a
retry after a failure (a 503 from either) finishes the job.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, StringConstraints

from actors.agent import Availability
from actors.roles import Role
from actors.store_errors import InvalidCursor
from gateway.auth.models import RequestBody, problem_responses
from gateway.deps import (
    AdminPrincipal,
    AgentVettingDep,
    AgentWithdrawalDep,
    FleetDep,
    SessionsDep,
)
from gateway.fields import PLAIN_TEXT, PLAIN_TEXT_RULE
from gateway.fleet import FleetMember, members
from gateway.paging import CursorParam, Limit
from gateway.ports import RosterRow, Vetting, VettingRow
from gateway.problems import ProblemHTTPException
from gateway.vetting import (
    DEFAULT_INVITE_TTL_S,
    INVITE_CODE_BYTES,
    MAX_INVITE_TTL_S,
    MIN_INVITE_TTL_S,
)

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

_AUTH_ERRORS = (401, 403)

Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    PLAIN_TEXT,
]


# --- bodies -----------------------------------------------------------------------


class Position(BaseModel):
    latitude: float
    longitude: float
    accuracy_m: float | None = Field(description="metres, as the fix reported it")


class RosterAgent(BaseModel):
    """One agent as the roster shows it: who, vetting, and the live picture."""

    id: UUID
    email: str
    full_name: str
    badge_number: str | None
    vetting: Vetting
    vetting_reason: str | None = Field(description="why it was last approved or suspended")
    vetted_at: datetime | None = Field(description="when; null if never decided")
    availability: Availability = Field(
        description="the agent's live availability, as its entity last committed it"
    )
    last_position: Position | None = Field(description="its last known position, if any")
    last_seen_at: datetime | None
    current_alert_id: UUID | None = Field(description="the open alert assigned to it, if any")

    @classmethod
    def of(cls, row: RosterRow) -> RosterAgent:
        position = None
        if row.latitude is not None and row.longitude is not None:
            position = Position(
                latitude=row.latitude, longitude=row.longitude, accuracy_m=row.accuracy_m
            )
        return cls(
            id=row.id,
            email=row.email,
            full_name=row.full_name,
            badge_number=row.badge_number,
            vetting=Vetting(row.vetting),
            vetting_reason=row.vetting_reason,
            vetted_at=row.vetted_at,
            availability=Availability(row.availability),
            last_position=position,
            last_seen_at=row.last_seen_at,
            current_alert_id=row.current_alert_id,
        )


class RosterPage(BaseModel):
    items: list[RosterAgent]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")


class ApproveIn(RequestBody):
    reason: Reason | None = Field(
        default=None, description=f"optional note kept with the decision. {PLAIN_TEXT_RULE}"
    )


class SuspendIn(RequestBody):
    reason: Reason = Field(
        description=f"why (required; kept with the decision and audited). {PLAIN_TEXT_RULE}"
    )


class AgentVettingOut(BaseModel):
    """An agent's vetting after a decision."""

    agent_id: UUID
    vetting: Vetting
    vetting_reason: str | None
    vetted_at: datetime | None
    vetted_by: UUID | None = Field(description="the administrator who decided")
    changed: bool = Field(description="false when the agent already had this status (a repeat)")

    @classmethod
    def of(cls, row: VettingRow) -> AgentVettingOut:
        return cls(
            agent_id=row.agent_id,
            vetting=Vetting(row.vetting),
            vetting_reason=row.reason,
            vetted_at=row.vetted_at,
            vetted_by=row.vetted_by,
            changed=row.changed,
        )


class FleetOut(BaseModel):
    items: list[FleetMember] = Field(
        description="every approved agent with a known position, in id order"
    )


class InviteIn(RequestBody):
    expires_in_s: int = Field(
        default=DEFAULT_INVITE_TTL_S,
        ge=MIN_INVITE_TTL_S,
        le=MAX_INVITE_TTL_S,
        description="seconds the code stays valid (default 7 days)",
    )


class InviteOut(BaseModel):
    id: UUID
    code: str = Field(
        description="the single-use code (shown once: only its hash is stored); the agent "
        "passes it as `invite_code` to `POST /auth/register/agent`"
    )
    expires_at: datetime


# --- routes -----------------------------------------------------------------------


def _not_found() -> ProblemHTTPException:
    return ProblemHTTPException(404, detail="no such agent")


@router.get(
    "/agents",
    summary="The agent roster, newest first (admin)",
    responses=problem_responses(*_AUTH_ERRORS, 422),
)
async def list_agents(
    _admin: AdminPrincipal,
    vetting: AgentVettingDep,
    status: Annotated[Vetting | None, Query(description="only agents with this vetting")] = None,
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> RosterPage:
    if cursor is not None:
        try:
            vetting.check_cursor(cursor)
        except InvalidCursor:
            raise RequestValidationError(
                [{"loc": ("query", "cursor"), "msg": "not a cursor this API issued"}]
            ) from None
    page = await vetting.list_agents(vetting=status, limit=limit, cursor=cursor)
    return RosterPage(
        items=[RosterAgent.of(row) for row in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/fleet",
    summary="The whole fleet's live picture, in one answer (admin)",
    responses=problem_responses(*_AUTH_ERRORS),
)
async def get_fleet(_admin: AdminPrincipal, fleet: FleetDep) -> FleetOut:
    """Every approved agent that has a known position: its duty status, position,
    heading and speed (``fleet.agents`` items) and who it is. Not paged (5,000
    agents are one answer). The console loads it on every (re)connect of its
    socket, then applies the ``fleet.agents`` frames. Positions are the
    freshest known (``persistence.stores.fleet``: Redis, else the agent's
    last committed snapshot)."""
    return FleetOut(items=members(await fleet.approved_agents()))


@router.post(
    "/agents/{agent_id}/approve",
    summary="Approve an agent (or reinstate a suspended one); idempotent (admin)",
    responses=problem_responses(*_AUTH_ERRORS, 404, 422),
)
async def approve_agent(
    agent_id: UUID,
    admin: AdminPrincipal,
    vetting: AgentVettingDep,
    withdrawal: AgentWithdrawalDep,
    body: ApproveIn | None = None,
) -> AgentVettingOut:
    decided = await vetting.set_vetting(
        agent_id,
        Vetting.APPROVED,
        reason=None if body is None else body.reason,
        admin_id=admin.id,
        at=datetime.now(UTC),
    )
    if decided is None:
        raise _not_found()
    # Committed: lift an entity's suspension (idempotent; a retry runs it again).
    await withdrawal.reinstate_agent(agent_id)
    return AgentVettingOut.of(decided)


@router.post(
    "/agents/{agent_id}/suspend",
    summary="Suspend an agent: no sign-in, sessions ended, taken off duty; idempotent (admin)",
    responses=problem_responses(*_AUTH_ERRORS, 404, 422),
)
async def suspend_agent(
    agent_id: UUID,
    body: SuspendIn,
    admin: AdminPrincipal,
    vetting: AgentVettingDep,
    sessions: SessionsDep,
    withdrawal: AgentWithdrawalDep,
) -> AgentVettingOut:
    decided = await vetting.set_vetting(
        agent_id, Vetting.SUSPENDED, reason=body.reason, admin_id=admin.id, at=datetime.now(UTC)
    )
    if decided is None:
        raise _not_found()
    # Committed: now the side effects, each idempotent (a retry runs them again).
    closed = await sessions.close_all_sessions(Role.AGENT.value, agent_id)
    await withdrawal.withdraw_agent(agent_id, body.reason)
    log.info("agent %s suspended by %s: %d sessions ended", agent_id, admin.id, closed)
    return AgentVettingOut.of(decided)


@router.post(
    "/agent-invites",
    status_code=201,
    summary="Issue a single-use agent invite code (admin)",
    responses=problem_responses(*_AUTH_ERRORS, 422),
)
async def issue_invite(
    admin: AdminPrincipal, vetting: AgentVettingDep, body: InviteIn | None = None
) -> InviteOut:
    ttl_s = DEFAULT_INVITE_TTL_S if body is None else body.expires_in_s
    code = secrets.token_urlsafe(INVITE_CODE_BYTES)
    now = datetime.now(UTC)
    invite = await vetting.issue_invite(
        code, admin_id=admin.id, at=now, expires_at=now + timedelta(seconds=ttl_s)
    )
    return InviteOut(id=invite.id, code=code, expires_at=invite.expires_at)
