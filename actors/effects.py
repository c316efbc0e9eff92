"""Effects: what a state transition asks its runtime to carry out.

A ``decide`` function never performs I/O; it returns the new state and a
tuple of effects, and the runtime (Ray-hosted, later) carries them out. The
vocabulary here is the whole contract between the pure core and the runtime.

Ordering and atomicity guarantees a runtime must keep:

* Effects come in this order: ``Persist``, ``Emit``\\*, ``CancelTimer``\\* /
  ``ScheduleTimer``\\*, ``Send``\\*, ``Search``\\*, ``Push``\\*, ``Answer``\\*, then
  ``Reply`` or ``Defer``. A ``decide`` returns them already in that order.
* ``Defer`` keeps the asker waiting: its reply is the value of a later
  transition's ``Answer`` with the same token (an entity that asked another
  entity something and hears back by message). Soft: a restart loses the
  waiting askers, who time out as they would on a lost reply.
* ``Persist``, every ``Emit`` and the timer effects of one transition are
  durable together (one PostgreSQL transaction: snapshot row, outbox rows,
  timer rows) *before* any ``Send``, ``Push`` or ``Reply`` is carried out, so
  nobody observes a change that could still be lost.
* ``Emit`` is at-least-once (outbox relay); ``Send`` is at-least-once, and
  every ``decide`` treats a duplicated message as a no-op; ``Push`` is
  at-most-once (clients resync on reconnect); a ``Search`` (``actors.search``)
  is best-effort, its answer comes back as a message, and the entity covers a
  lost one with a durable timer of its own.
* A transition that changed nothing durable returns no ``Persist`` and no
  ``Emit`` (a duplicate message, a stale timer, a region's soft agent index).

Every effect is a frozen dataclass, picklable and comparable. Fields typed
``Mapping`` hold JSON-safe values (str, int, float, bool, None) and must not be
mutated; because of them effects are not hashable.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias, TypeVar
from uuid import UUID

from actors.search import Search


class EntityKind(enum.StrEnum):
    """The kinds of logical actor; with an id they address an entity."""

    ALERT = "alert"
    AGENT = "agent"
    REGION = "region"
    #: A geofenced user or agent (``actors.subject``), addressed as ``role:uuid``.
    SUBJECT = "subject"


#: Alerts and agents are addressed by UUID, regions by their H3 cell index,
#: subjects by ``"user:<uuid>"`` or ``"agent:<uuid>"``.
EntityId: TypeAlias = UUID | str


class Topic(enum.StrEnum):
    """Kafka topics, exactly as API.md (and the seed) name them: the one list
    (``scripts/services up`` creates these, reading this class)."""

    PANIC_ALERTS = "panic-alerts"
    ALERT_RESPONSES = "alert-responses"
    ALERT_STATUS_UPDATES = "alert-status-updates"
    USER_EVENTS = "user-events"
    AGENT_EVENTS = "agent-events"
    LOCATION_UPDATES = "location-updates"
    GEOFENCE_EVENTS = "geofence-events"
    MEDIA_UPLOADS = "media-uploads"
    MEDIA_PROCESSING = "media-processing"
    PUSH_NOTIFICATIONS = "push-notifications"
    SMS_NOTIFICATIONS = "sms-notifications"
    EMAIL_NOTIFICATIONS = "email-notifications"
    SYSTEM_EVENTS = "system-events"
    AUDIT_LOGS = "audit-logs"


class EventType(enum.StrEnum):
    """Dotted CloudEvents ``type`` values the state machines emit (and the
    gateway's location history, ``location.recorded``, and the agent vetting
    audit trail, ``agent.approved`` ...)."""

    LOCATION_RECORDED = "location.recorded"
    ALERT_CREATED = "alert.created"
    ALERT_STATUS_CHANGED = "alert.status_changed"
    ALERT_OFFERED = "alert.offered"
    ALERT_ACCEPTED = "alert.accepted"
    ALERT_DECLINED = "alert.declined"
    ALERT_OFFER_EXPIRED = "alert.offer_expired"
    ALERT_OFFER_RECEIVED = "alert.offer_received"
    ALERT_OFFER_WITHDRAWN = "alert.offer_withdrawn"
    ALERT_UNASSIGNED = "alert.unassigned"
    ALERT_EN_ROUTE_OVERDUE = "alert.en_route_overdue"
    ALERT_ASSIGNED = "alert.assigned"
    ALERT_ESCALATION_STEP = "alert.escalation_step"
    ALERT_DURESS = "alert.duress"
    ALERT_PIN_REFUSED = "alert.pin_refused"
    ALERT_NOTIFIED = "alert.notified"
    AGENT_STATUS_CHANGED = "agent.status_changed"
    #: Audit log (``audit-logs``): an admin's vetting decisions and the invites.
    AGENT_APPROVED = "agent.approved"
    AGENT_SUSPENDED = "agent.suspended"
    AGENT_INVITE_ISSUED = "agent.invite_issued"
    AGENT_INVITE_USED = "agent.invite_used"
    #: Audit log: an administrator's second factor (``gateway.auth.totp``).
    ADMIN_TOTP_ENROLLED = "admin.totp_enrolled"
    ADMIN_TOTP_DISABLED = "admin.totp_disabled"
    ADMIN_TOTP_RECOVERY_CODE_USED = "admin.totp_recovery_code_used"
    #: Audit log: the bulk location feed's keys (``gateway.auth.integration_keys``).
    INTEGRATION_KEY_CREATED = "integration.key_created"
    INTEGRATION_KEY_REVOKED = "integration.key_revoked"
    GEOFENCE_ENTER = "geofence.enter"
    GEOFENCE_EXIT = "geofence.exit"
    GEOFENCE_DWELL = "geofence.dwell"
    CHECKIN_STARTED = "checkin.started"
    CHECKIN_COMPLETED = "checkin.completed"
    CHECKIN_ARRIVED = "checkin.arrived"
    CHECKIN_MISSED = "checkin.missed"
    #: Media evidence (``media-uploads``, ``media-processing``; ``media_events``).
    MEDIA_UPLOADED = "media.uploaded"
    MEDIA_DELETED = "media.deleted"
    MEDIA_HOLD_SET = "media.hold_set"
    MEDIA_HOLD_RELEASED = "media.hold_released"
    MEDIA_PURGED = "media.purged"
    MEDIA_PROCESSING_QUEUED = "media.processing_queued"
    MEDIA_PROCESSING_STARTED = "media.processing_started"
    MEDIA_PROCESSED = "media.processed"
    MEDIA_PROCESSING_FAILED = "media.processing_failed"
    MEDIA_KEY_REWRAPPED = "media.key_rewrapped"


class FrameType(enum.StrEnum):
    """Server → client WebSocket frame types (API.md) the state machines push."""

    ALERT_OFFER = "alert.offer"
    ALERT_ASSIGNED = "alert.assigned"
    ALERT_UPDATED = "alert.updated"
    #: To admin sockets only: a new alert (``AlertState.admin_created_frame``).
    ALERT_CREATED = "alert.created"
    ALERT_LOCATION = "alert.location"
    OFFER_REVOKED = "offer.revoked"
    #: The agent no longer holds the alert (reassigned by an admin, or suspended).
    ASSIGNMENT_REVOKED = "assignment.revoked"
    AGENT_LOCATION = "agent.location"
    #: Evidence was attached to an alert, or processed (its renditions ready).
    MEDIA_ADDED = "media.added"
    ALERT_ESCALATED = "alert.escalated"
    #: A chat message of an alert (its user, its assigned agent, an admin).
    ALERT_MESSAGE = "alert.message"
    #: The assigned agent's estimated arrival, after each of its relayed fixes.
    ALERT_ETA = "alert.eta"
    #: A subject entered a danger zone whose rules tell the subject and/or admins.
    GEOFENCE_ALERT = "geofence.alert"


class AudienceKind(enum.StrEnum):
    USER = "user"
    AGENT = "agent"
    #: Every admin's socket (the dispatcher portal): one audience, id nil.
    ADMINS = "admins"


@dataclass(frozen=True, slots=True)
class Audience:
    """Whose sockets a push goes to: every open socket of one user or one agent."""

    kind: AudienceKind
    id: UUID

    @classmethod
    def user(cls, user_id: UUID) -> Audience:
        return cls(AudienceKind.USER, user_id)

    @classmethod
    def agent(cls, agent_id: UUID) -> Audience:
        return cls(AudienceKind.AGENT, agent_id)

    @classmethod
    def admins(cls) -> Audience:
        return cls(AudienceKind.ADMINS, UUID(int=0))

    def as_tuple(self) -> tuple[str, str]:
        """``("user", "<uuid>")`` or ``("agent", "<uuid>")``."""
        return (self.kind.value, str(self.id))


def push_channel(audience_kind: str, audience_id: str) -> str:
    """``ws:{user|agent|admins}:{id}``: the pub/sub channel of one audience's
    sockets (``persistence.pushes`` publishes on it, ``gateway.ws.hub`` listens)."""
    return f"ws:{audience_kind}:{audience_id}"


#: Every gateway listens here. A shard that (re)started publishes on it, and
#: each gateway announces its agents' live sockets again (``SocketOpened``):
#: the region index of available agents is soft state, lost with a shard.
PRESENCE_CHANNEL = "ws:gateways:presence"


@dataclass(frozen=True, slots=True)
class Persist:
    """Write ``snapshot`` as the entity's state at ``version``.

    Written in the same transaction as the transition's ``Emit``\\s. Versions
    grow by exactly one per persisted transition, so the runtime can write
    with ``WHERE version = version - 1`` and detect a second writer.
    ``coalesce`` is True when the change is only a newer position or liveness
    timestamp and carries no ``Emit``: the runtime may then keep just the
    latest of several such snapshots (debounce), losing nothing that matters.
    """

    kind: EntityKind
    entity_id: EntityId
    version: int
    snapshot: Mapping[str, Any]
    coalesce: bool = False


@dataclass(frozen=True, slots=True)
class Emit:
    """An outbox event, published later to Kafka as a CloudEvent.

    ``key`` is the Kafka message key (the id of the entity the event
    concerns), ``subject`` the CloudEvents ``subject``, ``time`` its ``time``.
    The event ``id`` is assigned by the runtime when it writes the outbox row;
    consumers dedupe by it.
    """

    topic: Topic
    type: EventType
    key: str
    subject: str
    data: Mapping[str, Any]
    time: datetime


@dataclass(frozen=True, slots=True)
class Push:
    """A WebSocket frame for every socket of ``audience``; at-most-once.

    ``undelivered``: a message for the pushing entity itself, delivered when
    no socket of the audience was listening (e.g. an offer that finds no
    socket moves on at once).
    """

    audience: Audience
    frame_type: FrameType
    data: Mapping[str, Any]
    undelivered: object | None = None

    def frame(self) -> dict[str, Any]:
        """The JSON frame as API.md shapes it: ``{"type", "data"}``."""
        return {"type": self.frame_type.value, "data": dict(self.data)}


@dataclass(frozen=True, slots=True)
class ScheduleTimer:
    """Deliver the entity's timer message ``name`` with ``payload`` at ``due_at``.

    ``timer_id`` is unique within the entity: scheduling an id that is already
    armed replaces it. Timers are durable (re-armed after a restart) and may
    fire late or, in a race with a cancel, after being cancelled; each
    ``decide`` treats a stale timer message as a no-op. Each entity module has
    ``timer_message(name, payload)`` to turn a due timer back into a message.
    """

    timer_id: str
    name: str
    due_at: datetime
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Disarm the entity's timer ``timer_id``; a no-op when it is not armed."""

    timer_id: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer for whoever asked (ignored when the message had no asker)."""

    value: object


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver ``message`` to another entity's mailbox, at-least-once."""

    entity_kind: EntityKind
    entity_id: EntityId
    message: object


@dataclass(frozen=True, slots=True)
class Defer:
    """Do not answer the asker now: a later ``Answer(token, ...)`` of this entity will."""

    token: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer every asker deferred under ``token``: with ``value``, or by raising it
    when it is an ``ActorError``."""

    token: str
    value: object


Effect: TypeAlias = (
    Persist | Emit | Push | ScheduleTimer | CancelTimer | Reply | Send | Search | Defer | Answer
)

S = TypeVar("S")


def with_sends(effects: tuple[Effect, ...], sends: tuple[Send, ...]) -> tuple[Effect, ...]:
    """``effects`` with ``sends`` in their place: after the other sends, before any
    ``Search``, ``Push``, ``Answer``, ``Reply`` or ``Defer`` (the order every
    ``decide`` keeps)."""
    if not sends:
        return effects
    later = Search | Push | Answer | Reply | Defer
    at = next((i for i, e in enumerate(effects) if isinstance(e, later)), len(effects))
    return (*effects[:at], *sends, *effects[at:])


def in_order(effects: Iterable[Effect]) -> tuple[Effect, ...]:
    """``effects`` in the order every ``decide`` keeps (stable within a kind):
    ``Persist``, ``Emit``, timers, ``Send``, ``Search``, ``Push``, ``Answer``,
    then ``Reply``/``Defer``. For a decision made of two steps."""
    rank = (Persist, Emit, CancelTimer | ScheduleTimer, Send, Search, Push, Answer)
    return tuple(
        sorted(
            effects,
            key=lambda e: next((i for i, t in enumerate(rank) if isinstance(e, t)), len(rank)),
        )
    )


#: What every ``decide`` returns: the new state and the effects, in order.
Transition: TypeAlias = tuple[S, tuple[Effect, ...]]
