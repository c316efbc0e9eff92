"""The pure per-socket state machine of ``/ws``: frames in, actions out, no I/O.

Like python-websockets' ``protocol.py``: the shell (``gateway.ws.session``)
feeds it what happened (a text frame arrived, the token checked out, an
entity replied, the clock moved) and carries out the actions it returns, in
order. Nothing here awaits, reads a clock or touches Redis or Ray, so every
rule is unit-tested directly.

Phases: ``AWAITING_AUTH`` (the first frame must be ``auth`` before the
deadline) → ``AUTHENTICATING`` (the shell checks the token) → ``OPEN`` →
``CLOSED``. Rules:

* Before authentication anything but a well-formed ``auth`` frame, a token
  that does not check out, or the deadline passing closes with 4401; a
  frame above ``max_auth_frame_bytes`` (64 KiB at most) closes with 1009.
* Every client frame, in every phase, takes a token from the socket's
  :class:`~gateway.ws.bucket.TokenBucket` (``frame_rate`` a second,
  ``frame_burst`` at once); a frame finding it empty is answered by an
  ``error`` frame ``rate_limited`` and the socket is closed with 1008.
* Once authenticated, the socket lives no longer than its credentials: the
  access token's expiry passing (``token expired``) or the login session
  ending (:meth:`SessionProtocol.revoked`: logout, refresh-token reuse, every
  session of the account closed) closes with 4401. Clients reconnect with a
  fresh token.
* Once open, a bad frame is answered by an ``error`` frame (``ref`` = its
  ``id``) and the socket stays open; a frame above ``max_frame_bytes``
  closes with 1009; a socket silent for ``heartbeat_timeout_s`` closes with
  4408. Any frame counts as a sign of life.
* Agent-only frames from a user are answered ``forbidden``.
* A location fix the gateway refuses (its queue full) is answered
  ``unavailable``: at once when sent with an ``id``; else told together with
  the socket's other refusals, at most every ``refusal_notice_s``
  (:meth:`SessionProtocol.location_refused`).
* ``alert.message`` (users and agents) goes to the alert as a ``PostMessage``
  with a fresh ``message_id`` (the injected id factory); its ``ack`` names it.
* ``agent.status`` asking for anything but ``offline`` goes to the entity
  only once the shell has looked up the agent's vetting (``CheckVetting``):
  a pending or suspended agent is answered ``forbidden`` (``gateway.vetting``).
* After ``CLOSED`` every input is ignored (no actions).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias
from uuid import UUID, uuid4

from actors import agent as agent_msgs
from actors.alert_messages import DeclineOffer, OfferReceived, PostMessage, UpdateStatus
from actors.alert_state import ActorRole, AlertState
from actors.effects import Audience, EntityKind
from config.settings import HttpSettings
from gateway.auth.principal import Principal, Role
from gateway.vetting import duty_refusal
from gateway.ws.bucket import TokenBucket
from gateway.ws.codes import CloseCode, ErrorCode
from gateway.ws.frames import (
    AGENT_ONLY,
    AckData,
    AgentStatusData,
    AlertMessageData,
    AlertStatusData,
    AuthData,
    AuthOkData,
    ClientFrame,
    FrameError,
    LocationData,
    OfferAcceptData,
    OfferDeclineData,
    OfferReceivedData,
    PongData,
    ServerFrame,
    error_frame,
    parse_client_frame,
    server_frame,
)

#: The ``message`` of an ``unavailable`` answer to refused location fixes.
REFUSED_MESSAGE = "too many locations waiting; send the next one"


class Phase(enum.Enum):
    AWAITING_AUTH = "awaiting_auth"
    AUTHENTICATING = "authenticating"
    OPEN = "open"
    CLOSED = "closed"


#: The settings' defaults: :class:`Limits`' own, so each bound's default is written once.
_HTTP_DEFAULTS: Final = HttpSettings()


@dataclass(frozen=True, slots=True)
class Limits:
    """One socket's bounds, from ``http`` settings (:meth:`of`); each default is
    the setting's."""

    auth_timeout_s: float = _HTTP_DEFAULTS.ws_auth_timeout_s
    heartbeat_timeout_s: float = _HTTP_DEFAULTS.ws_heartbeat_timeout_s
    #: Largest frame once authenticated.
    max_frame_bytes: int = _HTTP_DEFAULTS.ws_max_frame_bytes
    #: Largest frame before (the ``auth`` frame).
    max_auth_frame_bytes: int = _HTTP_DEFAULTS.ws_max_auth_frame_bytes
    #: Frames a second on average, and at once (the socket's token bucket).
    frame_rate: float = _HTTP_DEFAULTS.ws_frame_rate
    frame_burst: int = _HTTP_DEFAULTS.ws_frame_burst
    #: Largest ``locations`` frame of ``/ws/locations`` (``gateway.ws.bulk``).
    max_bulk_frame_bytes: int = _HTTP_DEFAULTS.ws_max_bulk_frame_bytes
    #: Open ``/ws/locations`` sockets of one integration key on one process.
    max_bulk_sockets_per_key: int = _HTTP_DEFAULTS.ws_max_bulk_sockets_per_key
    #: Open ``/ws`` sockets of one account on one process, its newest kept.
    max_sockets_per_account: int = _HTTP_DEFAULTS.ws_max_sockets_per_account
    #: Refused location fixes without an ``id`` are told at most this often
    #: (:meth:`SessionProtocol.location_refused`; 0: each one).
    refusal_notice_s: float = _HTTP_DEFAULTS.ws_refusal_notice_s

    @classmethod
    def of(cls, http: HttpSettings) -> Limits:
        return cls(
            auth_timeout_s=http.ws_auth_timeout_s,
            heartbeat_timeout_s=http.ws_heartbeat_timeout_s,
            max_frame_bytes=http.ws_max_frame_bytes,
            max_auth_frame_bytes=http.ws_max_auth_frame_bytes,
            frame_rate=http.ws_frame_rate,
            frame_burst=http.ws_frame_burst,
            max_bulk_frame_bytes=http.ws_max_bulk_frame_bytes,
            max_bulk_sockets_per_key=http.ws_max_bulk_sockets_per_key,
            max_sockets_per_account=http.ws_max_sockets_per_account,
            refusal_notice_s=http.ws_refusal_notice_s,
        )

    @property
    def transport_max_bytes(self) -> int:
        """What the server itself may read of one message (uvicorn's ``ws_max_size``):
        the largest bound of any phase or socket (``/ws/locations``' batches). A
        larger frame is refused (1009) from its header, before its payload is read;
        each socket then applies its own phase's bound."""
        return max(self.max_frame_bytes, self.max_auth_frame_bytes, self.max_bulk_frame_bytes)

    def max_frame_in(self, phase: Phase) -> int:
        """The largest frame a socket in ``phase`` may send."""
        return self.max_frame_bytes if phase is Phase.OPEN else self.max_auth_frame_bytes


# --- actions (what the shell carries out, in order) -----------------------------------


@dataclass(frozen=True, slots=True)
class SendFrame:
    frame: ServerFrame


@dataclass(frozen=True, slots=True)
class CloseSocket:
    code: CloseCode
    reason: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """Check ``token``; answer with :meth:`SessionProtocol.auth_succeeded` or ``auth_failed``."""

    token: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Deliver the pushes of ``audience`` to this socket from now on."""

    audience: Audience


@dataclass(frozen=True, slots=True)
class Resync:
    """Send what ``audience`` must know now (pending offers, open alerts)."""

    audience: Audience


@dataclass(frozen=True, slots=True)
class AskEntity:
    """Ask the entity; answer with ``ask_succeeded`` or ``action_failed``."""

    kind: EntityKind
    entity_id: str
    message: object
    ref: str | None
    frame_type: str


@dataclass(frozen=True, slots=True)
class CheckVetting:
    """Look up the agent's vetting now; answer with ``vetting_checked`` (or
    ``action_failed`` if it cannot be read). ``ask`` is the ``agent.status``
    ask to carry out if the vetting allows it."""

    agent_id: UUID
    status: agent_msgs.Availability
    ask: AskEntity


@dataclass(frozen=True, slots=True)
class TellEntity:
    """Fire-and-forget (batched) to the entity."""

    kind: EntityKind
    entity_id: str
    message: object
    #: A sign of life no one waits for (a heartbeat): it may be gathered with
    #: others for up to ``actors.lazy_linger_ms`` (``EntityClient.tell_lazily``).
    lazy: bool = False


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """Keep ``location`` as the last known position (Redis ``location:{role}:{id}``)."""

    role: str
    subject_id: UUID
    location: LocationData
    ref: str | None


Action: TypeAlias = (
    SendFrame
    | CloseSocket
    | Authenticate
    | Subscribe
    | Resync
    | AskEntity
    | CheckVetting
    | TellEntity
    | StoreLocation
)


# --- the state machine ------------------------------------------------------------------


class SessionProtocol:
    """One socket's protocol state. Not thread-safe; one task drives it."""

    def __init__(self, limits: Limits, now: float, ids: Callable[[], UUID] = uuid4) -> None:
        self.limits = limits
        self._ids = ids
        self.phase = Phase.AWAITING_AUTH
        self.principal: Principal | None = None
        #: The app acknowledges offers itself (``offer.received``); else the
        #: gateway does once it has written each one (:meth:`offer_written`).
        self.acks_offers = False
        self._auth_deadline = now + limits.auth_timeout_s
        self._last_seen = now
        self._token_expires = float("inf")
        self._frames = TokenBucket(limits.frame_rate, limits.frame_burst, now)
        #: Location fixes refused and not yet told (:meth:`location_refused`), and
        #: when the socket was last told.
        self.untold_refusals = 0
        self._refusals_told_at: float | None = None

    def deadline(self) -> float | None:
        """When :meth:`tick` must be called next (None: nothing pending)."""
        if self.phase is Phase.AWAITING_AUTH:
            return self._auth_deadline
        if self.phase is Phase.OPEN:
            return min(self._last_seen + self.limits.heartbeat_timeout_s, self._token_expires)
        return None

    def tick(self, now: float) -> list[Action]:
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return []
        if self.phase is Phase.AWAITING_AUTH:
            return self._close(CloseCode.UNAUTHENTICATED, "no auth frame in time")
        if now >= self._token_expires:
            return self._close(CloseCode.UNAUTHENTICATED, "token expired")
        return self._close(CloseCode.IDLE_TIMEOUT, "heartbeat timeout")

    def receive_bytes(self, data: bytes, now: float) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        if len(data) > self.limits.max_frame_in(self.phase):
            return self._close(CloseCode.TOO_BIG, "frame too big")
        if not self._frames.take(now):
            return self._flooded()
        if self.phase is not Phase.OPEN:
            return self._close(CloseCode.UNAUTHENTICATED, "first frame must be auth")
        self._last_seen = now
        return [_error(ErrorCode.BINARY_UNSUPPORTED, "frames are JSON text", None)]

    def receive_text(self, text: str, now: float) -> list[Action]:
        if self.phase is Phase.CLOSED:
            return []
        if too_big(text, self.limits.max_frame_in(self.phase)):
            return self._close(CloseCode.TOO_BIG, "frame too big")
        if not self._frames.take(now):
            return self._flooded()
        self._last_seen = now
        parsed = parse_client_frame(text)
        if self.phase is Phase.AWAITING_AUTH:
            if isinstance(parsed, ClientFrame) and isinstance(parsed.data, AuthData):
                self.phase = Phase.AUTHENTICATING
                self.acks_offers = parsed.data.acks_offers
                return [Authenticate(parsed.data.token)]
            return self._close(CloseCode.UNAUTHENTICATED, "first frame must be auth")
        if self.phase is Phase.AUTHENTICATING:
            # The shell awaits the token check before reading on; a frame here is a bug.
            return [_error(ErrorCode.INTERNAL, "frame before authentication finished", None)]
        if isinstance(parsed, FrameError):
            return [_error(parsed.code, parsed.message, parsed.ref)]
        return self._dispatch(parsed)

    def auth_succeeded(
        self, principal: Principal, *, now: float, token_expires: float
    ) -> list[Action]:
        """The token checked out and its session is active (and watched for its
        end: the shell feeds :meth:`revoked`). ``token_expires`` is the token's
        expiry on the clock of ``now``; the socket is closed then."""
        if self.phase is not Phase.AUTHENTICATING:
            return []
        if now >= token_expires:
            return self._close(CloseCode.UNAUTHENTICATED, "token expired")
        self.phase = Phase.OPEN
        self._token_expires = token_expires
        self.principal = principal
        audience = {
            Role.AGENT: Audience.agent(principal.id),
            Role.USER: Audience.user(principal.id),
            Role.ADMIN: Audience.admins(),
        }[principal.role]
        ok = AuthOkData(
            id=principal.id,
            role=principal.role.value,
            heartbeat_timeout_s=self.limits.heartbeat_timeout_s,
        )
        # Subscribed before auth.ok and the resync, so nothing published from
        # here on is missed; see Resync for the ordering of what is sent.
        return [Subscribe(audience), SendFrame(server_frame("auth.ok", ok)), Resync(audience)]

    def auth_failed(self, reason: str) -> list[Action]:
        if self.phase is not Phase.AUTHENTICATING:
            return []
        return self._close(CloseCode.UNAUTHENTICATED, reason[:120])

    def ask_succeeded(self, ask: AskEntity, reply: object) -> list[Action]:
        if self.phase is not Phase.OPEN:
            return []
        ack = AckData(ref=ask.ref, type=ask.frame_type)
        if isinstance(reply, agent_msgs.AgentState):
            ack = AckData(ref=ask.ref, type=ask.frame_type, status=reply.availability.value)
        elif isinstance(reply, agent_msgs.OfferTaken) and reply.status is not None:
            ack = AckData(
                ref=ask.ref, type=ask.frame_type, alert_id=reply.alert_id, status=reply.status.value
            )
        elif isinstance(reply, AlertState):
            posted = ask.message if isinstance(ask.message, PostMessage) else None
            ack = AckData(
                ref=ask.ref,
                type=ask.frame_type,
                alert_id=reply.id,
                status=reply.status.value,
                message_id=None if posted is None else posted.message_id,
            )
        return [SendFrame(server_frame("ack", ack))]

    def vetting_checked(self, check: CheckVetting, vetting: str | None) -> list[Action]:
        """The agent's vetting, read for ``check``: its ask, or ``forbidden``."""
        if self.phase is not Phase.OPEN:
            return []
        refusal = duty_refusal(vetting, check.status)
        if refusal is not None:
            return [_error(ErrorCode.FORBIDDEN, refusal, check.ask.ref)]
        return [check.ask]

    def action_failed(
        self,
        ref: str | None,
        code: str,
        message: str,
        *,
        retriable: bool = False,
        refused: int | None = None,
    ) -> list[Action]:
        if self.phase is not Phase.OPEN:
            return []
        return [SendFrame(error_frame(code, message, ref, retriable=retriable, refused=refused))]

    def location_refused(self, ref: str | None, now: float) -> list[Action]:
        """A location fix of this socket was refused: the gateway's queue is full
        (or holds its subject's share). A fix sent with an ``id`` is answered at
        once (``refused`` 1, its ``ref``). The others are counted and told in one
        ``unavailable`` frame, ``refused`` the count: the first at once, then at
        most every ``refusal_notice_s`` (:meth:`refusals_due`). A phone sends a fix
        a second, and the app's answer to each is the same (send the next one);
        an overloaded gateway answering every one, and the apps reading them,
        spent the cores it needed to catch up (issue 20)."""
        if ref is not None:
            return self._refusals_told(1, ref)
        self.untold_refusals += 1
        return self.refusals_due(now)

    def refusals_due(self, now: float) -> list[Action]:
        """The refused fixes not yet told, in one frame, once ``refusal_notice_s``
        has passed since the socket was last told (the shell asks with each
        location frame while :attr:`untold_refusals` is not 0, refused or not,
        so the count is told even once the refusals stop)."""
        told_at = self._refusals_told_at
        if not self.untold_refusals or (
            told_at is not None and now - told_at < self.limits.refusal_notice_s
        ):
            return []
        count, self.untold_refusals, self._refusals_told_at = self.untold_refusals, 0, now
        return self._refusals_told(count, None)

    def _refusals_told(self, count: int, ref: str | None) -> list[Action]:
        return self.action_failed(
            ref, ErrorCode.UNAVAILABLE.value, REFUSED_MESSAGE, retriable=True, refused=count
        )

    def offer_written(self, alert_id: UUID) -> list[Action]:
        """An ``alert.offer`` of ``alert_id`` was written to this agent's socket:
        the gateway's acknowledgement, unless the app acknowledges itself."""
        principal = self.principal
        if self.acks_offers or principal is None or principal.role is not Role.AGENT:
            return []
        return [TellEntity(EntityKind.ALERT, str(alert_id), OfferReceived(principal.id))]

    def revoked(self) -> list[Action]:
        """The login session ended (logout, refresh-token reuse, every session of
        the account closed): close 4401, whatever the phase."""
        if self.phase is Phase.CLOSED:
            return []
        return self._close(CloseCode.UNAUTHENTICATED, "session revoked")

    def closed(self) -> None:
        """The peer went away; nothing more will be done."""
        self.phase = Phase.CLOSED

    def abort(self, code: CloseCode, reason: str) -> list[Action]:
        """The shell cannot go on (a backend is down, a bug): close with ``code``."""
        if self.phase is Phase.CLOSED:
            return []
        return self._close(code, reason)

    # --- frames of an open socket ---------------------------------------------------------

    def _dispatch(self, frame: ClientFrame) -> list[Action]:
        principal = self.principal
        assert principal is not None
        data, ref = frame.data, frame.id
        is_agent = principal.role is Role.AGENT
        if frame.type == "auth":
            return [_error(ErrorCode.ALREADY_AUTHENTICATED, "this socket is authenticated", ref)]
        if frame.type in AGENT_ONLY and not is_agent:
            return [_error(ErrorCode.FORBIDDEN, f"{frame.type!r} is for agents only", ref)]
        if principal.role is Role.ADMIN and frame.type != "ping":
            # The portal listens (alert.escalated); it acts over REST.
            return [_error(ErrorCode.FORBIDDEN, f"{frame.type!r} is not for admins", ref)]
        if isinstance(data, LocationData):  # most frames: first, and no id as text
            return self._location(principal, data, ref)
        agent_id = str(principal.id)
        if frame.type == "ping":
            pong = SendFrame(server_frame("pong", PongData(ref=ref)))
            if is_agent:
                beat = TellEntity(EntityKind.AGENT, agent_id, agent_msgs.Heartbeat(), lazy=True)
                return [pong, beat]
            return [pong]
        if isinstance(data, AgentStatusData):
            ask = AskEntity(
                EntityKind.AGENT, agent_id, agent_msgs.SetStatus(data.status), ref, frame.type
            )
            if data.status is agent_msgs.Availability.OFFLINE:
                return [ask]  # going off duty needs no vetting
            return [CheckVetting(principal.id, data.status, ask)]
        if isinstance(data, OfferAcceptData):
            # One action: the agent's entity reserves it, asks the alert, and
            # answers once the alert has (actors.agent.TakeOffer).
            take = agent_msgs.TakeOffer(data.alert_id)
            return [AskEntity(EntityKind.AGENT, str(principal.id), take, ref, frame.type)]
        if isinstance(data, OfferReceivedData):
            # Fire-and-forget like a fix: no answer; the alert keeps the offer open.
            received = OfferReceived(agent_id=principal.id)
            return [TellEntity(EntityKind.ALERT, str(data.alert_id), received)]
        if isinstance(data, OfferDeclineData):
            message = DeclineOffer(agent_id=principal.id, reason=data.reason)
            return [AskEntity(EntityKind.ALERT, str(data.alert_id), message, ref, frame.type)]
        if isinstance(data, AlertStatusData):
            update = UpdateStatus(
                status=data.status,
                actor_id=principal.id,
                actor_role=ActorRole.AGENT,
                note=data.note,
            )
            return [AskEntity(EntityKind.ALERT, str(data.alert_id), update, ref, frame.type)]
        if isinstance(data, AlertMessageData):
            post = PostMessage(
                message_id=self._ids(),
                sender_id=principal.id,
                sender_role=ActorRole(principal.role.value),
                text=data.text,
            )
            return [AskEntity(EntityKind.ALERT, str(data.alert_id), post, ref, frame.type)]
        # parse_client_frame only returns the types of CLIENT_FRAMES, all handled above.
        return [_error(ErrorCode.UNKNOWN_TYPE, f"unhandled frame type {frame.type!r}", ref)]

    def _location(self, principal: Principal, data: LocationData, ref: str | None) -> list[Action]:
        stored = StoreLocation(principal.role.value, principal.id, data, ref)
        if principal.role is not Role.AGENT:
            # The user's entity passes it on to a responding agent (actors.subject).
            return [stored]
        fix = agent_msgs.LocationFix(
            latitude=data.latitude,
            longitude=data.longitude,
            accuracy_m=data.accuracy_m,
            heading=data.heading,
            speed_mps=data.speed_mps,
            recorded_at=data.recorded_at,
        )
        return [TellEntity(EntityKind.AGENT, str(principal.id), fix), stored]

    def _close(self, code: CloseCode, reason: str) -> list[Action]:
        self.phase = Phase.CLOSED
        return [CloseSocket(code, reason)]

    def _flooded(self) -> list[Action]:
        """Over the frame rate: say why, then close (a client that floods once
        would flood again; it reconnects, and resyncs, at a sane rate)."""
        message = (
            f"more than {self.limits.frame_burst} frames at once or "
            f"{self.limits.frame_rate:g} a second"
        )
        error = SendFrame(error_frame(ErrorCode.RATE_LIMITED.value, message, retriable=True))
        return [error, *self._close(CloseCode.POLICY_VIOLATION, "too many frames")]


def _error(code: ErrorCode, message: str, ref: str | None) -> SendFrame:
    return SendFrame(error_frame(code.value, message, ref))


def too_big(text: str, limit: int) -> bool:
    """Whether ``text`` is more than ``limit`` bytes in UTF-8."""
    # A str of n characters is n..4n bytes in UTF-8; encode only when in doubt.
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode("utf-8")) > limit
