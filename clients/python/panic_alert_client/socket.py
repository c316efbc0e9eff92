"""The ``/ws`` protocol as an app lives it: :class:`AsyncSocket`.

One socket per app session (API.md, "WebSocket"). It authenticates with the
client's current access token, pings every third of ``auth.ok``'s
``heartbeat_timeout_s`` (±10 %), and hands out every server frame, typed
(:mod:`panic_alert_client.frames`), through ``async for frame in socket``.

Guarantees:

* **It stays connected.** When the connection closes or breaks for any
  reason but :meth:`AsyncSocket.close`, it reconnects after a full-jitter
  back-off (0.5 s doubling to 30 s, reset by every successful ``auth.ok``).
  A close with 4401 (token expired, session revoked) or an ``auth`` refused
  first refreshes the token; when no refresh works (the session was ended:
  logout, suspension, a spent refresh token) iteration raises
  :class:`~panic_alert_client.errors.SessionEnded` and the socket stops.
* **It says again what the server forgot.** After each reconnect it sends the
  last ``agent.status`` given through :meth:`AsyncSocket.agent_status` and
  then runs ``on_resync`` (in a task of its own, so it may use the socket):
  pushes are at-most-once, so an app re-reads its state over REST there. The
  server also repeats pending offers and open alerts (frames with
  ``resync=True``); each ``auth.ok`` is handed out too, so an app sees when
  it reconnected.
* **Offers are acknowledged** (``acks_offers``): with ``auto_ack_offers`` (the
  default) an ``offer.received`` goes out as soon as an ``alert.offer`` is
  read, before the app sees it; without, the app calls
  :meth:`AsyncSocket.offer_received` itself (the offer moves on to another
  agent when nobody acknowledges it within the server's few seconds).
* Frames are kept in order in an unbounded queue; read them.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any
from uuid import UUID

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from panic_alert_client.backoff import Backoff, ping_interval
from panic_alert_client.errors import (
    ClientError,
    FrameRefused,
    ProtocolError,
    SessionEnded,
    TransportError,
)
from panic_alert_client.frames import (
    Ack,
    AlertOffer,
    AuthOk,
    ErrorFrame,
    ServerFrame,
    client_frame,
    parse_frame,
)

if TYPE_CHECKING:
    from panic_alert_client.aio import AsyncClient

log = logging.getLogger(__name__)

#: Runs after each reconnect (not the first connect), given the socket.
ResyncCallback = Callable[["AsyncSocket"], Awaitable[None]]

#: The close code of an unauthenticated socket (API.md): refresh, then reconnect.
UNAUTHENTICATED = 4401
#: The largest frame accepted from the server.
MAX_FRAME_BYTES = 1 << 20

_PING = client_frame("ping", {})


class _Refused(Exception):
    """The server closed the socket with 4401 during ``auth``."""


class _End:
    """Queued after the last frame: iteration stops (raising ``error`` when set)."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class AsyncSocket:
    """An app's ``/ws`` connection, reconnecting; see the module's guarantees."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        acks_offers: bool = True,
        auto_ack_offers: bool = True,
        on_resync: ResyncCallback | None = None,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        open_timeout_s: float = 10.0,
        reply_timeout_s: float = 10.0,
    ) -> None:
        self._client = client
        self._acks_offers = acks_offers
        self._auto_ack = acks_offers and auto_ack_offers
        self._on_resync = on_resync
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._open_timeout_s = open_timeout_s
        self._reply_timeout_s = reply_timeout_s
        self._frames: asyncio.Queue[ServerFrame | _End] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._ended = False
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiting: dict[str, asyncio.Future[Ack]] = {}
        self._ids = itertools.count(1)
        self._last_status: str | None = None
        #: The latest ``auth.ok`` (who this socket is, the heartbeat timeout).
        self.auth: AuthOk | None = None
        #: Successful reconnections so far (the first connect not counted).
        self.reconnects = 0

    # --- life -------------------------------------------------------------------------

    async def connect(self) -> AuthOk:
        """Open and authenticate (refreshing the token once if it was refused).

        Raises what the first attempt met (:class:`SessionEnded`,
        :class:`TransportError`, ...); from then on the socket reconnects by itself.
        """
        if self._runner is not None:
            raise RuntimeError("this socket is already connected")
        ws, auth = await self._establish()
        self._runner = asyncio.create_task(self._run(ws, auth))
        return auth

    async def close(self) -> None:
        """Close for good: no reconnect; iteration ends after the frames already read."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            await ws.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for task in list(self._tasks):
            task.cancel()
        self._fail_waiting(TransportError("the socket was closed"))
        self._finish(None)

    async def __aenter__(self) -> AsyncSocket:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- reading ----------------------------------------------------------------------

    def __aiter__(self) -> AsyncSocket:
        return self

    async def __anext__(self) -> ServerFrame:
        item = await self._frames.get()
        if isinstance(item, _End):
            self._frames.put_nowait(item)  # every later read ends too
            if item.error is not None:
                raise item.error
            raise StopAsyncIteration
        return item

    async def recv(self, timeout_s: float | None = None) -> ServerFrame:
        """The next frame (TimeoutError after ``timeout_s``; StopAsyncIteration once closed)."""
        async with asyncio.timeout(timeout_s):
            return await self.__anext__()

    # --- the agent's and user's frames -----------------------------------------------

    async def agent_status(self, status: str) -> Ack:
        """``available``, ``busy``, ``on_break`` or ``offline``; said again after each
        reconnect. Waits for the server's ``ack`` (:class:`FrameRefused` when refused,
        e.g. ``forbidden`` for an agent pending approval)."""
        self._last_status = status
        return await self.request("agent.status", {"status": status})

    async def location(
        self,
        latitude: float,
        longitude: float,
        *,
        accuracy_m: float | None = None,
        heading: float | None = None,
        speed_mps: float | None = None,
        recorded_at: datetime | None = None,
    ) -> None:
        """A position fix (users and agents); fire-and-forget."""
        data: dict[str, Any] = {
            "latitude": latitude,
            "longitude": longitude,
            "accuracy_m": accuracy_m,
            "heading": heading,
            "speed_mps": speed_mps,
            "recorded_at": recorded_at.isoformat() if recorded_at is not None else None,
        }
        await self.send("location", data)

    async def offer_received(self, alert_id: UUID | str) -> None:
        """Acknowledge an ``alert.offer`` (the device has it); no answer comes."""
        await self.send("offer.received", {"alert_id": str(alert_id)})

    async def accept(self, alert_id: UUID | str) -> Ack:
        """Take the offered alert; the ack's ``status`` is the alert's (``assigned``)."""
        return await self.request("offer.accept", {"alert_id": str(alert_id)})

    async def decline(self, alert_id: UUID | str, reason: str | None = None) -> Ack:
        return await self.request("offer.decline", {"alert_id": str(alert_id), "reason": reason})

    async def alert_status(self, alert_id: UUID | str, status: str, note: str | None = None) -> Ack:
        """Move the agent's alert (``en_route``, ``on_scene``, ``resolved``)."""
        data = {"alert_id": str(alert_id), "status": status, "note": note}
        return await self.request("alert.status", data)

    async def message(self, alert_id: UUID | str, text: str) -> Ack:
        """Write a chat message to the alert (its user, or its assigned agent); the
        ack's ``message_id`` is the one it is pushed with (``alert.message``).
        :class:`FrameRefused` ``forbidden`` when the caller may not write (or the
        alert is over), ``invalid_data`` for a text that is not 1-500 characters."""
        return await self.request("alert.message", {"alert_id": str(alert_id), "text": text})

    async def ping(self) -> None:
        await self.send("ping", {})

    # --- sending ----------------------------------------------------------------------

    async def send(self, kind: str, data: Mapping[str, Any], frame_id: str | None = None) -> None:
        """Send one frame once connected (waiting up to the reply timeout for a
        reconnect); :class:`TransportError` when there is no connection to send on."""
        ws = await self._open_connection()
        try:
            await ws.send(client_frame(kind, data, frame_id))
        except websockets.ConnectionClosed as exc:
            raise TransportError(f"{kind}: the socket closed") from exc

    async def request(self, kind: str, data: Mapping[str, Any]) -> Ack:
        """Send a frame with an id and wait for its ``ack`` (or :class:`FrameRefused`)."""
        frame_id = f"c{next(self._ids)}"
        reply: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiting[frame_id] = reply
        try:
            await self.send(kind, data, frame_id)
            async with asyncio.timeout(self._reply_timeout_s):
                return await reply
        finally:
            self._waiting.pop(frame_id, None)

    async def _open_connection(self) -> ClientConnection:
        if self._ended:
            raise TransportError("the socket is closed")
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                await self._connected.wait()
        except TimeoutError as exc:
            raise TransportError("the socket is not connected") from exc
        ws = self._ws
        if ws is None:
            raise TransportError("the socket is not connected")
        return ws

    # --- connecting -------------------------------------------------------------------

    async def _establish(self) -> tuple[ClientConnection, AuthOk]:
        """One connection, authenticated; a refused ``auth`` gets one refresh and one retry."""
        try:
            return await self._open()
        except _Refused:
            await self._client.refresh()  # SessionEnded when the session is over
        try:
            return await self._open()
        except _Refused as exc:
            raise SessionEnded(401, title="Session ended", detail="auth refused") from exc

    async def _open(self) -> tuple[ClientConnection, AuthOk]:
        token = self._client.access_token
        if token is None:
            raise SessionEnded(401, title="Session ended", detail="not signed in")
        ws = await ws_connect(
            self._client.ws_url,
            open_timeout=self._open_timeout_s,
            ping_interval=None,  # the API's own ping frames keep it alive
            close_timeout=2,
            max_size=MAX_FRAME_BYTES,
        )
        try:
            auth = {"token": token, "acks_offers": self._acks_offers}
            await ws.send(client_frame("auth", auth))
            async with asyncio.timeout(self._open_timeout_s):
                reply = parse_frame(await ws.recv())
            if not isinstance(reply, AuthOk):
                raise ProtocolError(f"expected auth.ok, got {reply.type}")
        except websockets.ConnectionClosed as exc:
            await ws.close()
            if exc.rcvd is not None and exc.rcvd.code == UNAUTHENTICATED:
                raise _Refused from exc
            raise
        except BaseException:
            await ws.close()
            raise
        return ws, reply

    async def _run(self, ws: ClientConnection, auth: AuthOk) -> None:
        """Read the connection; when it ends, reconnect until closed or the session ends."""
        try:
            while True:
                await self._serve(ws, auth)
                if self._closing:
                    return
                refresh = ws.close_code == UNAUTHENTICATED
                log.info("socket closed (%s %s); reconnecting", ws.close_code, ws.close_reason)
                ws, auth = await self._reconnect(refresh)
                self.reconnects += 1
                if self._last_status is not None:
                    status = client_frame("agent.status", {"status": self._last_status}, "resync")
                    with contextlib.suppress(websockets.ConnectionClosed):
                        await ws.send(status)
                if self._on_resync is not None:
                    self._spawn(self._resync())
        except SessionEnded as exc:
            self._finish(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug: end iteration with it rather than hang
            log.exception("socket runner failed")
            self._finish(exc)

    async def _serve(self, ws: ClientConnection, auth: AuthOk) -> None:
        self._ws, self.auth = ws, auth
        self._frames.put_nowait(auth)
        self._connected.set()
        pinger = asyncio.create_task(self._ping(ws, auth.heartbeat_timeout_s))
        try:
            async for text in ws:
                try:
                    frame = parse_frame(text)
                except ProtocolError:
                    log.warning("not a frame, skipped: %.200r", text)
                    continue
                await self._deliver(ws, frame)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._connected.clear()
            self._ws = None
            pinger.cancel()
            self._fail_waiting(TransportError("the socket closed before the answer"))

    async def _deliver(self, ws: ClientConnection, frame: ServerFrame) -> None:
        if isinstance(frame, AlertOffer) and self._auto_ack:
            received = client_frame("offer.received", {"alert_id": str(frame.alert_id)})
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(received)
        if isinstance(frame, Ack | ErrorFrame) and frame.ref is not None:
            waiter = self._waiting.pop(frame.ref, None)
            if waiter is not None and not waiter.done():
                if isinstance(frame, Ack):
                    waiter.set_result(frame)
                else:
                    waiter.set_exception(
                        FrameRefused(frame.code, frame.message, retriable=frame.retriable)
                    )
        self._frames.put_nowait(frame)

    async def _reconnect(self, refresh: bool) -> tuple[ClientConnection, AuthOk]:
        """Back off, (refresh,) connect; again until it works or the session is over."""
        failures = 0
        while True:
            await asyncio.sleep(self._backoff.delay(failures, self._rng))
            try:
                if refresh:
                    await self._client.refresh()  # SessionEnded ends the socket
                    refresh = False
                return await self._establish()
            except SessionEnded:
                raise
            except (ClientError, OSError, TimeoutError, websockets.WebSocketException) as exc:
                failures += 1
                log.info("reconnect failed (%s: %s); attempt %d", type(exc).__name__, exc, failures)

    async def _ping(self, ws: ClientConnection, heartbeat_timeout_s: float) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(ping_interval(heartbeat_timeout_s, self._rng))
                await ws.send(_PING)

    async def _resync(self) -> None:
        assert self._on_resync is not None
        try:
            await self._on_resync(self)
        except Exception:
            log.exception("on_resync failed")

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _fail_waiting(self, error: ClientError) -> None:
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(error)
        self._waiting.clear()

    def _finish(self, error: BaseException | None) -> None:
        if not self._ended:
            self._ended = True
            self._frames.put_nowait(_End(error))
