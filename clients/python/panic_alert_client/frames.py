"""The ``/ws`` frames this client reads, typed, and the frames it writes. Pure.

Every frame is ``{"type": str, "id"?: str, "data": {...}}`` (API.md,
"WebSocket"). :func:`parse_frame` reads one text message into the dataclass
of its type; a type this client does not know, or a known one whose ``data``
lacks a member it needs, comes through as a :class:`GenericFrame` holding the
raw data, so a newer server never stops an older client. Every frame keeps
its whole ``data`` (``.data``) and says whether it was sent by the resync
after a (re)connect (``.resync``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

from panic_alert_client import _json as j
from panic_alert_client.errors import ProtocolError


def _meta() -> Any:
    return field(default=None, kw_only=True)


def _data() -> Any:
    return field(default_factory=dict, kw_only=True, repr=False, compare=False)


def _resync() -> Any:
    return field(default=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class AuthOk:
    """The socket is authenticated: whose it is, and how often to send something."""

    #: The principal's id (the user's, agent's or admin's account id).
    account_id: UUID
    role: str
    heartbeat_timeout_s: float
    type: str = "auth.ok"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class Pong:
    ref: str | None = None
    type: str = "pong"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class Ack:
    """The frame ``ref`` (of type ``acked_type``) took effect; what the entity says now."""

    ref: str | None
    acked_type: str
    alert_id: UUID | None = None
    status: str | None = None
    #: ``alert.message``: the id the message was stored under (as pushed).
    message_id: UUID | None = None
    type: str = "ack"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """A frame was refused (``ref`` echoes its id); the socket stays open."""

    code: str
    message: str
    ref: str | None = None
    retriable: bool = False
    type: str = "error"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AlertOffer:
    """An offer to this agent: coarse position (``position_precision_m``), no description."""

    alert_id: UUID
    alert_type: str
    latitude: float
    longitude: float
    position_precision_m: float | None = None
    distance_m: float | None = None
    expires_at: datetime | None = None
    silent: bool = False
    type: str = "alert.offer"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AlertAssigned:
    """The alert is this agent's: the exact position and the description."""

    alert_id: UUID
    alert_type: str
    status: str
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    description: str | None = None
    silent: bool = False
    type: str = "alert.assigned"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AlertUpdated:
    """An alert changed (admin sockets get the whole admin view in ``data``)."""

    alert_id: UUID
    status: str
    previous_status: str | None = None
    assigned_agent_id: UUID | None = None
    updated_at: datetime | None = None
    duress: bool | None = None
    type: str = "alert.updated"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AlertEscalated:
    """To admins: an alert was escalated, or needs them (``reason``)."""

    alert_id: UUID
    status: str
    reason: str | None = None
    type: str = "alert.escalated"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class LocationUpdate:
    """``alert.location`` (the user's position, to the responding agent) or
    ``agent.location`` (the agent's, to the user)."""

    type: str
    alert_id: UUID
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    at: datetime | None = None
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class OfferRevoked:
    """The offer is withdrawn (``taken``, ``cancelled``, ``expired``, ``unacknowledged``, ...)."""

    alert_id: UUID
    reason: str | None = None
    type: str = "offer.revoked"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AssignmentRevoked:
    """The agent no longer holds the alert (``reassigned``, suspended)."""

    alert_id: UUID
    reason: str | None = None
    type: str = "assignment.revoked"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class MediaAdded:
    """Evidence stored for an alert (``stored``) or its processing ended (``done``, ``failed``)."""

    alert_id: UUID
    media_id: UUID
    status: str
    type: str = "media.added"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """A chat message of an alert (``alert.message``): from its user, its assigned
    agent or an admin (``sender_role``). A silent alert's user is sent none."""

    alert_id: UUID
    message_id: UUID
    sender_role: str
    sender_id: UUID
    text: str
    at: datetime
    type: str = "alert.message"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class AlertEta:
    """The assigned agent's estimated arrival (``alert.eta``): ``eta_s`` seconds,
    ``distance_m`` the great circle, ``at`` the time of the position it is from."""

    alert_id: UUID
    agent_id: UUID
    eta_s: int
    distance_m: float
    method: str
    at: datetime
    type: str = "alert.eta"
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


@dataclass(frozen=True, slots=True)
class GenericFrame:
    """Any other frame (``geofence.alert``, ``fleet.agents``, a type added later), as sent."""

    type: str
    id: str | None = _meta()
    resync: bool = _resync()
    data: Mapping[str, Any] = _data()


ServerFrame: TypeAlias = (
    AuthOk
    | Pong
    | Ack
    | ErrorFrame
    | AlertOffer
    | AlertAssigned
    | AlertUpdated
    | AlertEscalated
    | LocationUpdate
    | OfferRevoked
    | AssignmentRevoked
    | MediaAdded
    | AlertMessage
    | AlertEta
    | GenericFrame
)


def _typed(kind: str, d: j.JsonObject, meta: dict[str, Any]) -> ServerFrame:
    """The dataclass of ``kind``; raises ProtocolError when ``d`` lacks what it needs."""
    if kind == "auth.ok":
        return AuthOk(
            j.uuid(d, "id"), j.string(d, "role"), j.number(d, "heartbeat_timeout_s"), **meta
        )
    if kind == "pong":
        return Pong(j.opt_string(d, "ref"), **meta)
    if kind == "ack":
        return Ack(
            j.opt_string(d, "ref"),
            j.string(d, "type"),
            j.opt_uuid(d, "alert_id"),
            j.opt_string(d, "status"),
            j.opt_uuid(d, "message_id"),
            **meta,
        )
    if kind == "error":
        return ErrorFrame(
            j.string(d, "code"),
            j.opt_string(d, "message") or "",
            j.opt_string(d, "ref"),
            j.boolean(d, "retriable"),
            **meta,
        )
    if kind == "alert.offer":
        return AlertOffer(
            j.uuid(d, "alert_id"),
            j.string(d, "alert_type"),
            j.number(d, "latitude"),
            j.number(d, "longitude"),
            j.opt_number(d, "position_precision_m"),
            j.opt_number(d, "distance_m"),
            j.opt_when(d, "expires_at"),
            j.boolean(d, "silent"),
            **meta,
        )
    if kind == "alert.assigned":
        return AlertAssigned(
            j.uuid(d, "alert_id"),
            j.string(d, "alert_type"),
            j.string(d, "status"),
            j.number(d, "latitude"),
            j.number(d, "longitude"),
            j.opt_number(d, "accuracy_m"),
            j.opt_string(d, "description"),
            j.boolean(d, "silent"),
            **meta,
        )
    if kind == "alert.updated":
        return AlertUpdated(
            j.uuid(d, "alert_id"),
            j.string(d, "status"),
            j.opt_string(d, "previous_status"),
            j.opt_uuid(d, "assigned_agent_id"),
            j.opt_when(d, "updated_at"),
            j.opt_bool(d, "duress"),
            **meta,
        )
    if kind == "alert.escalated":
        return AlertEscalated(
            j.uuid(d, "alert_id"), j.string(d, "status"), j.opt_string(d, "reason"), **meta
        )
    if kind in ("alert.location", "agent.location"):
        return LocationUpdate(
            kind,
            j.uuid(d, "alert_id"),
            j.number(d, "latitude"),
            j.number(d, "longitude"),
            j.opt_number(d, "accuracy_m"),
            j.opt_when(d, "at"),
            **meta,
        )
    if kind == "offer.revoked":
        return OfferRevoked(j.uuid(d, "alert_id"), j.opt_string(d, "reason"), **meta)
    if kind == "assignment.revoked":
        return AssignmentRevoked(j.uuid(d, "alert_id"), j.opt_string(d, "reason"), **meta)
    if kind == "media.added":
        return MediaAdded(
            j.uuid(d, "alert_id"), j.uuid(d, "media_id"), j.string(d, "status"), **meta
        )
    if kind == "alert.message":
        return AlertMessage(
            j.uuid(d, "alert_id"),
            j.uuid(d, "message_id"),
            j.string(d, "sender_role"),
            j.uuid(d, "sender_id"),
            j.string(d, "text"),
            j.when(d, "at"),
            **meta,
        )
    if kind == "alert.eta":
        eta_s = j.opt_int(d, "eta_s")
        if eta_s is None:
            raise ProtocolError("'eta_s' is missing")
        return AlertEta(
            j.uuid(d, "alert_id"),
            j.uuid(d, "agent_id"),
            eta_s,
            j.number(d, "distance_m"),
            j.string(d, "method"),
            j.when(d, "at"),
            **meta,
        )
    return GenericFrame(kind, **meta)


def parse_frame(text: str | bytes) -> ServerFrame:
    """One server message as its typed frame. Pure.

    Raises :class:`ProtocolError` only when the message is not a frame at all
    (not JSON, not an object, no string ``type``); an unknown type, or a known
    one this client cannot read, is a :class:`GenericFrame`.
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"a frame is not JSON: {exc}") from exc
    frame = j.obj(raw, "frame")
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("a frame has no string 'type'")
    data = frame.get("data")
    d: j.JsonObject = data if isinstance(data, Mapping) else {}
    frame_id = frame.get("id")
    meta: dict[str, Any] = {
        "id": frame_id if isinstance(frame_id, str) else None,
        "resync": d.get("resync") is True,
        "data": d,
    }
    try:
        return _typed(kind, d, meta)
    except ProtocolError:
        return GenericFrame(kind, **meta)


def client_frame(kind: str, data: Mapping[str, Any], frame_id: str | None = None) -> str:
    """One client frame as the text to send (``None`` members left out). Pure."""
    frame: dict[str, Any] = {"type": kind, "data": {k: v for k, v in data.items() if v is not None}}
    if frame_id is not None:
        frame["id"] = frame_id
    return json.dumps(frame, separators=(",", ":"))
