"""The state of one alert: its status graph, offers, timeline and snapshot form.

``actors.alert`` holds the messages and ``decide``; this module only the
values they work on, so the graph can be read (and tested) on its own.

Invariants of :class:`AlertState` (kept by ``decide``, checked by the tests):

* ``status`` only ever moves along :data:`ALLOWED_TRANSITIONS`; ``resolved``
  and ``cancelled`` are terminal.
* ``assigned_agent_id`` is set exactly when ``status`` is ``assigned``,
  ``en_route``, ``on_scene`` or ``resolved`` (and kept on ``cancelled`` if it
  was set). It changes only by an admin's reassignment, or goes back to None
  (with the status back to ``dispatching``, or ``escalated`` after a duress
  cancel) when the agent is suspended; either way the timeline says so
  (``unassigned``) and the agent is not offered the alert again.
* ``offered_to`` is empty unless ``status`` is ``dispatching`` or
  ``escalated``; it holds at most one offer per agent, in the order made; an
  agent in ``declined_by`` never has a pending offer.
* ``timeline`` only grows, oldest first; ``version`` grows by one per change;
  ``updated_at`` never decreases.
* ``declined_by`` and ``expired_for`` only grow; neither agent is offered
  the alert again by the automatic dispatch (an admin may still assign).
* ``eta_agent_id``/``eta_recorded_s`` are the agent and ``eta_s`` of the last
  ``eta`` timeline entry (None: none yet); an estimate for another agent than
  ``eta_agent_id`` is the first of its assignment.
* ``search_tag`` numbers the alert's searches for agents (``actors.search``);
  it is dispatch bookkeeping, bumped without a new ``version`` and persisted
  only along with the next change.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from actors import codec
from actors.errors import NotPermitted
from actors.roles import Role
from geo.coarse import COARSE_PRECISION_M, coarse_distance_m, coarse_point


class AlertStatus(enum.StrEnum):
    DISPATCHING = "dispatching"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SCENE = "on_scene"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"


class ResponseStage(enum.StrEnum):
    """The response milestones timed from an alert's creation (``response_times``);
    the ``alerts`` projection keeps each as ``<stage>_s`` (migration 0004)."""

    OFFER = "offer"
    ACCEPT = "accept"
    ON_SCENE = "on_scene"
    RESOLVE = "resolve"

    @property
    def column(self) -> str:
        return f"{self.value}_s"


class AlertType(enum.StrEnum):
    PANIC = "panic"
    MEDICAL = "medical"
    FIRE = "fire"
    SECURITY = "security"
    OTHER = "other"


class ActorRole(enum.StrEnum):
    """Who is behind a message: the three API roles (``actors.roles``), plus the
    platform itself."""

    USER = Role.USER.value
    AGENT = Role.AGENT.value
    ADMIN = Role.ADMIN.value
    SYSTEM = "system"


_S = AlertStatus

#: The status graph of API.md; every pair not listed is an invalid transition.
ALLOWED_TRANSITIONS: Mapping[AlertStatus, frozenset[AlertStatus]] = {
    _S.DISPATCHING: frozenset({_S.ASSIGNED, _S.ESCALATED, _S.CANCELLED}),
    _S.ESCALATED: frozenset({_S.ASSIGNED, _S.CANCELLED}),
    _S.ASSIGNED: frozenset({_S.EN_ROUTE, _S.CANCELLED}),
    _S.EN_ROUTE: frozenset({_S.ON_SCENE, _S.CANCELLED}),
    _S.ON_SCENE: frozenset({_S.RESOLVED, _S.CANCELLED}),
    _S.RESOLVED: frozenset(),
    _S.CANCELLED: frozenset(),
}

TERMINAL: frozenset[AlertStatus] = frozenset({_S.RESOLVED, _S.CANCELLED})

#: Statuses in which offers may be made, held and accepted.
OFFERABLE: frozenset[AlertStatus] = frozenset({_S.DISPATCHING, _S.ESCALATED})


class AlertAccess(enum.StrEnum):
    """How much of an alert a reader is shown (:meth:`AlertState.access`)."""

    #: Nothing: the alert answers as if it did not exist (404).
    NONE = "none"
    #: An agent holding a pending offer: type, distance, a coarse position;
    #: no description, accuracy, notes or user name (:meth:`AlertState.as_offer_holder_sees`).
    OFFER = "offer"
    #: Everything: the alert's user, its assigned agent (now or once), admins.
    FULL = "full"


def can_move(current: AlertStatus, requested: AlertStatus) -> bool:
    """True when ``current → requested`` is an edge of the status graph."""
    return requested in ALLOWED_TRANSITIONS[current]


#: Statuses the assigned agent reports as the response progresses.
PROGRESS: frozenset[AlertStatus] = frozenset({_S.EN_ROUTE, _S.ON_SCENE, _S.RESOLVED})


class TimelineType(enum.StrEnum):
    """The ``type`` of each timeline entry an alert's ``decide`` appends."""

    CREATED = "created"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    OFFER_EXPIRED = "offer_expired"
    ASSIGNED = "assigned"
    STATUS_CHANGED = "status_changed"
    ESCALATED = "escalated"
    CANCELLED = "cancelled"
    ESCALATION_STEP = "escalation_step"
    DURESS = "duress"
    NOTIFIED = "notified"
    OFFER_RECEIVED = "offer_received"
    OFFER_WITHDRAWN = "offer_withdrawn"
    UNASSIGNED = "unassigned"
    EN_ROUTE_OVERDUE = "en_route_overdue"
    #: A wrong cancel PIN (or any PIN past the limit): for responders only.
    PIN_REFUSED = "pin_refused"
    #: Evidence stored, and its processing's outcome: for responders and admins.
    MEDIA_ADDED = "media_added"
    MEDIA_PROCESSED = "media_processed"
    #: A chat message (``alert.message``): data is the message less ``alert_id``.
    MESSAGE = "message"
    #: An arrival estimate worth keeping (``geo.eta.worth_recording``): data is
    #: the ``alert.eta`` frame less ``alert_id``.
    ETA = "eta"


#: Timeline entries that make their ``agent_id`` the assignee.
_ASSIGNING: frozenset[str] = frozenset({TimelineType.ACCEPTED.value, TimelineType.ASSIGNED.value})


#: Timeline data people write (status notes; escalation and decline reasons,
#: an admin's escalation note among them): not for an agent only offered the alert.
_WRITTEN: frozenset[str] = frozenset({"note", "reason", "text"})


def _int_or_none(value: Any) -> int | None:
    return None if value is None else codec.parse_int(value)


def _str_or_none(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"expected a string or null, got {type(value).__name__}")
    return value


@dataclass(frozen=True, slots=True)
class Offer:
    """A pending offer of the alert to one agent, open until ``expires_at``;
    ``received_at``: when the agent's device acknowledged it (None: not yet)."""

    agent_id: UUID
    offered_at: datetime
    expires_at: datetime
    distance_m: float | None = None
    received_at: datetime | None = None

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "agent_id": str(self.agent_id),
            "offered_at": codec.iso(self.offered_at),
            "expires_at": codec.iso(self.expires_at),
            "distance_m": self.distance_m,
            "received_at": codec.iso_or_none(self.received_at),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> Offer:
        return cls(
            agent_id=codec.field(data, "agent_id", codec.parse_uuid),
            offered_at=codec.field(data, "offered_at", codec.parse_dt),
            expires_at=codec.field(data, "expires_at", codec.parse_dt),
            distance_m=codec.field(data, "distance_m", codec.parse_float_or_none),
            received_at=codec.optional_field(data, "received_at", codec.parse_dt_or_none, None),
        )


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of ``GET /alerts/{id}/timeline``: ``{at, type, actor_id, data}``.

    ``data`` holds JSON scalars only (str, int, float, bool, None), so the
    entry round-trips through a snapshot unchanged. ``actor_id`` is None for
    the platform's own steps (offers made, offers expired).
    """

    at: datetime
    type: str
    actor_id: UUID | None
    data: Mapping[str, Any]

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "at": codec.iso(self.at),
            "type": self.type,
            "actor_id": codec.str_or_none(self.actor_id),
            "data": dict(self.data),
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> TimelineEntry:
        return cls(
            at=codec.field(data, "at", codec.parse_dt),
            type=codec.field(data, "type", str),
            actor_id=codec.field(data, "actor_id", codec.parse_uuid_or_none),
            data=codec.field(data, "data", dict),
        )


@dataclass(frozen=True, slots=True)
class AlertState:
    """Everything the alert actor knows about one alert. See the module invariants."""

    id: UUID
    user_id: UUID
    alert_type: AlertType
    status: AlertStatus
    latitude: float
    longitude: float
    accuracy_m: float | None
    description: str | None
    silent: bool
    created_at: datetime
    updated_at: datetime
    assigned_agent_id: UUID | None = None
    offered_to: tuple[Offer, ...] = ()
    declined_by: tuple[UUID, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    version: int = 1
    expired_for: tuple[UUID, ...] = ()
    search_tag: int = 0
    #: Escalation steps run so far, and the reach they set (None: the policy's).
    escalation_step: int = 0
    search_rings: int | None = None
    offer_to: int | None = None
    #: When the user "cancelled" with the duress PIN (None: never).
    duress_at: datetime | None = None
    #: When too many wrong cancel PINs had the alert quietly escalated as
    #: possible coercion (None: never); see ``actors.alert_view``.
    coerced_at: datetime | None = None
    #: The create's ``Idempotency-Key`` and its request digest (``CreateAlert``).
    idempotency_key: str | None = None
    request_hash: str | None = None
    #: The last arrival estimate recorded in the timeline: for which agent, and
    #: its ``eta_s`` (``geo.eta.worth_recording`` decides the next one).
    eta_agent_id: UUID | None = None
    eta_recorded_s: int | None = None

    @property
    def duress(self) -> bool:
        """Under duress for responders: a duress "cancel", or a PIN lock (``coerced_at``)."""
        return self.duress_at is not None or self.coerced_at is not None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    def not_to_offer(self) -> frozenset[UUID]:
        """Agents the dispatch must skip: declined, let an offer expire, or hold one."""
        return frozenset(
            (*self.declined_by, *self.expired_for, *(o.agent_id for o in self.offered_to))
        )

    def offer_for(self, agent_id: UUID) -> Offer | None:
        """The pending offer held by ``agent_id``, if any."""
        for offer in self.offered_to:
            if offer.agent_id == agent_id:
                return offer
        return None

    def was_assigned_to(self, agent_id: UUID) -> bool:
        """True when ``agent_id`` is, or ever was, the alert's assigned agent
        (an ``accepted`` or ``assigned`` timeline entry names it)."""
        if self.assigned_agent_id == agent_id:
            return True
        agent = str(agent_id)
        return any(
            entry.type in _ASSIGNING and entry.data.get("agent_id") == agent
            for entry in self.timeline
        )

    def access(self, viewer_id: UUID, role: ActorRole, now: datetime) -> AlertAccess:
        """How much of the alert ``viewer_id`` (in ``role``) may read at ``now``. Pure.

        Its user and admins (and the platform) read it all; an agent reads it all
        when it is or was the assignee, the coarse offer while it holds a pending
        offer (not past ``expires_at``), and nothing otherwise: an agent that
        declined, let the offer expire, lost it to another, or was never offered
        the alert, is told nothing, not even that it exists.
        """
        if role in (ActorRole.ADMIN, ActorRole.SYSTEM):
            return AlertAccess.FULL
        if role is ActorRole.USER:
            return AlertAccess.FULL if viewer_id == self.user_id else AlertAccess.NONE
        if self.was_assigned_to(viewer_id):
            return AlertAccess.FULL
        offer = self.offer_for(viewer_id)
        if offer is not None and self.status in OFFERABLE and now < offer.expires_at:
            return AlertAccess.OFFER
        return AlertAccess.NONE

    def as_offer_holder_sees(self) -> AlertState:
        """The alert as an agent that was only offered it is shown it: the position
        coarse (``geo.coarse``, the same point every time), no description, no
        accuracy, and no free text in the timeline (:data:`_WRITTEN`)."""
        latitude, longitude = coarse_point(self.latitude, self.longitude)
        timeline = tuple(
            replace(entry, data={k: v for k, v in entry.data.items() if k not in _WRITTEN})
            if _WRITTEN.intersection(entry.data)
            else entry
            for entry in self.timeline
        )
        return replace(
            self,
            latitude=latitude,
            longitude=longitude,
            accuracy_m=None,
            description=None,
            timeline=timeline,
        )

    def view(self) -> dict[str, Any]:
        """The alert as API.md's alert body shows it, JSON-safe."""
        return {
            "id": str(self.id),
            "status": self.status.value,
            "alert_type": self.alert_type.value,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "description": self.description,
            "silent": self.silent,
            "user_id": str(self.user_id),
            "created_at": codec.iso(self.created_at),
            "updated_at": codec.iso(self.updated_at),
            "assigned_agent_id": codec.str_or_none(self.assigned_agent_id),
        }

    @property
    def offered_at(self) -> datetime | None:
        """When the latest offer was made (the last ``offered`` timeline entry);
        None if the alert was never offered. Kept after the offer is answered."""
        for entry in reversed(self.timeline):
            if entry.type == TimelineType.OFFERED:
                return entry.at
        return None

    def admin_view(self) -> dict[str, Any]:
        """The alert as admins (the dispatcher console) are shown it, JSON-safe:
        :meth:`view` plus ``duress`` (the truth, never shown to its user or to
        agents through the API), ``escalation_step`` and ``offered_at``. The one
        builder of the admins' ``alert.created`` and ``alert.updated`` frames."""
        return {
            **self.view(),
            "duress": self.duress,
            "escalation_step": self.escalation_step,
            "offered_at": codec.iso_or_none(self.offered_at),
        }

    def admin_created_frame(self) -> dict[str, Any]:
        """``alert.created`` frame data for admin sockets."""
        return {"alert_id": str(self.id), **self.admin_view()}

    def admin_updated_frame(self, previous: AlertStatus) -> dict[str, Any]:
        """``alert.updated`` frame data for admin sockets: what users and agents are
        sent (:meth:`updated_frame`) and the rest of :meth:`admin_view`.
        ``previous_status`` equals ``status`` when the change was not a move
        (a new offer, an escalation step, a duress mark)."""
        return {**self.admin_view(), **self.updated_frame(previous)}

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-safe dict; ``AlertState.from_snapshot(s.to_snapshot()) == s``."""
        return {
            **codec.header("alert"),
            "id": str(self.id),
            "user_id": str(self.user_id),
            "alert_type": self.alert_type.value,
            "status": self.status.value,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "description": self.description,
            "silent": self.silent,
            "created_at": codec.iso(self.created_at),
            "updated_at": codec.iso(self.updated_at),
            "assigned_agent_id": codec.str_or_none(self.assigned_agent_id),
            "offered_to": [offer.to_snapshot() for offer in self.offered_to],
            "declined_by": [str(agent_id) for agent_id in self.declined_by],
            "timeline": [entry.to_snapshot() for entry in self.timeline],
            "version": self.version,
            "expired_for": [str(agent_id) for agent_id in self.expired_for],
            "search_tag": self.search_tag,
            "escalation_step": self.escalation_step,
            "search_rings": self.search_rings,
            "offer_to": self.offer_to,
            "duress_at": codec.iso_or_none(self.duress_at),
            "coerced_at": codec.iso_or_none(self.coerced_at),
            "idempotency_key": self.idempotency_key,
            "request_hash": self.request_hash,
            "eta_agent_id": codec.str_or_none(self.eta_agent_id),
            "eta_recorded_s": self.eta_recorded_s,
            # Derived from the timeline (not read back): for the projection.
            "response_s": self.response_times(),
            # Derived (not read back): the status its user is shown, for the listing's filter.
            "user_status": self.as_user_sees().status.value,
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> AlertState:
        """Rebuild the state; raises ``InvalidSnapshot`` on anything malformed."""
        codec.check_header(data, "alert")
        f = codec.field
        return cls(
            id=f(data, "id", codec.parse_uuid),
            user_id=f(data, "user_id", codec.parse_uuid),
            alert_type=f(data, "alert_type", AlertType),
            status=f(data, "status", AlertStatus),
            latitude=f(data, "latitude", codec.parse_float),
            longitude=f(data, "longitude", codec.parse_float),
            accuracy_m=f(data, "accuracy_m", codec.parse_float_or_none),
            description=f(data, "description", codec.parse_str_or_none),
            silent=f(data, "silent", codec.parse_bool),
            created_at=f(data, "created_at", codec.parse_dt),
            updated_at=f(data, "updated_at", codec.parse_dt),
            assigned_agent_id=f(data, "assigned_agent_id", codec.parse_uuid_or_none),
            offered_to=f(data, "offered_to", lambda v: tuple(Offer.from_snapshot(o) for o in v)),
            declined_by=f(data, "declined_by", lambda v: tuple(codec.parse_uuid(a) for a in v)),
            timeline=f(
                data, "timeline", lambda v: tuple(TimelineEntry.from_snapshot(e) for e in v)
            ),
            version=f(data, "version", codec.parse_int),
            expired_for=codec.optional_field(
                data, "expired_for", lambda v: tuple(codec.parse_uuid(a) for a in v), ()
            ),
            search_tag=codec.optional_field(data, "search_tag", codec.parse_int, 0),
            escalation_step=codec.optional_field(data, "escalation_step", codec.parse_int, 0),
            search_rings=codec.optional_field(data, "search_rings", _int_or_none, None),
            offer_to=codec.optional_field(data, "offer_to", _int_or_none, None),
            duress_at=codec.optional_field(data, "duress_at", codec.parse_dt_or_none, None),
            coerced_at=codec.optional_field(data, "coerced_at", codec.parse_dt_or_none, None),
            # Added with the idempotency claim in the create commit.
            idempotency_key=codec.optional_field(data, "idempotency_key", _str_or_none, None),
            request_hash=codec.optional_field(data, "request_hash", _str_or_none, None),
            # Added with the arrival estimates (issue 19).
            eta_agent_id=codec.optional_field(data, "eta_agent_id", codec.parse_uuid_or_none, None),
            eta_recorded_s=codec.optional_field(data, "eta_recorded_s", _int_or_none, None),
        )

    def messages(self) -> list[dict[str, Any]]:
        """The chat messages (``message`` timeline entries), oldest first, each as
        ``alert.message`` data: ``{alert_id, message_id, sender_role, sender_id,
        text, at}``. The truth: what its user is shown is ``as_user_sees().messages()``."""
        return [
            {"alert_id": str(self.id), **entry.data}
            for entry in self.timeline
            if entry.type == TimelineType.MESSAGE
        ]

    def message_count(self) -> int:
        return sum(1 for entry in self.timeline if entry.type == TimelineType.MESSAGE)

    def response_times(self) -> dict[str, float]:
        """Seconds from creation to each response milestone reached so far.

        ``offer`` (first offer made), ``accept`` (first agent assigned, by
        accept or by an admin), ``on_scene`` and ``resolve``; a milestone not
        reached is absent.
        """
        found: dict[str, float] = {}
        for entry in self.timeline:
            stage: ResponseStage
            if entry.type == TimelineType.OFFERED:
                stage = ResponseStage.OFFER
            elif entry.type in (TimelineType.ACCEPTED, TimelineType.ASSIGNED):
                stage = ResponseStage.ACCEPT
            elif entry.data.get("status") == AlertStatus.ON_SCENE.value:
                stage = ResponseStage.ON_SCENE
            elif entry.data.get("status") == AlertStatus.RESOLVED.value:
                stage = ResponseStage.RESOLVE
            else:
                continue
            if stage not in found:
                found[stage] = round((entry.at - self.created_at).total_seconds(), 3)
        return found

    def as_user_sees(self) -> AlertState:
        """The alert as its own user is shown it: ``actors.alert_view.user_view``."""
        # alert_view builds on this module's types; imported here to avoid the cycle.
        from actors.alert_view import user_view

        return user_view(self)

    def offer_frame(self, offer: Offer) -> dict[str, Any]:
        """``alert.offer`` frame data for the agent holding ``offer``: what an agent
        that may still decline is told (:meth:`as_offer_holder_sees`), the position
        within ``position_precision_m`` and the distance to the 100 m. The one
        builder of this frame (live pushes and resyncs)."""
        coarse = self.as_offer_holder_sees()
        return {
            "alert_id": str(self.id),
            "alert_type": self.alert_type.value,
            "latitude": coarse.latitude,
            "longitude": coarse.longitude,
            "position_precision_m": COARSE_PRECISION_M,
            "accuracy_m": coarse.accuracy_m,
            "description": coarse.description,
            "silent": self.silent or self.duress,
            "duress": self.duress,
            "distance_m": coarse_distance_m(offer.distance_m),
            "expires_at": codec.iso(offer.expires_at),
        }

    def assigned_frame(self) -> dict[str, Any]:
        """``alert.assigned`` frame data for the agent who just got the alert: the
        exact position and the description (the offer had neither)."""
        return {
            "alert_id": str(self.id),
            "alert_type": self.alert_type.value,
            "status": self.status.value,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "description": self.description,
            "silent": self.silent or self.duress,
            "duress": self.duress,
        }

    def updated_frame(self, previous: AlertStatus) -> dict[str, Any]:
        """``alert.updated`` frame data after a move from ``previous``."""
        return {
            "alert_id": str(self.id),
            "status": self.status.value,
            "previous_status": previous.value,
            "assigned_agent_id": codec.str_or_none(self.assigned_agent_id),
            "updated_at": codec.iso(self.updated_at),
        }


# --- who may do what ------------------------------------------------------------


def check_may_cancel(state: AlertState, actor_id: UUID, role: ActorRole) -> None:
    """Cancelling is for the alert's own user, an admin, or the platform."""
    if role in (ActorRole.ADMIN, ActorRole.SYSTEM):
        return
    if role is ActorRole.USER and actor_id == state.user_id:
        return
    raise NotPermitted(f"only the alert's user or an admin may cancel alert {state.id}")


def check_may_set(state: AlertState, status: AlertStatus, actor_id: UUID, role: ActorRole) -> None:
    """Who may ask for which status; raises :class:`NotPermitted`.

    Checked before the status graph, so a stranger learns nothing about the
    alert's state from the error. Admins and the platform may ask for any
    status (the graph still applies); the assigned agent for the progress
    statuses; the alert's user only for ``cancelled``.
    """
    if status is AlertStatus.CANCELLED:
        check_may_cancel(state, actor_id, role)
        return
    if role in (ActorRole.ADMIN, ActorRole.SYSTEM):
        return
    if status in PROGRESS:
        if role is ActorRole.AGENT and actor_id == state.assigned_agent_id:
            return
        raise NotPermitted(
            f"only the assigned agent or an admin may set alert {state.id} to {status.value!r}"
        )
    raise NotPermitted(f"only an admin may set alert {state.id} to {status.value!r}")
