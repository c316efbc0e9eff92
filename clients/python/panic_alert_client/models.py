"""The API's resources as frozen dataclasses (API.md and the README's additions).

Each model is read by its ``from_json``, which ignores members it does not
know (the API only adds) and keeps the whole object in ``raw`` for callers
that need a newer member. Ids are :class:`~uuid.UUID`, times aware
:class:`~datetime.datetime`; enumerations (statuses, roles, kinds) stay
strings so a value added by a newer server does not break an older client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from panic_alert_client import _json as j
from panic_alert_client.errors import ProtocolError

T = TypeVar("T")

#: Alert types API.md lists (a server may add more).
ALERT_TYPES = ("panic", "medical", "fire", "security", "other")
#: Alert statuses, in the order an alert moves through them.
ALERT_STATUSES = (
    "dispatching",
    "escalated",
    "assigned",
    "en_route",
    "on_scene",
    "resolved",
    "cancelled",
)
TERMINAL_STATUSES = frozenset({"resolved", "cancelled"})
#: An agent's duty statuses (``agent.status``).
AGENT_STATUSES = ("available", "busy", "on_break", "offline")


def _raw() -> Any:
    """The whole JSON object a model was read from (not compared, not shown)."""
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Tokens:
    """A login's pair. ``refresh_token`` is single-use: each refresh spends it."""

    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"  # noqa: S105 - the scheme's name, not a secret

    @classmethod
    def from_json(cls, value: object) -> Tokens:
        data = j.obj(value, "tokens")
        return cls(
            access_token=j.string(data, "access_token"),
            refresh_token=j.string(data, "refresh_token"),
            expires_in=j.opt_int(data, "expires_in") or 0,
            token_type=j.opt_string(data, "token_type") or "bearer",
        )


@dataclass(frozen=True, slots=True)
class Account:
    """An account: the answer of registration, ``GET /auth/me`` and the profile."""

    id: UUID
    email: str
    full_name: str
    role: str
    phone: str | None = None
    created_at: datetime | None = None
    #: Whether the cancel and duress PINs are set (never which).
    has_cancel_pin: bool = False
    #: An agent's vetting (``pending``, ``approved``, ``suspended``) when the answer tells it.
    vetting: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Account:
        data = j.obj(value, "account")
        return cls(
            id=j.uuid(data, "id"),
            email=j.string(data, "email"),
            full_name=j.string(data, "full_name"),
            role=j.string(data, "role"),
            phone=j.opt_string(data, "phone"),
            created_at=j.opt_when(data, "created_at"),
            has_cancel_pin=j.boolean(data, "has_cancel_pin"),
            vetting=j.opt_string(data, "vetting"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Contact:
    """An emergency contact of the user."""

    id: UUID
    name: str
    notify_via: tuple[str, ...]
    phone: str | None = None
    email: str | None = None
    relationship: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Contact:
        data = j.obj(value, "contact")
        return cls(
            id=j.uuid(data, "id"),
            name=j.string(data, "name"),
            notify_via=j.strings(data, "notify_via"),
            phone=j.opt_string(data, "phone"),
            email=j.opt_string(data, "email"),
            relationship=j.opt_string(data, "relationship"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as the caller is shown it.

    An agent holding only an offer sees a coarse position
    (``position_precision_m`` set) and no description; ``duress``,
    ``escalation_step`` and ``offered_at`` are for admins (None otherwise).
    """

    id: UUID
    status: str
    alert_type: str
    latitude: float
    longitude: float
    user_id: UUID
    created_at: datetime
    assigned_agent_id: UUID | None = None
    updated_at: datetime | None = None
    accuracy_m: float | None = None
    description: str | None = None
    silent: bool = False
    position_precision_m: float | None = None
    user_name: str | None = None
    duress: bool | None = None
    escalation_step: int | None = None
    offered_at: datetime | None = None
    raw: Mapping[str, Any] = _raw()

    @property
    def is_open(self) -> bool:
        return self.status not in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, value: object) -> Alert:
        data = j.obj(value, "alert")
        return cls(
            id=j.uuid(data, "id"),
            status=j.string(data, "status"),
            alert_type=j.string(data, "alert_type"),
            latitude=j.number(data, "latitude"),
            longitude=j.number(data, "longitude"),
            user_id=j.uuid(data, "user_id"),
            created_at=j.when(data, "created_at"),
            assigned_agent_id=j.opt_uuid(data, "assigned_agent_id"),
            updated_at=j.opt_when(data, "updated_at"),
            accuracy_m=j.opt_number(data, "accuracy_m"),
            description=j.opt_string(data, "description"),
            silent=j.boolean(data, "silent"),
            position_precision_m=j.opt_number(data, "position_precision_m"),
            user_name=j.opt_string(data, "user_name"),
            duress=j.opt_bool(data, "duress"),
            escalation_step=j.opt_int(data, "escalation_step"),
            offered_at=j.opt_when(data, "offered_at"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """The answer to ``POST /alerts``: the alert, and how the server took the press."""

    alert: Alert
    #: The ``Idempotency-Key`` sent (generated when the caller gave none): retry with it.
    idempotency_key: str
    #: A retry of an earlier press with the same key (``Idempotent-Replayed``).
    replayed: bool = False
    #: The user already had this alert open, so nothing new was raised (``Alert-Already-Open``).
    already_open: bool = False


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One entry of an alert's timeline (``type`` e.g. ``created``, ``offered``, ``assigned``)."""

    at: datetime
    type: str
    actor_id: UUID | None
    data: Mapping[str, Any]

    @classmethod
    def from_json(cls, value: object) -> TimelineItem:
        data = j.obj(value, "timeline item")
        extra = data.get("data")
        return cls(
            at=j.when(data, "at"),
            type=j.string(data, "type"),
            actor_id=j.opt_uuid(data, "actor_id"),
            data=extra if isinstance(extra, Mapping) else {},
        )


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One chat message of an alert (``GET``/``POST /alerts/{id}/messages``, and the
    ``alert.message`` frame's data): ``sender_role`` ``user``, ``agent`` or ``admin``."""

    alert_id: UUID
    message_id: UUID
    sender_role: str
    sender_id: UUID
    text: str
    at: datetime

    @classmethod
    def from_json(cls, value: object) -> ChatMessage:
        data = j.obj(value, "message")
        return cls(
            alert_id=j.uuid(data, "alert_id"),
            message_id=j.uuid(data, "message_id"),
            sender_role=j.string(data, "sender_role"),
            sender_id=j.uuid(data, "sender_id"),
            text=j.string(data, "text"),
            at=j.when(data, "at"),
        )


@dataclass(frozen=True, slots=True)
class Zone:
    """A geofence zone: ``geometry`` is GeoJSON (Polygon, MultiPolygon, or Point with
    ``radius_m``); ``kind`` one of ``safe``, ``danger``, ``service_area``."""

    id: UUID
    name: str
    kind: str
    geometry: Mapping[str, Any] = field(compare=False)
    active: bool = True
    radius_m: float | None = None
    rules: Mapping[str, Any] = field(default_factory=dict, compare=False)
    revision: int | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> Zone:
        data = j.obj(value, "zone")
        geometry, rules = data.get("geometry"), data.get("rules")
        return cls(
            id=j.uuid(data, "id"),
            name=j.string(data, "name"),
            kind=j.string(data, "kind"),
            geometry=geometry if isinstance(geometry, Mapping) else {},
            active=j.boolean(data, "active", True),
            radius_m=j.opt_number(data, "radius_m"),
            rules=rules if isinstance(rules, Mapping) else {},
            revision=j.opt_int(data, "revision"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class LocationAccepted:
    """``POST /geofencing/location`` took the fix (202): whose, and its time."""

    subject_id: UUID
    recorded_at: datetime
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> LocationAccepted:
        data = j.obj(value, "location")
        return cls(j.uuid(data, "subject_id"), j.when(data, "recorded_at"), data)


@dataclass(frozen=True, slots=True)
class RosterAgent:
    """An agent in the admins' roster (``GET /admin/agents``)."""

    id: UUID
    email: str
    full_name: str
    vetting: str
    availability: str | None = None
    badge_number: str | None = None
    vetting_reason: str | None = None
    vetted_at: datetime | None = None
    current_alert_id: UUID | None = None
    last_seen_at: datetime | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> RosterAgent:
        data = j.obj(value, "agent")
        return cls(
            id=j.uuid(data, "id"),
            email=j.string(data, "email"),
            full_name=j.string(data, "full_name"),
            vetting=j.string(data, "vetting"),
            availability=j.opt_string(data, "availability"),
            badge_number=j.opt_string(data, "badge_number"),
            vetting_reason=j.opt_string(data, "vetting_reason"),
            vetted_at=j.opt_when(data, "vetted_at"),
            current_alert_id=j.opt_uuid(data, "current_alert_id"),
            last_seen_at=j.opt_when(data, "last_seen_at"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class VettingResult:
    """The answer to approve/suspend: the agent's vetting now, and whether it changed."""

    agent_id: UUID
    vetting: str
    changed: bool
    vetting_reason: str | None = None
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_json(cls, value: object) -> VettingResult:
        data = j.obj(value, "vetting")
        return cls(
            agent_id=j.uuid(data, "agent_id"),
            vetting=j.string(data, "vetting"),
            changed=j.boolean(data, "changed"),
            vetting_reason=j.opt_string(data, "vetting_reason"),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class Invite:
    """A single-use agent invite code (shown once)."""

    id: UUID
    code: str
    expires_at: datetime

    @classmethod
    def from_json(cls, value: object) -> Invite:
        data = j.obj(value, "invite")
        return cls(j.uuid(data, "id"), j.string(data, "code"), j.when(data, "expires_at"))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last."""

    items: tuple[T, ...]
    next_cursor: str | None

    @classmethod
    def read(cls, value: object, item: Callable[[object], T]) -> Page[T]:
        data = j.obj(value, "page")
        items = data.get("items")
        if not isinstance(items, list):
            raise ProtocolError("a page has no 'items' list")
        return cls(tuple(item(x) for x in items), j.opt_string(data, "next_cursor"))
