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
from actors.search import SearchResult


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
class SearchAgain:
    """Timer message: no offer came of the last search in time; search again."""


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
    | SearchResult
    | SearchAgain
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
    """Tunables of the alert machine and of its dispatch.

    ``search_rings``: search radius in H3 grid rings around the alert's region
    cell (2 at resolution 7: about 7 km). ``search_k``: candidates a search
    asks for. ``offer_to``: offers held at once (1: the nearest available
    agent only; K: the K nearest, the first accept wins). ``search_again``:
    while fewer than ``offer_to`` offers are pending, search again this long
    after the last search (it also covers a search lost with a shard).
    """

    offer_ttl: timedelta = timedelta(seconds=30)
    search_rings: int = 2
    search_k: int = 10
    offer_to: int = 1
    search_again: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        if self.search_rings < 0 or self.search_k < 1 or not 1 <= self.offer_to <= self.search_k:
            raise ValueError("need search_rings >= 0 and 1 <= offer_to <= search_k")
        if self.offer_ttl <= timedelta(0) or self.search_again <= timedelta(0):
            raise ValueError("offer_ttl and search_again must be positive")


DEFAULT_POLICY = AlertPolicy()

#: Name of the timer that expires one offer; its payload is ``{"agent_id": str}``.
OFFER_EXPIRED_TIMER = "offer_expired"
#: Name (and alert-local id) of the timer that searches again; empty payload.
SEARCH_AGAIN_TIMER = "search_again"


def offer_timer_id(agent_id: UUID) -> str:
    """The alert-local id of the expiry timer of ``agent_id``'s offer."""
    return f"offer:{agent_id}"


def timer_message(name: str, payload: Mapping[str, Any]) -> AlertMessage:
    """Turn a due timer (as ``ScheduleTimer`` stored it) back into its message."""
    if name == OFFER_EXPIRED_TIMER:
        return OfferExpired(agent_id=UUID(str(payload["agent_id"])))
    if name == SEARCH_AGAIN_TIMER:
        return SearchAgain()
    raise UnknownMessage("alert", f"timer {name!r}")
