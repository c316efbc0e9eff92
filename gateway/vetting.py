"""Agent vetting rules (pure) and the suspension seam.

Who may go on duty: only an ``approved`` agent may ask for any availability
but ``offline`` (:func:`duty_refusal`). The WebSocket protocol asks the
vetting at the time of each ``agent.status`` frame, so an agent approved
while connected may go available without reconnecting.

Invites: a code is ``secrets.token_urlsafe(INVITE_CODE_BYTES)`` (128 bits),
valid for ``expires_in_s`` seconds (default a week, bounds below).

Suspension: ``POST /admin/agents/{id}/suspend`` commits the decision, then
ends the agent's sessions (``SessionRevoker``) and takes it off its offers
and alerts (``AgentWithdrawal``). :class:`LoggedWithdrawal` is a placeholder
for the latter: it only logs, until the entities can withdraw an agent.
"""

from __future__ import annotations

import logging
from typing import Final
from uuid import UUID

from actors.agent import Availability
from gateway.ports import Vetting

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


class LoggedWithdrawal:
    """``AgentWithdrawal`` that only logs: the seam where a suspended agent's open
    offers are to be withdrawn and an alert it holds returned to dispatching.
    It does neither yet; the composition root swaps in the real one."""

    async def withdraw_agent(self, agent_id: UUID, reason: str) -> None:
        log.warning(
            "agent %s suspended (%s): its offers and alerts are NOT withdrawn yet "
            "(no AgentWithdrawal wired)",
            agent_id,
            reason,
        )
