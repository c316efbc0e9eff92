"""The frames of ``/ws`` (API.md, "WebSocket"): pydantic models and the parser.

Every frame is a JSON text message ``{"type": str, "id"?: str, "data": {...}}``.
:func:`parse_client_frame` is pure: it turns one text message into a
:class:`ClientFrame` (with validated ``data``) or a :class:`FrameError`
carrying the error code and the offending frame's ``id`` (``ref``) when it
could be read. Nothing here raises on bad input.

Client ``data`` is validated strictly where coercion would hide a client
bug: numbers must be JSON numbers (``"12.5"`` is refused), unknown fields are
refused, NaN and infinities are refused.

Server frames built here (``auth.ok``, ``pong``, ``ack``, ``error``) are
answers to one client frame; the pushed frames (``alert.offer``, ...) are
built by the entities (``actors.alert_state``) and travel through Redis
unchanged; their models below document and check their shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeAlias
from uuid import UUID

import orjson
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from actors.agent import Availability
from actors.alert_state import AlertStatus
from actors.roles import Role
from gateway.fields import PLAIN_TEXT, ChatText, Heading, Latitude, Longitude, NonNegative
from gateway.fleet import FleetAgent
from gateway.ws.codes import ErrorCode

#: Longest client frame ``id`` echoed back as ``ref``.
MAX_ID_LENGTH = 128

Text = Annotated[str, Field(strict=True, max_length=1000), PLAIN_TEXT]


class _ClientData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- client → server ----------------------------------------------------------------


class AuthData(_ClientData):
    token: Annotated[str, Field(strict=True, min_length=1, max_length=8192)]
    #: An agent app that acknowledges each ``alert.offer`` itself
    #: (``offer.received``). Without it the gateway acknowledges an offer once
    #: it has written it to the socket. Either way, an offer not acknowledged
    #: within ``offer_ack_timeout_s`` moves on to the next agent.
    acks_offers: Annotated[bool, Field(strict=True)] = False


class PingData(_ClientData):
    pass


class AgentStatusData(_ClientData):
    status: Availability


class LocationData(_ClientData):
    latitude: Latitude
    longitude: Longitude
    accuracy_m: NonNegative | None = None
    heading: Heading | None = None
    speed_mps: NonNegative | None = None
    #: The device's time of the fix (None: when the server received it).
    recorded_at: AwareDatetime | None = None


class OfferAcceptData(_ClientData):
    alert_id: UUID


class OfferReceivedData(_ClientData):
    """The agent's device has the offer of ``alert_id`` (it is on screen)."""

    alert_id: UUID


class OfferDeclineData(_ClientData):
    alert_id: UUID
    reason: Text | None = None


class AlertStatusData(_ClientData):
    alert_id: UUID
    status: AlertStatus
    note: Text | None = None


class AlertMessageData(_ClientData):
    """A chat message to the alert ``alert_id``: from its user (while it is not
    over, assigned or not) or its assigned agent. Answered by ``ack`` (with
    ``message_id``) once committed, or an ``error``: ``forbidden`` (neither the
    alert's user nor its assigned agent, or the alert is over), ``not_found``,
    ``invalid_data`` (the text), ``conflict`` (the alert holds its most messages)."""

    alert_id: UUID
    text: ChatText


#: Every client frame type and the model of its ``data``.
CLIENT_FRAMES: dict[str, type[_ClientData]] = {
    "auth": AuthData,
    "ping": PingData,
    "agent.status": AgentStatusData,
    "location": LocationData,
    "offer.accept": OfferAcceptData,
    "offer.decline": OfferDeclineData,
    "offer.received": OfferReceivedData,
    "alert.status": AlertStatusData,
    "alert.message": AlertMessageData,
}

#: Client frames only an agent may send.
AGENT_ONLY: frozenset[str] = frozenset(
    {"agent.status", "offer.accept", "offer.decline", "offer.received", "alert.status"}
)


@dataclass(frozen=True, slots=True)
class ClientFrame:
    type: str
    id: str | None
    data: _ClientData


@dataclass(frozen=True, slots=True)
class FrameError:
    """A frame that could not be read; ``ref`` is its ``id`` when that much was valid."""

    code: ErrorCode
    message: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A client frame's outside: its ``type``, ``id`` (echoed as ``ref``) and
    ``data`` as sent (not yet checked; ``{}`` when absent)."""

    type: str
    id: str | None
    data: object


def read_envelope(text: str | bytes) -> Envelope | FrameError:
    """The outside of one client frame (``/ws`` and ``/ws/locations`` alike):
    a JSON object of ``type`` (a string), ``id``? and ``data``? only. Pure;
    never raises."""
    try:
        # orjson: a quarter of the json module's time per frame, and it refuses
        # NaN, Infinity and numbers beyond a double itself.
        raw = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return FrameError(ErrorCode.BAD_FRAME, f"not valid JSON: {exc}")
    if not isinstance(raw, dict):
        return FrameError(ErrorCode.BAD_FRAME, "a frame is a JSON object")
    frame_id = raw.get("id")
    if frame_id is not None and (not isinstance(frame_id, str) or len(frame_id) > MAX_ID_LENGTH):
        return FrameError(
            ErrorCode.BAD_FRAME, f"id must be a string of at most {MAX_ID_LENGTH} characters"
        )
    frame_type = raw.get("type")
    if not isinstance(frame_type, str):
        return FrameError(ErrorCode.BAD_FRAME, "type must be a string", frame_id)
    extra = set(raw) - {"type", "id", "data"}
    if extra:
        return FrameError(
            ErrorCode.BAD_FRAME, f"unknown frame fields: {', '.join(sorted(extra))}", frame_id
        )
    return Envelope(frame_type, frame_id, raw.get("data", {}))


def parse_client_frame(text: str) -> ClientFrame | FrameError:
    """Parse and validate one client text frame. Pure; never raises."""
    envelope = read_envelope(text)
    if isinstance(envelope, FrameError):
        return envelope
    frame_type, frame_id, data = envelope.type, envelope.id, envelope.data
    model = CLIENT_FRAMES.get(frame_type)
    if model is None:
        return FrameError(
            ErrorCode.UNKNOWN_TYPE, f"unknown frame type {frame_type[:64]!r}", frame_id
        )
    if not isinstance(data, dict):
        return FrameError(ErrorCode.BAD_FRAME, "data must be a JSON object", frame_id)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        return FrameError(ErrorCode.INVALID_DATA, _summary(exc), frame_id)
    return ClientFrame(frame_type, frame_id, parsed)


def _summary(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "data"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


# --- server → client (answers) ------------------------------------------------------------


class _ServerData(BaseModel):
    model_config = ConfigDict(frozen=True)


class AuthOkData(_ServerData):
    #: The principal's id (user id or agent id) and role.
    id: UUID
    role: Role
    #: Send something (``ping``) at least this often, or the socket is closed (4408).
    heartbeat_timeout_s: float


class PongData(_ServerData):
    ref: str | None = None


class AckData(_ServerData):
    """The frame ``ref`` took effect: what the entity now says."""

    ref: str | None = None
    #: The acknowledged frame's type.
    type: str
    alert_id: UUID | None = None
    status: str | None = None
    #: ``alert.message``: the id the message was stored under (as pushed).
    message_id: UUID | None = None


class ErrorData(_ServerData):
    code: str
    message: str
    ref: str | None = None
    retriable: bool = False
    refused: int | None = Field(
        None,
        ge=1,
        description="On an `unavailable` answer to `location` frames: how many of this "
        "socket's fixes it reports refused (the gateway's queue was full). A frame sent "
        "with an `id` is answered at once (1, with `ref`); the others are told together, "
        "the first at once and then at most once per `refusal_notice_s` (`x-websocket.limits`), "
        "with the next location frame after it.",
    )


# --- server → client (pushes, built by the entities) -----------------------------------------


class _PushData(BaseModel):
    # Pushes may gain fields; clients (and these models) ignore what they do not know.
    model_config = ConfigDict(extra="allow", frozen=True)


class AlertOfferData(_PushData):
    """An offer, to an agent that may still decline it: what it needs to decide,
    not where the door is (``geo.coarse``). The exact position and the
    description come with ``alert.assigned``; the user's name with ``GET /alerts/{id}``."""

    alert_id: UUID
    alert_type: str
    latitude: float = Field(description="Coarse: the centre of the ~500 m cell of the alert.")
    longitude: float = Field(description="Coarse: the centre of the ~500 m cell of the alert.")
    position_precision_m: float = Field(
        description="The exact point lies within this many metres of latitude/longitude."
    )
    accuracy_m: None = Field(None, description="Always null in an offer.")
    description: None = Field(None, description="Always null in an offer.")
    distance_m: float | None = Field(
        None, description="From the agent's last known position, to the nearest 100 m."
    )
    expires_at: datetime
    silent: bool = False


class AlertAssignedData(_PushData):
    """The alert is the agent's: its exact position and the user's description."""

    alert_id: UUID
    alert_type: str
    status: str
    latitude: float = Field(description="Exact.")
    longitude: float = Field(description="Exact.")
    accuracy_m: float | None = None
    description: str | None = None
    silent: bool = False


class AlertUpdatedData(_PushData):
    """An alert changed. Its user and its assigned agent are sent the first four
    fields (and ``updated_at``; the assigned agent ``duress: true`` under duress),
    as ever. Admin sockets are sent it after every change of the admin view (a
    status move, an assignment, a new offer, an escalation step, a duress mark;
    ``previous_status`` equals ``status`` when the status did not move), with
    the whole admin view of the alert (the fields below, as ``GET /alerts/{id}``
    shows an admin, less ``user_name``)."""

    alert_id: UUID
    status: str
    previous_status: str | None = None
    assigned_agent_id: UUID | None = None
    updated_at: datetime | None = None
    alert_type: str | None = Field(None, description="Admin sockets only.")
    latitude: float | None = Field(None, description="Admin sockets only; exact.")
    longitude: float | None = Field(None, description="Admin sockets only; exact.")
    accuracy_m: float | None = Field(None, description="Admin sockets only.")
    description: str | None = Field(None, description="Admin sockets only.")
    silent: bool | None = Field(None, description="Admin sockets only.")
    duress: bool | None = Field(
        None,
        description="Admin sockets, and the assigned agent's (`true` only) under duress. "
        "Never the user's.",
    )
    user_id: UUID | None = Field(None, description="Admin sockets only.")
    created_at: datetime | None = Field(None, description="Admin sockets only.")
    escalation_step: int | None = Field(
        None, description="Admin sockets only: escalation steps run so far."
    )
    offered_at: datetime | None = Field(
        None, description="Admin sockets only: when the latest offer was made (null: never)."
    )


class AlertCreatedData(_PushData):
    """To every admin socket, never to users or agents: a new alert, as
    ``GET /alerts/{id}`` shows it to an admin (less ``user_name``), plus ``alert_id``."""

    alert_id: UUID
    id: UUID
    status: str
    alert_type: str
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    description: str | None = None
    silent: bool
    user_id: UUID
    created_at: datetime
    updated_at: datetime
    assigned_agent_id: UUID | None = None
    duress: bool
    escalation_step: int
    offered_at: datetime | None = None


class AlertEscalatedData(_PushData):
    """To every admin socket: an alert was escalated (the alert as ``GET /alerts/{id}``),
    or needs them otherwise: ``reason`` ``en_route_overdue`` is an assigned agent
    not on its way by its alert type's deadline (the alert stays assigned)."""

    alert_id: UUID
    status: str
    alert_type: str
    latitude: float
    longitude: float
    previous_status: str | None = None
    reason: str | None = None


class OfferRevokedData(_PushData):
    """The offer of ``alert_id`` is withdrawn. ``reason``: ``taken`` (another agent
    accepted), ``cancelled``, ``expired``, ``unacknowledged`` (the app did not
    acknowledge it in time), ``unreachable`` (no socket), ``agent suspended``."""

    alert_id: UUID
    reason: str | None = None


class AssignmentRevokedData(_PushData):
    """The agent no longer holds ``alert_id``: an admin reassigned it
    (``reassigned``), or the agent was suspended."""

    alert_id: UUID
    reason: str


class LocationPushData(_PushData):
    alert_id: UUID
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    at: datetime | None = None


class MediaAddedData(_PushData):
    """To the agent assigned to ``alert_id`` and every admin socket: evidence was
    stored for the alert (``status`` ``stored``), or its processing ended
    (``done``, with ``renditions``; ``failed``, with ``error``). Read the file
    and its metadata at ``GET /media/{media_id}`` and ``/meta``."""

    alert_id: UUID
    media_id: UUID
    status: str
    kind: str | None = None
    content_type: str | None = None
    size: int | None = None
    uploader_role: str | None = None
    renditions: list[str] | None = None
    error: str | None = None


class AlertMessagePushData(_PushData):
    """A chat message of ``alert_id``, to its user, its assigned agent and every admin
    socket. Never to the user of a silent alert, nor after a duress cancel (their
    device is shown nothing from responders). Also ``GET /alerts/{id}/messages``' item."""

    alert_id: UUID
    message_id: UUID
    sender_role: str = Field(description="`user`, `agent` or `admin`")
    sender_id: UUID
    text: str = Field(description="Trimmed; may hold line feeds.")
    at: datetime


class AlertEtaData(_PushData):
    """The assigned agent's estimated arrival at ``alert_id``, after each of its
    positions: to the agent, every admin socket, and the alert's user (when the
    user is shown the agent coming, as ``agent.location``: never on a silent alert
    or after a duress cancel). ``method`` ``great_circle``: the great-circle
    distance at a mode speed (``PANIC_ACTORS__ETA_SPEED_MPS``, 8.3 m/s), or the
    agent's own speed when faster and heading for the alert; 0 within 30 m."""

    alert_id: UUID
    agent_id: UUID
    eta_s: int = Field(description="Seconds, rounded up.")
    distance_m: float = Field(description="Great-circle metres, to 0.1 m.")
    method: str = Field(description="`great_circle`")
    at: datetime = Field(description="The time of the agent's position it is estimated from.")


class FleetAgentsData(_PushData):
    """To admin sockets only: the agents whose duty status or position changed
    since this socket's previous ``fleet.agents`` (at most one frame per
    ``PANIC_HTTP__WS_FLEET_INTERVAL_S``, default 1 s; none when nothing
    changed). Items as ``GET /admin/fleet`` lists them, less who the agent is;
    an agent going off duty comes with ``status: offline`` (a suspended one
    too, once). The console loads ``GET /admin/fleet`` on every (re)connect and
    applies these diffs to it."""

    agents: list[FleetAgent]
    at: datetime = Field(description="when the gateway read the changes")


SERVER_FRAMES: dict[str, type[BaseModel]] = {
    "auth.ok": AuthOkData,
    "pong": PongData,
    "ack": AckData,
    "error": ErrorData,
    "alert.offer": AlertOfferData,
    "alert.assigned": AlertAssignedData,
    "alert.created": AlertCreatedData,
    "alert.updated": AlertUpdatedData,
    "alert.escalated": AlertEscalatedData,
    "offer.revoked": OfferRevokedData,
    "assignment.revoked": AssignmentRevokedData,
    "alert.location": LocationPushData,
    "agent.location": LocationPushData,
    "media.added": MediaAddedData,
    "alert.message": AlertMessagePushData,
    "alert.eta": AlertEtaData,
    "fleet.agents": FleetAgentsData,
}

#: Server frames only admin sockets are ever sent (the dispatcher console's feed).
ADMINS_ONLY: frozenset[str] = frozenset({"alert.created", "fleet.agents"})

ServerFrame: TypeAlias = dict[str, Any]


def server_frame(frame_type: str, data: BaseModel) -> ServerFrame:
    """``{"type", "data"}``, JSON-safe; ``None`` fields are left out."""
    return {"type": frame_type, "data": data.model_dump(mode="json", exclude_none=True)}


def error_frame(
    code: str,
    message: str,
    ref: str | None = None,
    *,
    retriable: bool = False,
    refused: int | None = None,
) -> ServerFrame:
    return server_frame(
        "error",
        ErrorData(code=code, message=message, ref=ref, retriable=retriable, refused=refused),
    )


def encode(frame: ServerFrame) -> str:
    """The frame as compact JSON text (UTF-8 as is, not escaped: it is valid JSON
    either way, and orjson writes it ~3x faster than ``json.dumps``)."""
    return orjson.dumps(frame).decode()
