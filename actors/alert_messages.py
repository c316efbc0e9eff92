"""Messages an alert entity accepts, its policy, and its timers.

Messages are frozen dataclasses, built by the gateway (requests, WebSocket
frames), by the dispatcher (offers) or by the runtime (due timers, through
:func:`timer_message`). They carry who is acting; authentication happened
at the edge, and ``decide`` only checks what that actor may do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from uuid import UUID

from actors.alert_state import ActorRole, AlertState, AlertStatus, AlertType
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
    #: The client's ``Idempotency-Key`` and a digest of its request (hex),
    #: committed with the alert: a retry with the key and the same digest is
    #: answered ``Replayed``, one with another digest is refused.
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Replayed:
    """The reply to a ``CreateAlert`` that repeats one committed with its key."""

    state: AlertState


@dataclass(frozen=True, slots=True)
class OfferMade:
    """The dispatcher chose ``agent_id``; offer the alert for ``ttl`` (policy default)."""

    agent_id: UUID
    distance_m: float | None = None
    ttl: timedelta | None = None


@dataclass(frozen=True, slots=True)
class AcceptOffer:
    """The agent takes the alert. The first accept wins.

    ``alert_id`` is set when the agent's entity forwards its agent's accept
    (``actors.agent.TakeOffer``): the outcome, taken or refused, then goes
    back to that entity as ``actors.agent.OfferTaken``.
    """

    agent_id: UUID
    alert_id: UUID | None = None
    #: The agent's last fix, added by its entity when it forwards the accept:
    #: the user is shown the responder coming, with an estimate, at once
    #: (``alert.eta``) instead of at the agent's next move. None: no fix yet.
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None
    heading: float | None = None
    speed_mps: float | None = None
    fix_at: datetime | None = None

    def fix(self) -> AgentLocation | None:
        """The fix it carries, as the alert relays fixes."""
        if self.latitude is None or self.longitude is None or self.fix_at is None:
            return None
        return AgentLocation(
            self.agent_id,
            self.latitude,
            self.longitude,
            self.accuracy_m,
            self.fix_at,
            heading=self.heading,
            speed_mps=self.speed_mps,
        )


@dataclass(frozen=True, slots=True)
class OfferReceived:
    """The offer reached ``agent_id``'s device: its app sent ``offer.received``,
    or the gateway wrote the frame to a socket of an app that does not ack."""

    agent_id: UUID


@dataclass(frozen=True, slots=True)
class OfferUnreachable:
    """The offer's push found no socket of ``agent_id``: move on at once."""

    agent_id: UUID


@dataclass(frozen=True, slots=True)
class OfferAckMissed:
    """Timer message: ``agent_id``'s offer was not acknowledged in time."""

    agent_id: UUID


@dataclass(frozen=True, slots=True)
class WithdrawOffer:
    """Withdraw ``agent_id``'s pending offer (e.g. the agent was suspended)."""

    agent_id: UUID
    reason: str


@dataclass(frozen=True, slots=True)
class Unassign:
    """Take the alert away from ``agent_id`` (suspended) and dispatch it again.

    Ignored unless ``agent_id`` holds the alert and it is not over.
    """

    agent_id: UUID
    reason: str
    actor_id: UUID | None = None


@dataclass(frozen=True, slots=True)
class EnRouteDue:
    """Timer message: ``agent_id`` was assigned the alert and is not on its way yet."""

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
class EscalationDue:
    """Timer message: escalation step ``step`` (0-based) of the alert's type is due."""

    step: int


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


@dataclass(frozen=True, slots=True)
class Duress:
    """The alert's user "cancelled" with the duress PIN: someone may be forcing them.

    The user's app is shown a cancelled alert; in truth the alert goes on,
    escalated, and the user's sockets hear nothing more of it. ``note`` is
    the one the user gave with the cancel (shown back as a real cancel's).
    """

    actor_id: UUID
    note: str | None = None


@dataclass(frozen=True, slots=True)
class PinRefused:
    """The alert's user gave a wrong cancel PIN, or any PIN past the attempt limit.

    Recorded for responders (``pin_refused``, never shown to the user). With
    ``over_limit`` the alert is quietly escalated as possible coercion, once
    (``coerced_at``), and its user is shown it as it was (``actors.alert_view``).
    """

    actor_id: UUID
    over_limit: bool = False


@dataclass(frozen=True, slots=True)
class UserLocation:
    """The alert's user moved; passed on to the assigned agent (``alert.location``)."""

    latitude: float
    longitude: float
    accuracy_m: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentLocation:
    """The assigned agent moved; passed on to the user (``agent.location``), with
    the arrival estimated from it (``alert.eta``; ``heading`` and ``speed_mps``
    are the fix's own, None when not reported)."""

    agent_id: UUID
    latitude: float
    longitude: float
    accuracy_m: float | None
    at: datetime
    heading: float | None = None
    speed_mps: float | None = None


@dataclass(frozen=True, slots=True)
class PostMessage:
    """A chat message (``alert.message``) from the alert's user, its assigned agent
    or an admin. ``message_id`` is chosen by the gateway: a retry with the same id
    changes nothing. ``text`` was checked at the edge (1 to :data:`MAX_MESSAGE_CHARS`,
    trimmed, no control character but line feeds) and is checked again here."""

    message_id: UUID
    sender_id: UUID
    sender_role: ActorRole
    text: str


#: The longest chat message, in characters.
MAX_MESSAGE_CHARS = 500


@dataclass(frozen=True, slots=True)
class NotificationOutcome:
    """A notification about the alert was delivered or dead-lettered (``notify``).

    No address or text: which contact (by id), on which channel, how it went.
    """

    request_id: UUID
    channel: str
    occasion: str
    contact_id: UUID | None
    status: str
    attempts: int


@dataclass(frozen=True, slots=True)
class MediaAdded:
    """Evidence was stored for the alert (``media``); recorded once per file.

    No file name, no location: what it is, who sent it (their role), how big.
    """

    media_id: UUID
    kind: str
    content_type: str
    size: int
    uploader_role: str


@dataclass(frozen=True, slots=True)
class MediaProcessed:
    """Processing of a file ended: its renditions (``done``) or its error (``failed``).
    Recorded once per outcome of a file."""

    media_id: UUID
    status: str
    renditions: tuple[str, ...] = ()
    error: str | None = None


AlertMessage: TypeAlias = (
    CreateAlert
    | SearchResult
    | SearchAgain
    | EscalationDue
    | OfferMade
    | AcceptOffer
    | DeclineOffer
    | OfferExpired
    | OfferReceived
    | OfferUnreachable
    | OfferAckMissed
    | WithdrawOffer
    | Unassign
    | EnRouteDue
    | UpdateStatus
    | Assign
    | Escalate
    | Cancel
    | Duress
    | PinRefused
    | UserLocation
    | AgentLocation
    | PostMessage
    | NotificationOutcome
    | MediaAdded
    | MediaProcessed
)


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One step of an alert type's escalation, ``after`` the alert was created,
    if no agent has accepted by then.

    ``rings``: widen the search to this many H3 grid rings (at resolution 7 a
    ring is about 2.5 km); ``offer_to``: hold this many offers at once (a
    large number offers to everyone found); ``escalate``: mark the alert
    ``escalated`` (the platform's call for human attention). Each step that
    runs searches again at once with the new reach.
    """

    after: timedelta
    rings: int | None = None
    offer_to: int | None = None
    escalate: bool = False

    def __post_init__(self) -> None:
        if self.after <= timedelta(0):
            raise ValueError("an escalation step must come after the alert was created")
        if (self.rings is not None and self.rings < 0) or (
            self.offer_to is not None and self.offer_to < 1
        ):
            raise ValueError("rings must be >= 0 and offer_to >= 1")


#: Every alert type's escalation unless configured otherwise: wider after 30 s,
#: everyone within about 15 km after 60 s, escalated after 90 s.
DEFAULT_ESCALATION: tuple[EscalationStep, ...] = (
    EscalationStep(after=timedelta(seconds=30), rings=4),
    EscalationStep(after=timedelta(seconds=60), rings=6, offer_to=20),
    EscalationStep(after=timedelta(seconds=90), escalate=True),
)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """Tunables of the alert machine and of its dispatch.

    ``search_rings``: search radius in H3 grid rings around the alert's region
    cell (2 at resolution 7: about 7 km); with nobody found there the search
    widens at once, ring by ring, up to ``search_max_rings``. ``search_k``: candidates a search
    asks for. ``offer_to``: offers held at once (1: the nearest available
    agent only; K: the K nearest, the first accept wins). ``search_again``:
    while fewer than ``offer_to`` offers are pending, search again this long
    after the last search (it also covers a search lost with a shard).
    ``escalation``: the steps per alert type (a type not listed gets
    :data:`DEFAULT_ESCALATION`; an empty tuple: no escalation); their
    ``after`` must grow. ``offer_ack_timeout``: an offer the agent's device
    has not acknowledged (``OfferReceived``) by then moves on to the next
    agent. ``en_route``: how long an assigned agent has, per alert type
    (default ``DEFAULT_EN_ROUTE``), to report ``en_route`` before the admins
    are called in (``alert.escalated``, reason ``en_route_overdue``).
    ``eta_speed_mps``: the mode speed arrivals are estimated at (``geo.eta``).
    ``max_messages``: chat messages an alert holds; one more is a ``Conflict``.
    """

    offer_ttl: timedelta = timedelta(seconds=30)
    offer_ack_timeout: timedelta = timedelta(seconds=3)
    en_route: Mapping[AlertType, timedelta] = field(default_factory=dict)
    search_rings: int = 2
    search_max_rings: int = 4
    search_k: int = 10
    offer_to: int = 1
    search_again: timedelta = timedelta(seconds=2)
    escalation: Mapping[AlertType, tuple[EscalationStep, ...]] = field(default_factory=dict)
    eta_speed_mps: float = 8.3
    max_messages: int = 200

    def steps(self, alert_type: AlertType) -> tuple[EscalationStep, ...]:
        return self.escalation.get(alert_type, DEFAULT_ESCALATION)

    def en_route_deadline(self, alert_type: AlertType) -> timedelta:
        return self.en_route.get(alert_type, DEFAULT_EN_ROUTE)

    def __post_init__(self) -> None:
        for steps in self.escalation.values():
            afters = [step.after for step in steps]
            if afters != sorted(set(afters)):
                raise ValueError("escalation steps must come in order of growing 'after'")
        if self.search_rings < 0 or self.search_k < 1 or not 1 <= self.offer_to <= self.search_k:
            raise ValueError("need search_rings >= 0 and 1 <= offer_to <= search_k")
        if self.offer_ttl <= timedelta(0) or self.search_again <= timedelta(0):
            raise ValueError("offer_ttl and search_again must be positive")
        if self.offer_ack_timeout <= timedelta(0) or any(
            d <= timedelta(0) for d in self.en_route.values()
        ):
            raise ValueError("offer_ack_timeout and en_route deadlines must be positive")
        if not self.eta_speed_mps > 0 or self.max_messages < 1:
            raise ValueError("eta_speed_mps must be positive and max_messages at least 1")


#: How long an assigned agent has to report ``en_route`` unless configured per type.
DEFAULT_EN_ROUTE = timedelta(minutes=2)

DEFAULT_POLICY = AlertPolicy()

#: Name of the timer that expires one offer; its payload is ``{"agent_id": str}``.
OFFER_EXPIRED_TIMER = "offer_expired"
#: Name (and alert-local id) of the timer that searches again; empty payload.
SEARCH_AGAIN_TIMER = "search_again"
#: Name (and alert-local id) of the next escalation step's timer; payload ``{"step": int}``.
ESCALATION_TIMER = "escalation"
#: Name of the timer of one offer's acknowledgement; payload ``{"agent_id": str}``.
OFFER_ACK_TIMER = "offer_ack"
#: Name (and alert-local id) of the assigned agent's en-route deadline; payload as above.
EN_ROUTE_TIMER = "en_route"


def offer_ack_timer_id(agent_id: UUID) -> str:
    """The alert-local id of the acknowledgement timer of ``agent_id``'s offer."""
    return f"offer_ack:{agent_id}"


def offer_timer_id(agent_id: UUID) -> str:
    """The alert-local id of the expiry timer of ``agent_id``'s offer."""
    return f"offer:{agent_id}"


def timer_message(name: str, payload: Mapping[str, Any]) -> AlertMessage:
    """Turn a due timer (as ``ScheduleTimer`` stored it) back into its message."""
    if name == OFFER_EXPIRED_TIMER:
        return OfferExpired(agent_id=UUID(str(payload["agent_id"])))
    if name == SEARCH_AGAIN_TIMER:
        return SearchAgain()
    if name == ESCALATION_TIMER:
        return EscalationDue(step=int(payload["step"]))
    if name == OFFER_ACK_TIMER:
        return OfferAckMissed(agent_id=UUID(str(payload["agent_id"])))
    if name == EN_ROUTE_TIMER:
        return EnRouteDue(agent_id=UUID(str(payload["agent_id"])))
    raise UnknownMessage("alert", f"timer {name!r}")
