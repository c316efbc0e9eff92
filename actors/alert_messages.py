"""Messages an alert entity accepts, its policy, and its timers.

Messages are frozen dataclasses, built by the gateway (requests, WebSocket
frames), by the dispatcher (offers) or by the runtime (due timers, through
:func:`timer_message`). They carry who is acting; authentication happened
at the edge, and ``decide`` only checks what that actor may do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeAlias
from uuid import UUID

from actors.alert_state import ActorRole, AlertStatus, AlertType
from actors.errors import UnknownMessage


@dataclass(frozen=True, slots=True)
class CreateAlert:
    """Open a new alert. Idempotent: repeating it with the same content is a no-op."""

    alert_id: UUID
    user_id: UUID
    alert_type: AlertType
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    description: str | None = None
    silent: bool = False


@dataclass(frozen=True, slots=True)
class OfferMade:
    """The dispatcher chose ``agent_id``; offer the alert for ``ttl`` (policy default)."""

    agent_id: UUID
    distance_m: float | None = None
    ttl: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AcceptOffer:
    """The agent takes the alert. The first accept wins."""

    agent_id: UUID


@dataclass(frozen=True, slots=True)
class DeclineOffer:
    agent_id: UUID
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class OfferExpired:
    """Timer message: the offer to ``agent_id`` ran out."""

    agent_id: UUID


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """``PUT /alerts/{id}/status`` and the agent's ``alert.status`` frame."""

    status: AlertStatus
    actor_id: UUID
    actor_role: ActorRole
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Assign:
    """An admin assigns the alert directly, bypassing offers."""

    agent_id: UUID
    by_admin_id: UUID


@dataclass(frozen=True, slots=True)
class Escalate:
    """No responder in time (policy) or an admin's call: widen the search."""

    reason: str
    actor_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Withdraw an open alert: its user or an admin (or the platform)."""

    actor_id: UUID
    note: str | None = None
    actor_role: ActorRole = ActorRole.USER


AlertMessage: TypeAlias = (
    CreateAlert
    | OfferMade
    | AcceptOffer
    | DeclineOffer
    | OfferExpired
    | UpdateStatus
    | Assign
    | Escalate
    | Cancel
)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Tunables of the alert machine. Ranking and escalation policy live elsewhere."""

    offer_ttl: timedelta = timedelta(seconds=30)


DEFAULT_POLICY = AlertPolicy()

#: Name of the timer that expires one offer; its payload is ``{"agent_id": str}``.
OFFER_EXPIRED_TIMER = "offer_expired"


def offer_timer_id(agent_id: UUID) -> str:
    """The alert-local id of the expiry timer of ``agent_id``'s offer."""
    return f"offer:{agent_id}"


def timer_message(name: str, payload: Mapping[str, Any]) -> AlertMessage:
    """Turn a due timer (as ``ScheduleTimer`` stored it) back into its message."""
    if name == OFFER_EXPIRED_TIMER:
        return OfferExpired(agent_id=UUID(str(payload["agent_id"])))
    raise UnknownMessage("alert", f"timer {name!r}")
