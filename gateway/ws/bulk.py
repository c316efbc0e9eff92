"""``GET /ws/locations``: the bulk feed's socket, for integration keys (issue 20).

One socket streams many subjects' fixes (``gateway.location_batches``).
Frames are JSON text, as on ``/ws``:

* first, within ``http.ws_auth_timeout_s``: ``{"type": "auth", "data":
  {"token": "<integration key>"}}``, answered ``auth.ok {integration_id,
  name, max_fixes}`` or closed with 4401 (or with 1013, reason
  ``SPREAD_REASON``, when ``serve`` runs several gateway processes and another
  holds fewer bulk sockets than this one: connect again, and the kernel may
  hand the new connection to another; ``gateway.ports.BulkSpread``; or with
  1008, reason ``KEY_CAP_REASON``, when the key already holds
  ``http.ws_max_bulk_sockets_per_key`` open sockets on this gateway process,
  ``gateway.ws.key_sockets``). An open
  socket is closed the same way after a frame's answer when its gateway holds
  two or more sockets than another (sockets opened while the others started or
  one was restarting): connect again and send again any frame not answered;
* ``{"type": "locations", "id"?: str, "data": {"fixes": [...]}}``, answered
  ``locations.ok {ref?, accepted, invalid, refused, errors}`` once every fix
  is queued for geofencing (or refused by index); a batch that is not
  ``{"fixes": [...]}`` is an ``error`` frame ``invalid_data``;
* ``ping`` → ``pong``; anything else is an ``error`` frame (``bad_frame``,
  ``unknown_type``, ``binary_unsupported``) and the socket stays open.

Frames are answered one at a time, in order, so a subject's fixes are
taken in the order sent across frames too. Once the socket is authenticated
its frames are answered as they are read (the server's text handler,
``gateway.ws.transport``: no task woken, no message queued, the answer
written at once), unless one is queued or the socket is not taking writes:
then the reader takes them, in order, as before. A frame above
``http.ws_max_bulk_frame_bytes`` closes the socket with 1009; nothing for
``http.ws_heartbeat_timeout_s`` closes it with 4408. The socket listens to
its key's revocation channel from before the key is checked, so a revoked
key's socket is closed with 4401 as soon as the revocation is announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import HTTPException
from pydantic import BaseModel
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from actors.store_errors import PersistenceError
from config.settings import Settings
from gateway.auth.integration_keys import Integration, parse_key, revocation_session
from gateway.deps import authenticate_integration
from gateway.location_batches import BatchBody, BatchOutcome, NotABatch, receive
from gateway.locations import LocationSink, utcnow
from gateway.ports import BulkSpread, IntegrationKeys, Sessions
from gateway.ws.alarm import Alarm
from gateway.ws.codes import CloseCode, ErrorCode
from gateway.ws.frames import (
    AuthData,
    ErrorData,
    FrameError,
    PingData,
    PongData,
    encode,
    error_frame,
    read_envelope,
    server_frame,
)
from gateway.ws.hub import PushHub
from gateway.ws.key_sockets import KeySockets
from gateway.ws.protocol import too_big
from gateway.ws.transport import TEXT_HANDLER

log = logging.getLogger(__name__)


#: The close reason of a bulk socket sent to another gateway process: this one
#: holds more than another (``gateway.ports.BulkSpread``). Connect again at once.
SPREAD_REASON = "another gateway holds fewer bulk sockets: connect again"
#: The close reason (1008) of a socket past ``http.ws_max_bulk_sockets_per_key``:
#: close another of the key's sockets first.
KEY_CAP_REASON = "too many bulk sockets for this integration key"


@dataclass(frozen=True)
class BulkDeps:
    settings: Settings
    hub: PushHub
    sessions: Callable[[], Sessions]
    keys: Callable[[], IntegrationKeys]
    locations: LocationSink
    #: This process's open bulk sockets by key (``http.ws_max_bulk_sockets_per_key``):
    #: the app's one (``GatewayState.bulk_keys``), not one per socket.
    key_sockets: KeySockets
    #: This process's bulk sockets beside the other gateways' (None: the only one).
    spread: BulkSpread | None = None


class BulkAuthOk(BaseModel):
    """``auth.ok`` of ``/ws/locations``: which key, and the most fixes per batch."""

    integration_id: UUID
    name: str
    max_fixes: int


class LocationsOk(BatchOutcome):
    """``locations.ok``: what came of one ``locations`` frame (``ref`` echoes its ``id``)."""

    ref: str | None = None


#: The frames of ``/ws/locations`` by type: each one's ``data`` (for the OpenAPI document).
BULK_CLIENT_FRAMES: dict[str, type[BaseModel]] = {
    "auth": AuthData,
    "locations": BatchBody,
    "ping": PingData,
}
BULK_SERVER_FRAMES: dict[str, type[BaseModel]] = {
    "auth.ok": BulkAuthOk,
    "locations.ok": LocationsOk,
    "pong": PongData,
    "error": ErrorData,
}


class BulkSocket:
    def __init__(self, websocket: WebSocket, deps: BulkDeps) -> None:
        self._ws = websocket
        self._deps = deps
        self._channel: str | None = None
        self._closed = False
        self._background: set[asyncio.Task[None]] = set()
        #: The reader waits in ``receive()`` (frames may be answered as they are read).
        self._reader_idle = False
        #: When the last frame came (monotonic): the idle close counts from it.
        self._last_frame = 0.0
        self._idle: Alarm | None = None
        #: Counted in ``deps.spread`` (released when the socket ends).
        self._counted = False
        #: The key this socket is counted for in ``deps.key_sockets``.
        self._key_held: UUID | None = None

    async def run(self) -> None:
        await self._ws.accept()
        register = self._ws.scope.get("extensions", {}).get(TEXT_HANDLER)
        try:
            integration = await self._authenticate()
            if integration is None:
                return
            if register is not None:
                register(self._on_text)
            await self._serve(integration)
        except WebSocketDisconnect:
            pass
        finally:
            if register is not None:
                register(None)
            if self._idle is not None:
                self._idle.cancel()
            if self._channel is not None:
                self._deps.hub.detach(self._channel, self._revoked)
            if self._counted and self._deps.spread is not None:
                self._deps.spread.release()
            if self._key_held is not None:
                self._deps.key_sockets.give_back(self._key_held)

    async def _authenticate(self) -> Integration | None:
        http = self._deps.settings.http
        try:
            message = await asyncio.wait_for(self._ws.receive(), http.ws_auth_timeout_s)
        except TimeoutError:
            await self._close(CloseCode.UNAUTHENTICATED, "no auth frame in time")
            return None
        if message["type"] == "websocket.disconnect":
            return None
        raw = message.get("text") or message.get("bytes") or ""
        limit = http.ws_max_auth_frame_bytes
        if too_big(raw, limit) if isinstance(raw, str) else len(raw) > limit:
            await self._close(CloseCode.TOO_BIG, "frame too big")
            return None
        frame = read_envelope(raw)
        if isinstance(frame, FrameError):
            await self._close(
                CloseCode.UNAUTHENTICATED, f"the first frame must be auth: {frame.message}"
            )
            return None
        token = frame.data.get("token") if isinstance(frame.data, dict) else None
        if frame.type != "auth" or not isinstance(token, str):
            await self._close(CloseCode.UNAUTHENTICATED, "the first frame must be auth")
            return None
        parsed = parse_key(token)
        if parsed is None:
            await self._close(CloseCode.UNAUTHENTICATED, "invalid or revoked integration key")
            return None
        try:
            # Listen first, then check: a revocation committed after the check is heard.
            channel = self._deps.sessions().revocation_channel(revocation_session(parsed[0]))
            await self._deps.hub.attach(channel, self._revoked)
            self._channel = channel
            integration = await authenticate_integration(self._deps.keys(), token)
        except HTTPException:
            await self._close(CloseCode.UNAUTHENTICATED, "invalid or revoked integration key")
            return None
        except (PersistenceError, OSError) as exc:
            log.warning("ws/locations auth: cannot check the key (%s)", exc)
            await self._close(CloseCode.TRY_AGAIN_LATER, "cannot authenticate now")
            return None
        spread = self._deps.spread
        if spread is not None:
            if not spread.admit():
                await self._close(CloseCode.TRY_AGAIN_LATER, SPREAD_REASON)
                return None
            self._counted = True
        # After the spread: a socket landing on the gateway holding more is sent
        # to connect again before its key's count here is looked at, so a key
        # is refused here only where it cannot be spread further.
        cap, held = http.ws_max_bulk_sockets_per_key, self._deps.key_sockets
        if not held.take(integration.id, cap):
            if held.first_refusal(integration.id):
                log.warning(
                    "ws/locations: integration %s holds %d bulk sockets here, its cap; "
                    "more are closed 1008 until one of them closes",
                    integration.id,
                    cap,
                )
            await self._close(CloseCode.POLICY_VIOLATION, KEY_CAP_REASON)
            return None
        self._key_held = integration.id
        await self._send(
            encode(
                server_frame(
                    "auth.ok",
                    BulkAuthOk(
                        integration_id=integration.id,
                        name=integration.name,
                        max_fixes=self._deps.settings.geofence.bulk_max_fixes,
                    ),
                )
            )
        )
        return integration

    async def _serve(self, integration: Integration) -> None:
        http = self._deps.settings.http
        # The idle close is an alarm beside the reader (``gateway.ws.alarm``), not
        # a timeout on each receive, and frames the text handler answers never
        # wake the reader.
        self._last_frame = time.monotonic()
        self._idle = Alarm(self._idle_due)
        self._idle.arm(self._last_frame + http.ws_heartbeat_timeout_s, self._last_frame)
        while not self._closed:
            self._reader_idle = True
            try:
                message = await self._ws.receive()
            finally:
                self._reader_idle = False
            if message["type"] == "websocket.disconnect":
                return
            self._last_frame = time.monotonic()
            text = message.get("text")
            if text is None:
                await self._send(
                    encode(error_frame(ErrorCode.BINARY_UNSUPPORTED, "send text frames"))
                )
                continue
            if too_big(text, http.ws_max_bulk_frame_bytes):
                await self._close(CloseCode.TOO_BIG, "frame too big")
                return
            await self._send(self.answer(text))
            self._move_if_surplus(self._last_frame)

    def _on_text(self, text: str) -> bool | str:
        """The server's text handler: a frame's answer, made as the frame is read, or
        False to leave the frame to the reader (busy, closing, or a frame too big,
        which the reader closes the socket for)."""
        if not self._reader_idle or self._closed:
            return False
        if too_big(text, self._deps.settings.http.ws_max_bulk_frame_bytes):
            return False
        self._last_frame = time.monotonic()
        answer = self.answer(text)
        self._move_if_surplus(self._last_frame)
        return answer

    def _move_if_surplus(self, now: float) -> None:
        """Send this socket to another gateway process when this one holds two or
        more sockets than it (``BulkSpread.surplus``): closed after the answer just
        made (written first), its client connects again, and the kernel may hand
        the new connection to the gateway holding fewer."""
        spread = self._deps.spread
        if self._counted and spread is not None and spread.surplus(now):
            self._in_background(self._close(CloseCode.TRY_AGAIN_LATER, SPREAD_REASON))

    def _idle_due(self) -> None:
        """Close an idle socket (``ws_heartbeat_timeout_s`` without a frame), or wait
        for what is left of the period since its last frame."""
        if self._closed or self._idle is None:
            return
        now = time.monotonic()
        deadline = self._last_frame + self._deps.settings.http.ws_heartbeat_timeout_s
        if deadline > now:
            self._idle.arm(deadline, now)
            return
        self._in_background(self._close(CloseCode.IDLE_TIMEOUT, "idle: send ping"))

    def answer(self, text: str) -> str:
        """The answer to one frame of an authenticated socket (queues its fixes)."""
        frame = read_envelope(text)
        if isinstance(frame, FrameError):
            return encode(error_frame(frame.code, frame.message, frame.ref))
        if frame.type == "ping":
            return encode(server_frame("pong", PongData(ref=frame.id)))
        if frame.type != "locations":
            return encode(
                error_frame(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {frame.type!r}", frame.id)
            )
        geofence = self._deps.settings.geofence
        try:
            outcome = receive(frame.data, geofence, self._deps.locations, utcnow())
        except NotABatch as exc:
            return encode(error_frame(ErrorCode.INVALID_DATA, str(exc), frame.id))
        # Not ``LocationsOk(**outcome)``: validating a batch's errors again costs more
        # than the rest of its answer (the same JSON; ``ref`` only when given).
        data = outcome.model_dump(mode="json")
        if frame.id is not None:
            data["ref"] = frame.id
        return encode({"type": "locations.ok", "data": data})

    def _revoked(self, _message: str) -> None:
        if self._closed:
            return
        self._in_background(self._close(CloseCode.UNAUTHENTICATED, "integration key revoked"))

    def _in_background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send(self, text: str) -> None:
        if self._closed:
            return
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self._ws.send_text(text)

    async def _close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        if self._ws.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self._ws.close(code, reason)
