"""Per-sender ordering of calls into a shard: both ends of a sender's stream.

Ray runs an async actor's calls concurrently and, after a restart, retries
them in no particular order, so a shard cannot rely on arrival order. Each
client numbers its calls to a shard (``seq``, one stream per client and
shard) and sends the lowest number it still has in flight (``floor``):
everything below ``floor`` is known to be done. The shard admits calls of a
stream in ``seq`` order. A restarted shard knows nothing, and starts the
stream at the first ``floor`` it sees, which is exact: the calls from there
on are all in flight and will be retried. A gap that never fills (a caller
died mid-call) is skipped after ``gap_timeout`` seconds.

:class:`SenderStream` is the client's end (``cluster.client``: one per
shard), :class:`Sequencer` the shard's.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SenderStream:
    """A client's numbering of its calls to one shard. Not thread-safe."""

    next_seq: int = 0
    in_flight: set[int] = field(default_factory=set)

    def open(self) -> tuple[int, int]:
        """Number a new call: its ``seq`` and the ``floor`` (lowest still in flight)."""
        seq = self.next_seq
        self.next_seq += 1
        self.in_flight.add(seq)
        return seq, min(self.in_flight)

    def close(self, seq: int) -> None:
        """The call is done (answered, failed or given up on): the floor may pass it."""
        self.in_flight.discard(seq)


@dataclass(slots=True)
class _Stream:
    next: int
    waiting: dict[int, asyncio.Future[None]] = field(default_factory=dict)


class Sequencer:
    """Admits numbered calls of each stream in order. Not thread-safe (one event loop)."""

    def __init__(self, gap_timeout: float = 5.0) -> None:
        self._streams: dict[str, _Stream] = {}
        self._gap_timeout = gap_timeout
        self.gaps_skipped = 0

    async def turn(self, stream_id: str, seq: int, floor: int) -> None:
        """Wait until call ``seq`` may run; call :meth:`done` once it has enqueued its work."""
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = self._streams[stream_id] = _Stream(next=floor)
        elif stream.next < floor:
            stream.next = floor
            # Calls already waiting whose turn the floor has passed go now: a
            # fresh call with their number would (the client closed the seqs
            # below its floor, e.g. an ask that timed out).
            for waiting_seq, waiter in stream.waiting.items():
                if waiting_seq <= floor and not waiter.done():
                    waiter.set_result(None)
        if seq <= stream.next:  # its turn, or a retry of a call already admitted
            return
        future = asyncio.get_running_loop().create_future()
        stream.waiting[seq] = future
        try:
            await asyncio.wait_for(asyncio.shield(future), self._gap_timeout)
        except TimeoutError:
            if stream.next < seq:  # else a later floor or call passed it meanwhile
                self.gaps_skipped += 1
                log.warning(
                    "stream %s: calls %d..%d never arrived; going on",
                    stream_id,
                    stream.next,
                    seq - 1,
                )
                stream.next = seq
        finally:
            stream.waiting.pop(seq, None)

    def done(self, stream_id: str, seq: int) -> None:
        """Call ``seq`` has enqueued its work: admit the next one."""
        stream = self._streams.get(stream_id)
        if stream is None or seq < stream.next:
            return
        stream.next = seq + 1
        follower = stream.waiting.get(stream.next)
        if follower is not None and not follower.done():
            follower.set_result(None)
