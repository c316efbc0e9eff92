"""The I/O shell of one ``/ws`` socket around :class:`~gateway.ws.protocol.SessionProtocol`.

Two tasks per socket: the reader feeds received frames (and deadlines) to
the protocol and carries out its actions one at a time, in order, so a
client's frames take effect in the order sent; the writer drains one
bounded queue of outgoing text (answers and pushes alike), so sends never
interleave. A socket whose queue overflows (it reads too slowly) is closed
with 1013; it resyncs on reconnect.

Pushes reach the socket through the process's :class:`~gateway.ws.hub.PushHub`,
and so does the end of its login session: the socket listens to its
session's revocation channel (``gateway.ports.Sessions``) from before the
session is found active until it closes, and closes with 4401 when
anything arrives there, so logout and every other revocation reach open
sockets on every replica.
Between subscribing and sending the resync, pushes are held back and sent
after the resync frames: the resync reads committed snapshots, and every
push is published after its commit, so sending held pushes last leaves the
app with the newest state of each alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

import orjson
from fastapi import HTTPException
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from actors.agent import LocationFix
from actors.effects import AudienceKind, push_channel
from actors.store_errors import PersistenceError
from actors.subject import subject_key
from cluster.client import EntityClient
from config.settings import Settings
from gateway.deps import require_active, verify_token
from gateway.locations import LocationSink, StaleFix, sighting
from gateway.ports import SessionCheck, Sessions, Vetting, VettingLookup
from gateway.vetting import ApprovedAgents
from gateway.ws.account_sockets import REPLACED_REASON, AccountSockets
from gateway.ws.alarm import Alarm
from gateway.ws.codes import CloseCode, ErrorCode, describe_error
from gateway.ws.fleet_feed import FleetFeed
from gateway.ws.frames import encode, error_frame
from gateway.ws.hub import PushHub
from gateway.ws.presence import AgentSockets
from gateway.ws.protocol import (
    Action,
    AskEntity,
    Authenticate,
    CheckVetting,
    CloseSocket,
    Limits,
    Phase,
    Resync,
    SendFrame,
    SessionProtocol,
    StoreLocation,
    Subscribe,
    TellEntity,
)
from gateway.ws.resync import OpenAlertSource, load_resync
from gateway.ws.transport import TEXT_HANDLER

log = logging.getLogger(__name__)

#: How long a close we initiated may take to be written before we give up on the peer.
_CLOSE_GRACE_S = 5.0

#: Socket ids: this process's random prefix and a count, unique across processes and
#: restarts without a uuid4 (an ``os.urandom`` call) per connection.
_SOCKET_PREFIX = uuid.uuid4().hex[:16]
_socket_count = itertools.count()


def _next_socket_id() -> str:
    return f"{_SOCKET_PREFIX}{next(_socket_count):x}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SessionDeps:
    """What a session needs; backends are resolved when first used (they may be down)."""

    settings: Settings
    hub: PushHub
    sessions: Callable[[], Sessions]
    entities: Callable[[], EntityClient]
    open_alerts: Callable[[], OpenAlertSource]
    locations: LocationSink
    #: This process's agent sockets, announced to their agent entities.
    agent_sockets: AgentSockets
    #: This process's sockets by account, the newest kept (``http.ws_max_sockets_per_account``):
    #: the app's one (``GatewayState.account_sockets``), not one per socket.
    account_sockets: AccountSockets[Session]
    #: An agent's vetting, read when it asks to go on duty.
    vetting: Callable[[], VettingLookup]
    #: The process's agents read as approved lately (saves the read on reconnect).
    approved_agents: ApprovedAgents = field(default_factory=ApprovedAgents)
    #: ``fleet.agents`` for admin sockets (None: not sent by this process).
    fleet_feed: FleetFeed | None = None
    #: Checks that a login session is active (None: ``sessions``, one round trip each;
    #: the route passes the process's ``gateway.ws.reads.CoalescedSessionCheck``).
    session_check: SessionCheck | None = None
    #: The process's sockets being set up at once (``http.ws_setup_concurrency``).
    setups: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(64))
    clock: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = field(default=time.monotonic)


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Offer:
    """A pushed ``alert.offer``: once written, the gateway may acknowledge it."""

    text: str
    alert_id: UUID


#: How a pushed offer starts (pushes are compact JSON, ``type`` first).
_OFFER_PREFIX = '{"type":"alert.offer"'


def _offer_of(text: str) -> _Offer | None:
    if not text.startswith(_OFFER_PREFIX):
        return None
    try:
        return _Offer(text, UUID(orjson.loads(text)["data"]["alert_id"]))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class Session:
    def __init__(self, websocket: WebSocket, deps: SessionDeps) -> None:
        self._ws = websocket
        self._deps = deps
        http = deps.settings.http
        self._proto = SessionProtocol(Limits.of(http), deps.monotonic())
        # Unbounded queue, bounded by _send (so the close marker always fits).
        self._out: asyncio.Queue[str | _Offer | _Close] = asyncio.Queue()
        #: This socket's id in its agent's presence (``gateway.ws.presence``).
        self._socket_id = _next_socket_id()
        self._announced = False
        self._queue_limit = http.ws_send_queue
        self._closing = False
        self._channel: str | None = None
        self._session_channel: str | None = None
        self._held: list[str] | None = None
        self._alarm: Alarm | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._fleet: FleetFeed | None = None
        #: The reader waits in ``receive()`` with nothing of its own to finish.
        self._reader_idle = False
        #: Actions of a frame taken by :meth:`_on_text` that must be awaited; the
        #: reader awaits them before the next frame.
        self._busy: asyncio.Task[None] | None = None
        #: The subject this socket's fixes are of, and its entity key (made once).
        self._subject: tuple[UUID, str] | None = None
        #: The account this socket is counted under (``SessionDeps.account_sockets``).
        self._account: UUID | None = None

    async def run(self) -> None:
        await self._ws.accept()
        register = self._ws.scope.get("extensions", {}).get(TEXT_HANDLER)
        if register is not None:
            register(self._on_text)
        reader = asyncio.create_task(self._read_loop(), name="ws-reader")
        writer = asyncio.create_task(self._write_loop(), name="ws-writer")
        try:
            done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done and self._closing:
                # We asked to close: let the writer send what is queued and the close.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(writer), _CLOSE_GRACE_S)
            if register is not None:
                register(None)
            tasks = (reader, writer) if self._busy is None else (reader, writer, self._busy)
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    log.error("ws session failed", exc_info=outcome)
        finally:
            if self._account is not None:
                self._deps.account_sockets.closed(self._account, self)
            if self._channel is not None:
                self._deps.hub.detach(self._channel, self._push)
            if self._announced:
                self._deps.agent_sockets.closed(self._socket_id)
            if self._session_channel is not None:
                self._deps.hub.detach(self._session_channel, self._revoked)
            if self._fleet is not None:
                self._fleet.detach(self._push)

    # --- reading --------------------------------------------------------------------

    async def _read_loop(self) -> None:
        # Deadlines (the auth frame, heartbeats) are kept by an alarm beside the
        # loop (``gateway.ws.alarm``), not by a timeout on each receive. The
        # alarm only ever closes.
        alarm = self._alarm = Alarm(self._deadline_passed)
        try:
            while self._proto.phase is not Phase.CLOSED:
                alarm.arm(self._proto.deadline(), self._deps.monotonic())
                self._reader_idle = True
                try:
                    message = await self._ws.receive()
                finally:
                    self._reader_idle = False
                if self._busy is not None:
                    await self._busy  # the frames _on_text took come first
                now = self._deps.monotonic()
                if message["type"] == "websocket.disconnect":
                    self._proto.closed()
                    return
                text, data = message.get("text"), message.get("bytes")
                if text is not None:
                    actions = self._proto.receive_text(text, now)
                else:
                    actions = self._proto.receive_bytes(data or b"", now)
                await self._carry_out(actions)
        except Exception:
            log.exception("ws reader failed")
            await self._carry_out(self._proto.abort(CloseCode.INTERNAL, "internal error"))
        finally:
            alarm.cancel()

    def _on_text(self, text: str) -> bool:
        """The server's text handler (``gateway.ws.transport``): a frame, handed over
        as it is read; False leaves it to the reader (queued, in order).

        Taken only while the reader waits with nothing queued and nothing of its
        own to finish, once authenticated: then what the frame makes happen is the
        same as through the reader, without waking it. A location fix needs no
        await; a frame whose actions do (an agent's status, an offer's answer) is
        carried out by a task the reader awaits before its next frame.
        """
        proto = self._proto
        if not self._reader_idle or self._busy is not None or proto.phase is not Phase.OPEN:
            return False
        now = self._deps.monotonic()
        rest = self._carry_out_now(proto.receive_text(text, now))
        if rest:
            busy = self._busy = asyncio.get_running_loop().create_task(self._finish(rest))
            busy.add_done_callback(self._not_busy)
        if self._alarm is not None:
            self._alarm.arm(proto.deadline(), now)
        return True

    def _carry_out_now(self, actions: Sequence[Action]) -> list[Action]:
        """Carry out ``actions`` up to the first that must be awaited; return it and
        the ones after it (empty: all done)."""
        for index, action in enumerate(actions):
            if self._closing:
                return []  # e.g. the subscription failed: no auth.ok, no resync
            if isinstance(action, SendFrame):
                self._send(encode(action.frame))
            elif isinstance(action, CloseSocket):
                self._close(action.code, action.reason)
                return []
            elif isinstance(action, TellEntity):
                self._tell(action)
            elif isinstance(action, StoreLocation):
                self._carry_out_now(self._store_location(action))
            else:
                return list(actions[index:])
        return []

    async def _finish(self, actions: Sequence[Action]) -> None:
        try:
            await self._carry_out(actions)
        except Exception:
            log.exception("ws frame failed")
            await self._carry_out(self._proto.abort(CloseCode.INTERNAL, "internal error"))

    def _not_busy(self, _task: asyncio.Task[None]) -> None:
        self._busy = None

    def _deadline_passed(self) -> None:
        """The alarm rang: close if a deadline really passed, else wait for the next."""
        actions = self._proto.tick(self._deps.monotonic())
        if not actions:
            if self._alarm is not None:
                self._alarm.arm(self._proto.deadline(), self._deps.monotonic())
            return
        # Only closes (CloseSocket): safe beside a frame being carried out.
        closing = asyncio.get_running_loop().create_task(self._carry_out(actions))
        self._background.add(closing)
        closing.add_done_callback(self._background.discard)

    async def _carry_out(self, actions: Sequence[Action]) -> None:
        """Carry out ``actions`` in order: those that need no await at once
        (:meth:`_carry_out_now`), each other one awaited in its place."""
        waiting = self._carry_out_now(actions)
        while waiting and not self._closing:
            action, after = waiting[0], waiting[1:]
            if isinstance(action, Authenticate):
                # The setup (auth, subscriptions, resync) waits on nothing the
                # client does, so a turn is never held by a slow client.
                async with self._deps.setups:
                    await self._carry_out(await self._authenticate(action.token))
            elif isinstance(action, Subscribe):
                await self._carry_out(await self._subscribe(action))
            elif isinstance(action, Resync):
                await self._resync(action)
            elif isinstance(action, AskEntity):
                await self._carry_out(await self._ask(action))
            elif isinstance(action, CheckVetting):
                await self._carry_out(await self._check_vetting(action))
            waiting = self._carry_out_now(after)

    async def _authenticate(self, token: str) -> list[Action]:
        """Check the token, listen for its session's end, then check the session is
        active: in that order, so an end before the check fails it and an end
        after it is heard (the store announces an end after committing it)."""
        try:
            sessions = self._deps.sessions()
            principal, expires = verify_token(self._deps.settings, token)
            if principal.enrolment_only:
                return self._proto.auth_failed("a second factor must be enrolled first")
            channel = sessions.revocation_channel(principal.session_id)
            await self._deps.hub.attach(channel, self._revoked)
            self._session_channel = channel
            await require_active(self._deps.session_check or sessions, principal)
        except HTTPException as exc:
            return self._proto.auth_failed(str(exc.detail))
        except (PersistenceError, OSError) as exc:
            log.warning("ws auth: cannot check the token (%s)", exc)
            return self._proto.abort(CloseCode.TRY_AGAIN_LATER, "cannot authenticate now")
        self._count_under(principal.id)
        now = self._deps.monotonic()
        left_s = (expires - self._deps.clock()).total_seconds()
        return self._proto.auth_succeeded(principal, now=now, token_expires=now + left_s)

    def _count_under(self, account_id: UUID) -> None:
        """Count this socket as the account's newest here; close the account's
        oldest sockets past ``http.ws_max_sockets_per_account``
        (``gateway.ws.account_sockets``): never this one, the one its user holds."""
        held, cap = self._deps.account_sockets, self._deps.settings.http.ws_max_sockets_per_account
        self._account = account_id
        over = held.opened(account_id, self, cap)
        if not over:
            return
        if held.first_over(account_id):
            log.warning(
                "ws: account %s holds %d sockets here, its cap; each newer one closes "
                "its oldest (1008) until it holds fewer",
                account_id,
                cap,
            )
        for socket in over:
            socket.replaced()

    def replaced(self) -> None:
        """A newer socket of this socket's account took its place: close 1008."""
        self._carry_out_now(self._proto.abort(CloseCode.POLICY_VIOLATION, REPLACED_REASON))

    async def _subscribe(self, action: Subscribe) -> list[Action]:
        channel = push_channel(*action.audience.as_tuple())
        self._held = []
        try:
            await self._deps.hub.attach(channel, self._push)
        except PersistenceError as exc:
            log.warning("ws %s: cannot subscribe (%s)", channel, exc)
            return self._proto.abort(CloseCode.TRY_AGAIN_LATER, "pushes unavailable")
        self._channel = channel
        principal = self._proto.principal
        if action.audience.kind is AudienceKind.AGENT and principal is not None:
            # Listed for offers only while a socket lives (gateway.ws.presence).
            self._deps.agent_sockets.opened(self._socket_id, principal.id)
            self._announced = True
        if action.audience.kind is AudienceKind.ADMINS and self._deps.fleet_feed is not None:
            # Admin sockets only: the agents that moved (gateway.ws.fleet_feed).
            self._fleet = self._deps.fleet_feed
            self._fleet.attach(self._push)
        return []

    async def _resync(self, action: Resync) -> None:
        try:
            frames = await load_resync(
                self._deps.open_alerts(), action.audience, self._deps.clock()
            )
        except Exception as exc:
            code, message, retriable = describe_error(exc)
            if code == ErrorCode.INTERNAL:
                log.exception("ws %s: resync failed", self._channel)
            else:
                log.warning("ws %s: resync failed (%s)", self._channel, exc)
            frames = [error_frame(code, f"resync failed: {message}", retriable=retriable)]
        held, self._held = self._held or [], None
        for frame in frames:
            self._send(encode(frame))
        for text in held:
            self._send(text)

    async def _ask(self, action: AskEntity) -> list[Action]:
        entities = self._deps.entities()
        try:
            reply = await entities.ask(action.kind, action.entity_id, action.message)
        except Exception as exc:
            code, message, retriable = describe_error(exc)
            if code == ErrorCode.INTERNAL:
                log.error("ws %s: %s failed", self._channel, action.frame_type, exc_info=exc)
            return self._proto.action_failed(action.ref, code, message, retriable=retriable)
        return self._proto.ask_succeeded(action, reply)

    async def _check_vetting(self, action: CheckVetting) -> list[Action]:
        approved = self._deps.approved_agents
        if approved.approved(action.agent_id):
            return self._proto.vetting_checked(action, Vetting.APPROVED)
        try:
            vetting = await self._deps.vetting().vetting_of(action.agent_id)
            approved.remember(action.agent_id, vetting)
        except PersistenceError as exc:
            log.warning("ws %s: cannot read the vetting (%s)", self._channel, exc)
            code, message, retriable = describe_error(exc)
            return self._proto.action_failed(action.ask.ref, code, message, retriable=retriable)
        return self._proto.vetting_checked(action, vetting)

    def _tell(self, action: TellEntity) -> None:
        message = action.message
        if self._announced and isinstance(message, LocationFix):
            # Kept to repeat if a shard restarts (gateway.ws.presence).
            stamped = message
            if message.recorded_at is None:
                stamped = dataclasses.replace(message, recorded_at=self._deps.clock())
                action = dataclasses.replace(action, message=stamped)
            self._deps.agent_sockets.located(self._socket_id, stamped)
        try:
            entities = self._deps.entities()
            tell = entities.tell_lazily if action.lazy else entities.tell
            tell(action.kind, action.entity_id, action.message)
        except Exception as exc:
            # Fire-and-forget by contract (locations, heartbeats): the next one will do.
            log.warning("ws: cannot tell %s %s (%s)", action.kind, action.entity_id, exc)

    def _store_location(self, action: StoreLocation) -> list[Action]:
        """Hand the fix to the process's location ingest (Redis, geofencing, history)."""
        subject = self._subject
        if subject is None or subject[0] != action.subject_id:
            key = subject_key(action.role, action.subject_id)
            subject = self._subject = (action.subject_id, key)
        try:
            seen = sighting(
                self._deps.settings.geofence,
                action.role,
                action.location,
                self._deps.clock(),
                subject[1],
            )
        except StaleFix as exc:
            return self._proto.action_failed(action.ref, ErrorCode.INVALID_DATA.value, str(exc))
        if not self._deps.locations.submit(seen):
            return self._proto.location_refused(action.ref, self._deps.monotonic())
        if self._proto.untold_refusals:
            return self._proto.refusals_due(self._deps.monotonic())
        return []

    # --- writing --------------------------------------------------------------------

    def _push(self, text: str) -> None:
        """Hub sink: a pushed frame for this socket."""
        if self._held is not None:
            self._held.append(text)
        else:
            self._send(text)

    def _revoked(self, _message: str) -> None:
        """Hub sink of the session's revocation channel: the session has ended."""
        for action in self._proto.revoked():
            if isinstance(action, CloseSocket):
                self._close(action.code, action.reason)

    def _send(self, text: str) -> None:
        offer = _offer_of(text) if self._announced and not self._proto.acks_offers else None
        self._enqueue(text if offer is None else offer)

    def _enqueue(self, item: str | _Offer) -> None:
        if self._closing:
            return
        if self._out.qsize() < self._queue_limit:
            self._out.put_nowait(item)
        else:
            # Too slow to read its pushes: drop the backlog and close; the app
            # reconnects and resyncs (pushes are at-most-once anyway).
            log.warning("ws %s: send queue full; closing a slow socket", self._channel)
            while not self._out.empty():
                self._out.get_nowait()
            self._proto.abort(CloseCode.TRY_AGAIN_LATER, "too slow")
            self._close(CloseCode.TRY_AGAIN_LATER, "too slow")

    def _close(self, code: int, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self._out.put_nowait(_Close(code, reason))

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self._out.get()
                if isinstance(item, _Close):
                    if self._ws.application_state is WebSocketState.CONNECTED:
                        await self._ws.close(item.code, item.reason)
                    return
                if isinstance(item, _Offer):
                    await self._ws.send_text(item.text)
                    # Written: the gateway's acknowledgement for an app that does not ack.
                    for action in self._proto.offer_written(item.alert_id):
                        if isinstance(action, TellEntity):
                            self._tell(action)
                    continue
                await self._ws.send_text(item)
        except (WebSocketDisconnect, ConnectionError, RuntimeError) as exc:
            # The peer went away mid-send (Starlette raises RuntimeError after a close).
            log.debug("ws: send failed, peer gone (%s)", exc)
