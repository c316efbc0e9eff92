"""Location fixes from a gateway to a shard over a plain TCP stream, beside Ray (issue 20).

A Ray actor call costs both sides about the same whatever it carries:
``bench/ray_call.py`` measured 0.65-0.85 ms of the caller's CPU and 0.70-0.93 ms
of the actor's for a call of 125 to 1,000 packed fixes, and 0.03-0.09 ms each
for the same bytes over a plain stream. A gateway flushes its fixes to each
shard 40 times a second, so on the phone path (10,000 fixes/s, two gateways)
the calls alone took ~0.1 cores of the machine's two.

So the packed batches (``cluster.tracking.pack_fixes``) go over one TCP
connection per gateway process and shard, and everything else stays a Ray
call: the shard actor opens a listener when first asked (:class:`FixStreamServer`,
``ShardActor.fix_stream``), on its node's address and a port of the system's
choosing, with a random token that only a Ray call to the actor gives. A
connection must send the token first; one that does not, or sends a frame
that breaks the rules below, is closed and logged. Each batch is answered, in
order, with how many of its fixes were malformed, so the gateway's
backpressure (a limit on batches unanswered per shard) works as with calls.

The client (:class:`FixStreams`) connects in the background when it first
has a batch for a shard; until the connection is up, and whenever it is down
(a shard restarting, a refused token), batches go as Ray calls, and a new
connection is tried at most every ``retry_s``. Fixes are best effort by
contract (a subject's entity drops a fix older than its last), so a batch
lost with a broken connection is counted as failed, as a failed call is.

Wire, all integers little-endian: the client's first 32 bytes are the token;
then per batch a header of three unsigned 32-bit lengths (the subject keys as
UTF-8, the numbers, the times: the three parts of ``PackedFixes``) and the
parts; the shard answers each batch with one unsigned 32-bit count. A part is
at most :data:`MAX_PART` bytes.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from cluster.errors import ClusterUnavailable
from cluster.tracking import PackedFixes

log = logging.getLogger(__name__)

TOKEN_BYTES: Final = 32
#: A part of a batch at most (a call carries up to ``FIXES_PER_CALL`` fixes, ~75 KB).
MAX_PART: Final = 1 << 20
#: Seconds a new connection has to send its token.
HANDSHAKE_S: Final = 5.0
#: A refused connection is logged at most this often (a scanner or a flood of
#: bad connections would fill the shard's log); the next warning counts the rest.
REFUSAL_LOG_EVERY_S: Final = 10.0

_HEADER: Final = struct.Struct("<III")
_ANSWER: Final = struct.Struct("<I")

#: Where a shard's listener is: host, port and the token it wants first.
Address = tuple[str, int, bytes]


class BadFrame(ValueError):
    """Bytes that break the stream's rules; the connection is closed."""


def encode_batch(packed: PackedFixes) -> bytes:
    """One batch as it goes on the wire: the header, then the three parts."""
    keys = packed[0].encode()
    return _HEADER.pack(len(keys), len(packed[1]), len(packed[2])) + keys + packed[1] + packed[2]


def part_sizes(header: bytes) -> tuple[int, int, int]:
    """The three part lengths a header announces; :class:`BadFrame` past ``MAX_PART``."""
    sizes = _HEADER.unpack(header)
    if max(sizes) > MAX_PART:
        raise BadFrame(f"a part of {max(sizes)} bytes (at most {MAX_PART})")
    return sizes


async def read_batch(reader: asyncio.StreamReader) -> PackedFixes:
    """The next batch; ``IncompleteReadError`` at the end of the stream,
    :class:`BadFrame` for one that breaks the rules."""
    keys_size, numbers_size, times_size = part_sizes(await reader.readexactly(_HEADER.size))
    keys = await reader.readexactly(keys_size)
    numbers = await reader.readexactly(numbers_size)
    times = await reader.readexactly(times_size)
    try:
        return keys.decode(), numbers, times
    except UnicodeDecodeError as exc:
        raise BadFrame(f"subject keys are not UTF-8: {exc}") from exc


class FixStreamServer:
    """A shard's listener: each connection's batches go to ``track`` one after the
    other, each answered with what ``track`` returns (the malformed fixes)."""

    def __init__(
        self,
        track: Callable[[PackedFixes], Awaitable[int]],
        host: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._track = track
        self._host = host
        self._clock = clock
        self._refusal_logged_at: float | None = None
        self._refusals_unlogged = 0
        self._token = secrets.token_bytes(TOKEN_BYTES)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        #: Batches taken over streams, and connections refused (token or frame).
        self.batches = 0
        self.refused = 0

    async def address(self) -> Address:
        """Where to connect, listening from the first call on."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self._host, 0)
        port = int(self._server.sockets[0].getsockname()[1])
        return self._host, port, self._token

    def close(self) -> None:
        """Stop listening and close every connection (their batches in flight are
        the gateways' to count as failed)."""
        if self._server is not None:
            self._server.close()
        for writer in self._connections:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        self._connections.add(writer)
        try:
            async with asyncio.timeout(HANDSHAKE_S):
                token = await reader.readexactly(TOKEN_BYTES)
            if not hmac.compare_digest(token, self._token):
                raise BadFrame("a wrong token")
            while True:
                packed = await read_batch(reader)
                rejected = await self._track(packed)
                self.batches += 1
                writer.write(_ANSWER.pack(rejected))
                # A batch already read in full awaits nothing: let the shard's
                # other work (entities' commits and pushes) run between batches,
                # as it does between Ray calls.
                await asyncio.sleep(0)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the gateway went away (or the connection broke): its next one will do
        except (BadFrame, TimeoutError) as exc:
            self._refuse(peer, str(exc) or "no token in time")
        finally:
            self._connections.discard(writer)
            writer.close()

    def _refuse(self, peer: object, reason: str) -> None:
        """Count a refused connection; warn of it unless one was logged under
        ``REFUSAL_LOG_EVERY_S`` ago (then the next warning counts it)."""
        self.refused += 1
        now = self._clock()
        last = self._refusal_logged_at
        if last is not None and now - last < REFUSAL_LOG_EVERY_S:
            self._refusals_unlogged += 1
            return
        unlogged, self._refusals_unlogged = self._refusals_unlogged, 0
        self._refusal_logged_at = now
        more = f" ({unlogged} more refused since the last warning)" if unlogged else ""
        log.warning("fix stream: a connection from %s closed: %s%s", peer, reason, more)


@dataclass
class _Connection:
    loop: asyncio.AbstractEventLoop
    writer: asyncio.StreamWriter
    unanswered: deque[asyncio.Future[object]] = field(default_factory=deque)


class FixStreams:
    """A client's streams to the shards: :meth:`send` puts a batch on shard's
    stream, or answers None while there is none (the caller then calls)."""

    def __init__(
        self,
        address_of: Callable[[int], Awaitable[Address]],
        *,
        retry_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._address_of = address_of
        self._retry_s = retry_s
        self._clock = clock
        self._open: dict[int, _Connection] = {}
        self._connecting: set[int] = set()
        self._failed_at: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: Batches sent over streams.
        self.sent = 0

    def send(self, shard: int, packed: PackedFixes) -> asyncio.Future[object] | None:
        """The batch's answer to come (the count of malformed fixes), or None when
        ``shard`` has no stream open from this event loop (one is then opened in
        the background, unless the last try failed under ``retry_s`` ago)."""
        loop = asyncio.get_running_loop()
        connection = self._open.get(shard)
        if connection is not None and (
            connection.loop is not loop or connection.writer.is_closing()
        ):
            self._drop(shard, connection, "closed")
            connection = None
        if connection is None:
            self._connect_soon(shard, loop)
            return None
        answer: asyncio.Future[object] = loop.create_future()
        connection.unanswered.append(answer)
        connection.writer.write(encode_batch(packed))
        self.sent += 1
        return answer

    def is_open(self, shard: int) -> bool:
        """Whether batches for ``shard`` go over a stream now."""
        return shard in self._open

    def close(self) -> None:
        """Close every stream; batches unanswered fail."""
        for shard, connection in list(self._open.items()):
            self._drop(shard, connection, "closed by the client")
        for task in self._tasks:
            task.cancel()

    def _connect_soon(self, shard: int, loop: asyncio.AbstractEventLoop) -> None:
        failed_at = self._failed_at.get(shard)
        if shard in self._connecting or (
            failed_at is not None and self._clock() - failed_at < self._retry_s
        ):
            return
        self._connecting.add(shard)
        self._spawn(loop, self._connect(shard, loop))

    async def _connect(self, shard: int, loop: asyncio.AbstractEventLoop) -> None:
        try:
            host, port, token = await self._address_of(shard)
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(token)
        except Exception as exc:  # the shard away, or a refusal: calls go on meanwhile
            self._failed_at[shard] = self._clock()
            log.info("fix stream to shard %d not opened (%s); calls meanwhile", shard, exc)
            return
        finally:
            self._connecting.discard(shard)
        connection = _Connection(loop, writer)
        self._open[shard] = connection
        self._failed_at.pop(shard, None)
        self._spawn(loop, self._read(shard, connection, reader))

    async def _read(
        self, shard: int, connection: _Connection, reader: asyncio.StreamReader
    ) -> None:
        """Answer the batches in the order they were sent, until the stream ends."""
        why = "ended"
        try:
            while True:
                (rejected,) = _ANSWER.unpack(await reader.readexactly(_ANSWER.size))
                if not connection.unanswered:
                    why = "an answer to no batch"
                    break
                answer = connection.unanswered.popleft()
                if not answer.done():
                    answer.set_result(rejected)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            why = f"ended ({type(exc).__name__})"
        finally:
            if self._open.get(shard) is connection:
                self._failed_at[shard] = self._clock()
            self._drop(shard, connection, why)

    def _drop(self, shard: int, connection: _Connection, why: str) -> None:
        if self._open.get(shard) is connection:
            del self._open[shard]
        if connection.loop.is_closed():
            return  # its loop, its batches and their waiters are gone already
        if connection.unanswered:
            log.warning(
                "fix stream to shard %d %s with %d batches unanswered",
                shard,
                why,
                len(connection.unanswered),
            )
        while connection.unanswered:
            answer = connection.unanswered.popleft()
            if not answer.done():
                answer.set_exception(ClusterUnavailable(f"fix stream to shard {shard} {why}"))
        connection.writer.close()

    def _spawn(self, loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


__all__ = [
    "MAX_PART",
    "REFUSAL_LOG_EVERY_S",
    "TOKEN_BYTES",
    "Address",
    "BadFrame",
    "FixStreamServer",
    "FixStreams",
    "encode_batch",
    "part_sizes",
    "read_batch",
]
