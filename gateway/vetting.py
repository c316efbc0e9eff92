"""Agent vetting rules (pure) and the suspension seam.

Who may go on duty: only an ``approved`` agent may ask for any availability
but ``offline`` (:func:`duty_refusal`). The WebSocket protocol asks the
vetting at the time of each ``agent.status`` frame, so an agent approved
while connected may go available without reconnecting.

Invites: a code is ``secrets.token_urlsafe(INVITE_CODE_BYTES)`` (128 bits),
valid for ``expires_in_s`` seconds (default a week, bounds below).

Suspension: ``POST /admin/agents/{id}/suspend`` commits the decision, then
ends the agent's sessions (``Sessions.close_all_sessions``: its sockets close with 4401)
and takes it off its offers and alerts (:class:`EntityWithdrawal`): the agent
entity goes offline and unlisted and hands back an alert it holds (``Suspend``
→ the alert's ``Unassign``: dispatching again), and each alert with an offer
pending for it withdraws that offer and moves on. Approving a suspended agent
again lifts the entity's suspension (``Reinstate``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final
from uuid import UUID

from actors.agent import Availability, Reinstate, Suspend
from actors.alert_messages import Unassign, WithdrawOffer
from actors.alert_state import AlertState
from actors.effects import EntityKind
from cluster.client import EntityClient
from gateway.ports import OpenAlerts, Vetting

log = logging.getLogger(__name__)

#: Random bytes in an invite code (``secrets.token_urlsafe``: 22 characters).
INVITE_CODE_BYTES: Final = 16
DEFAULT_INVITE_TTL_S: Final = 7 * 24 * 3600
MIN_INVITE_TTL_S: Final = 60
MAX_INVITE_TTL_S: Final = 30 * 24 * 3600
#: Longest invite code accepted at registration (real ones are 22 characters).
MAX_INVITE_CODE_LENGTH: Final = 128

PENDING_MESSAGE: Final = (
    "this agent account is pending approval by an administrator; it may go on duty once approved"
)
SUSPENDED_MESSAGE: Final = "this agent account is suspended; it may not go on duty"


class ApprovedAgents:
    """The agents this process read as ``approved`` in the last ``ttl_s``.

    A cache of one answer of :class:`~gateway.ports.VettingLookup`, so a fleet
    reconnecting at once does not read every agent's vetting again. Only
    ``approved`` is remembered, and trusting it for a while lets no one on
    duty who should not be: approval never goes back to pending, and a
    suspension is enforced by the agent entity itself (``Suspend``: duty
    refused until ``Reinstate``) and ends the agent's sessions and sockets.
    Per process: each gateway process (``serve``'s ``http.gateways``) keeps its
    own, so a fleet is read at most once per ``ttl_s`` per process.
    """

    def __init__(
        self,
        ttl_s: float = 60.0,
        max_size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max_size = max_size
        self._clock = clock
        self._until: dict[UUID, float] = {}

    def approved(self, agent_id: UUID) -> bool:
        until = self._until.get(agent_id)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._until[agent_id]
        return False

    def remember(self, agent_id: UUID, vetting: str | None) -> None:
        if vetting != Vetting.APPROVED:
            self._until.pop(agent_id, None)
            return
        if len(self._until) >= self._max_size:
            self._until.clear()  # a cheap bound: the next read refills it
        self._until[agent_id] = self._clock() + self._ttl_s


def duty_refusal(vetting: str | None, status: Availability) -> str | None:
    """Why an agent vetted ``vetting`` may not ask for ``status`` (None: it may).

    ``offline`` is always allowed (going off duty is never refused); any other
    status needs an approved agent. An unknown agent (None) is refused too.
    """
    if status is Availability.OFFLINE or vetting == Vetting.APPROVED:
        return None
    if vetting == Vetting.PENDING:
        return PENDING_MESSAGE
    if vetting == Vetting.SUSPENDED:
        return SUSPENDED_MESSAGE
    return "no such agent account"


class EntityWithdrawal:
    """``AgentWithdrawal`` through the entities (see the module docstring)."""

    def __init__(self, entities: EntityClient, open_alerts: OpenAlerts) -> None:
        self._entities = entities
        self._open_alerts = open_alerts

    async def withdraw_agent(self, agent_id: UUID, reason: str) -> None:
        await self._entities.ask(EntityKind.AGENT, str(agent_id), Suspend(reason))
        for snapshot in await self._open_alerts.for_agent(agent_id):
            alert = AlertState.from_snapshot(snapshot)
            if alert.offer_for(agent_id) is not None:
                withdraw = WithdrawOffer(agent_id, "agent suspended")
                await self._entities.ask(EntityKind.ALERT, str(alert.id), withdraw)
            elif alert.assigned_agent_id == agent_id and not alert.is_terminal:
                # The agent entity's own Unassign may still be on its way: a repeat is a no-op.
                back = Unassign(agent_id, f"agent suspended: {reason}")
                await self._entities.ask(EntityKind.ALERT, str(alert.id), back)

    async def reinstate_agent(self, agent_id: UUID) -> None:
        await self._entities.ask(EntityKind.AGENT, str(agent_id), Reinstate())
