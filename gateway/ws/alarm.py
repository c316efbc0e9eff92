"""A socket's deadline timer: one timer per period, not one per frame.

Both sockets keep their deadlines beside the reader, not as a timeout on each
receive: a task and a timer pushed and cancelled per frame were most of the
gateway's CPU with thousands of sockets sending fixes (``gateway.ws.session``'s
auth and heartbeat deadlines, ``gateway.ws.bulk``'s idle close).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Alarm:
    """Calls ``ring`` at the earliest deadline armed since it last rang.

    Arming for a later deadline than the one set keeps the earlier timer: it
    rings early, the owner finds nothing due and arms it again for the new
    deadline. So a busy socket costs one timer per heartbeat period, not one
    per frame. Deadlines are on the clock ``now`` is read from (monotonic).
    """

    def __init__(self, ring: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._ring_cb = ring
        self._handle: asyncio.TimerHandle | None = None
        self._at: float | None = None

    def arm(self, deadline: float | None, now: float) -> None:
        if deadline is None or (self._at is not None and self._at <= deadline):
            return
        self.cancel()
        self._at = deadline
        self._handle = self._loop.call_later(max(0.0, deadline - now), self._ring)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = self._at = None

    def _ring(self) -> None:
        self._handle = self._at = None
        self._ring_cb()
