"""``fleet.agents``: the agents that changed, to this process's admin sockets.

One poller per gateway process, running only while at least one admin
socket is attached (nothing runs, and nothing is read, otherwise): ``serve``
with several gateway processes on one port polls once per interval in each
process holding an admin socket, each diffing on its own. Every
``http.ws_fleet_interval_s`` it makes two reads (``gateway.ports.Fleet``):

* the agents whose Redis position was written since the last poll
  (``locations:agent:moved``, scored by Redis's clock, then one ``MGET`` of
  ``location:agent:{id}``): the freshest position there is, written within
  ``geofence.batch_linger_ms`` of the agent's ``location`` frame on any
  gateway. ``agents.last_location`` lags by up to ``actors.flush_interval_s``
  and the region index holds only available agents, so neither is used here;
* the agents whose ``agents`` row changed since the last poll (its
  ``updated_at``, re-read with an overlap of :data:`STATUS_OVERLAP`, as a
  transaction's ``now()`` is its start): the duty status, committed with
  every change. An agent no longer approved is sent once as ``offline``.

It diffs both against what it last sent (``gateway.fleet.changed``) and
hands every attached socket the same frame: the agents whose status or
position changed, nothing when none did. So each socket gets at most one
``fleet.agents`` per interval, holding only what changed since the one
before (from the first poll after it attached; the console loads
``GET /admin/fleet`` on connecting). The first poll after the poller starts
only learns the fleet and sends nothing.

At-most-once like every push: a frame a socket cannot take (its queue full)
closes it, and the console reloads ``/admin/fleet`` on reconnect. A failed
read is logged and retried at the next interval, the watermarks unmoved, so
nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from gateway.fleet import OFFLINE, Known, changed, fleet_frame_data
from gateway.ports import Fleet
from gateway.ws.frames import encode

log = logging.getLogger(__name__)

#: How far back each status read reaches past the newest change it saw.
STATUS_OVERLAP = timedelta(seconds=2)

APPROVED = "approved"

Sink = Callable[[str], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FleetFeed:
    def __init__(
        self,
        fleet: Callable[[], Fleet],
        *,
        interval_s: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._fleet = fleet
        self._interval_s = interval_s
        self._clock = clock
        self._sinks: set[Sink] = set()
        self._task: asyncio.Task[None] | None = None
        self._reset()
        #: Polls made and frames handed out (for tests and metrics).
        self.polls = 0
        self.frames = 0

    def _reset(self) -> None:
        self._known: dict[UUID, Known] = {}
        self._statuses_since: datetime | None = None
        self._moves_since: int | None = None
        self._learned = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def attach(self, sink: Sink) -> None:
        """Hand ``sink`` every ``fleet.agents`` frame from now on; starts the poller."""
        self._sinks.add(sink)
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet-feed")

    def detach(self, sink: Sink) -> None:
        """Stop handing frames to ``sink``; the poller stops with the last one."""
        self._sinks.discard(sink)
        if not self._sinks and self._task is not None:
            self._task.cancel()
            self._task = None
            self._reset()

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while self._sinks:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fleet feed: poll failed (%s); retrying", exc)
            await asyncio.sleep(self._interval_s)

    async def poll(self) -> int:
        """One read and one frame to every attached socket; how many agents it held."""
        fleet = self._fleet()
        since = None if self._statuses_since is None else self._statuses_since - STATUS_OVERLAP
        rows = await fleet.statuses_since(since)
        positions, moves_since = await fleet.moves_since(self._moves_since)
        self.polls += 1
        statuses: dict[UUID, str] = {}
        for row in rows:
            if row.vetting == APPROVED:
                statuses[row.agent_id] = row.status
            elif row.agent_id in self._known:
                statuses[row.agent_id] = OFFLINE  # suspended: greyed once, then not followed
        moved = changed(self._known, statuses, positions)
        self._known.update(moved)
        for row in rows:
            if row.vetting != APPROVED:
                self._known.pop(row.agent_id, None)
        if rows:
            newest = max(row.changed_at for row in rows)
            if self._statuses_since is None or newest > self._statuses_since:
                self._statuses_since = newest
        self._moves_since = moves_since
        if not self._learned:
            self._learned = True
            return 0
        if not moved:
            return 0
        text = encode({"type": "fleet.agents", "data": fleet_frame_data(moved, self._clock())})
        for sink in tuple(self._sinks):
            try:
                sink(text)
            except Exception:
                log.exception("fleet feed: a sink failed")
            else:
                self.frames += 1
        return len(moved)
