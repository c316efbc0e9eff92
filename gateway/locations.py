"""Location ingestion: subjects' fixes from REST and WebSocket, in batches.

``POST /geofencing/location`` and the ``location`` frames of ``/ws`` hand
each fix to the process's :class:`LocationIngest` (``submit`` never waits).
Every ``batch_linger_ms`` (or ``batch_max`` fixes; or ``bulk_linger_ms`` after
the first of the bulk feed's fixes queued, whose frames are batches already)
one flush:

* keeps the newest fix per subject, and writes those kept through the
  ``LatestLocations`` port (Redis ``location:{role}:{id}``, one round trip
  per flush): a subject's at most every ``latest_every_s`` (its first at
  once; the console's map reads them once a second), each subject on its
  own clock so the writes stay spread over the flushes, and every one
  kept on the way out; a fix older than the last one this process stored
  for the subject is not written over it;
* sends every fix to its subject entity for geofencing
  (``EntityClient.track``, then ``send_fixes``: one unordered Ray call per
  shard per flush, sent with the flush, not after the client's linger; the
  entity itself ignores fixes older than its last one). Fixes less accurate
  than ``geo.coverage.MAX_FIX_ACCURACY_M`` are not geofenced: such a circle
  straddles every boundary near it anyway;
* keeps one fix per subject every ``history_every_s`` through the
  ``LocationHistory`` port (MongoDB ``location_events``; a sampled history,
  written in the background, together about once a second, at most
  ``history_write_max`` a write): its first at once, then one in each period
  of its own (``next_sample_at``: the subjects' periods are shifted apart, so
  their writes stay spread when they all began together; their first samples
  are written over seconds).

Best effort by contract, like the WebSocket's location frames: a fix lost
to a backend outage is superseded by the next one. What is never lost is a
geofence event once its subject entity decided it (outbox). Overload is
refused, not queued without bound, here or in front of a shard (a flush
waits while a shard has ``shard_batches_in_flight`` batches unanswered, so
the queue here fills instead): ``submit`` returns False beyond
``queue_max`` waiting fixes, or beyond ``queue_max_per_subject`` waiting
fixes of one subject (so one socket, or every socket and request of one
account together, cannot fill the queue the others share), and the caller
answers 503 / an error frame. The bulk feed's fixes are refused once they
would fill more than ``bulk_queue_share`` of ``queue_max``: an integration
flooding the gateway leaves the rest of the queue to phones. The bounds are
per gateway process: ``serve`` with ``http.gateways`` processes queues up to
that many times ``queue_max``, and a subject whose sockets or requests land
on several processes gets its share in each.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from uuid import UUID

import orjson

from actors import codec
from actors.store_errors import PersistenceError
from actors.subject import SubjectRole
from cluster.client import FIX_BATCH_OUTCOMES, EntityClient
from config.settings import GeofenceSettings
from gateway.ports import LatestLocations, LocationHistory
from geo.coverage import MAX_FIX_ACCURACY_M
from geo.fences import Fix

log = logging.getLogger(__name__)

#: Per-subject memories (newest stored, last sampled) are cleared past this size.
_MEMORY_MAX = 1_000_000
#: History samples are written together once the first has waited this long:
#: spread over the period (``next_sample_at``), each 25 ms flush takes only a few,
#: and each write is an insert round trip to FerretDB.
HISTORY_LINGER_S = 1.0
#: At most this many samples in one write, and one write per ``HISTORY_LINGER_S``
#: (more when the subjects' steady rate needs it: :func:`history_write_max`); the
#: rest wait for the next. A subject's first sample is taken at once, so 10,000
#: subjects that begin together (phones reconnecting to a restarted gateway, or
#: the bench's warm-up) made 10,000 samples in a second. Written in two inserts of
#: 5,000, they kept FerretDB and its PostgreSQL at 0.5-0.85 cores for two seconds,
#: just as the same subjects' first fixes came in (issue 20); now they take ten.
HISTORY_PER_WRITE = 1000
#: Samples waiting beyond this are dropped, the oldest first, with a warning (a
#: sampled history is best effort; the queue is not memory without bound).
HISTORY_WAITING_MAX = 100_000


class Reported(Protocol):
    """A validated ``location`` frame's data or ``POST /geofencing/location`` body."""

    @property
    def latitude(self) -> float: ...
    @property
    def longitude(self) -> float: ...
    @property
    def accuracy_m(self) -> float | None: ...
    @property
    def heading(self) -> float | None: ...
    @property
    def speed_mps(self) -> float | None: ...
    @property
    def recorded_at(self) -> datetime | None: ...


@dataclass(slots=True)
class Sighting:
    """One fix of one subject, as received. Treat as immutable (not ``frozen``
    only because a frozen dataclass costs four times as much to make, and a
    gateway makes 10,000 a second)."""

    role: SubjectRole
    fix: Fix
    #: The fix as the client sent it (with heading, speed, ...), for Redis.
    reported: Reported
    received_at: datetime
    #: The subject's entity key (``actors.subject.subject_key``), made once per
    #: fix or per socket: it keys every per-subject memory here (a string's hash
    #: is cached; a ``(role, UUID)`` pair's is not), and its id part names the
    #: Redis key, so the UUID is not turned into text again for each.
    key: str

    @property
    def id_text(self) -> str:
        """The subject's id as text (the part of ``key`` after the role)."""
        return self.key.partition(":")[2]

    @property
    def subject_id(self) -> UUID:
        """The subject's id (made when asked: the bulk feed reads ids as text)."""
        return UUID(self.id_text)

    def stored(self) -> bytes:
        """The subject's last location as Redis keeps it: the fields sent (none
        null), ``recorded_at`` (the receipt time when none was sent) and ``received_at``."""
        r = self.reported
        value: dict[str, Any] = {"latitude": r.latitude, "longitude": r.longitude}
        for name, given in (
            ("accuracy_m", r.accuracy_m),
            ("heading", r.heading),
            ("speed_mps", r.speed_mps),
        ):
            if given is not None:
                value[name] = given
        value["recorded_at"] = self.fix.recorded_at
        value["received_at"] = self.received_at
        # orjson writes a datetime as isoformat() does (6 % of a gateway's
        # time at 10,000 fixes/s went to json and isoformat here).
        return orjson.dumps(value)


class LocationSink(Protocol):
    """Where a session hands its fixes (``LocationIngest``; a fake in unit tests).
    ``bulk``: the fix came by the bulk feed, which may fill only its share of the queue."""

    def submit(self, sighting: Sighting, *, bulk: bool = False) -> bool: ...

    def has_room(self, *, bulk: bool = False) -> bool:
        """Whether one more fix may wait (of some subject): False when the queue is full
        (for ``bulk``, its share of the queue)."""
        ...

    def refuse(self, count: int) -> None:
        """Count ``count`` fixes refused without being offered one by one (a bulk
        batch refused whole while there is no room)."""
        ...


class LocationIngest:
    def __init__(
        self,
        settings: GeofenceSettings,
        *,
        latest: Callable[[], LatestLocations],
        entities: Callable[[], EntityClient | None],
        history: Callable[[], LocationHistory | None],
        location_ttl_s: int,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        #: ``queue_bound`` of a phone's fix and of a bulk fix (indexed by ``bulk``).
        self._bounds = (queue_bound(settings, bulk=False), queue_bound(settings, bulk=True))
        self._per_subject = settings.queue_max_per_subject
        self._latest_port = latest
        self._entities = entities
        self._history = history
        self._ttl_s = location_ttl_s
        self._queue: list[Sighting] = []
        #: Fixes of each subject (by ``Sighting.key``) in ``_queue``.
        self._waiting: dict[str, int] = {}
        self._wake = asyncio.Event()
        #: Wakes the flush ``bulk_linger_ms`` after the first bulk fix queued since
        #: the last flush (None: no bulk fix waits, or no event loop runs).
        self._bulk_due: asyncio.TimerHandle | None = None
        self._stored: dict[str, datetime] = {}
        #: Each subject's newest fix not yet written to Redis.
        self._latest: dict[str, Sighting] = {}
        #: When each subject's newest may be written (monotonic), soonest first, then
        #: in the order kept: a subject is in it while it is in ``_latest`` (and
        #: maybe once more, stale).
        self._due: list[tuple[float, int, str]] = []
        self._kept = itertools.count()
        #: When each subject's location was last written (monotonic).
        self._written: dict[str, float] = {}
        self._monotonic = monotonic
        #: When each subject's next history sample is due (monotonic).
        self._sample_due: dict[str, float] = {}
        #: History samples not yet written, and when the first of them was taken.
        self._samples: list[tuple[UUID, datetime, dict[str, Any]]] = []
        self._samples_since = 0.0
        self._writes: set[asyncio.Task[None]] = set()
        self.accepted = 0
        self.refused = 0
        self.carried_out = 0

    def has_room(self, *, bulk: bool = False) -> bool:
        return len(self._queue) < self._bounds[bulk]

    def refuse(self, count: int) -> None:
        self.refused += count

    def submit(self, sighting: Sighting, *, bulk: bool = False) -> bool:
        """Queue a fix; False when too many are waiting, in all (for ``bulk``, in
        the bulk feed's share: :func:`queue_bound`) or of its subject (the
        caller refuses it)."""
        key = sighting.key
        mine = self._waiting.get(key, 0)
        if len(self._queue) >= self._bounds[bulk] or mine >= self._per_subject:
            self.refused += 1
            return False
        self._waiting[key] = mine + 1
        self._queue.append(sighting)
        self.accepted += 1
        if len(self._queue) >= self._settings.batch_max:
            self._wake.set()
        elif bulk and self._bulk_due is None:
            self._flush_soon()
        return True

    def _flush_soon(self) -> None:
        """Have the flush come ``bulk_linger_ms`` from now, not at the linger's end."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs (a unit test): nor does the flush loop
            return
        self._bulk_due = loop.call_later(self._settings.bulk_linger_ms / 1000, self._wake.set)

    async def run(self) -> None:
        """Flush batches until cancelled; the last batch is flushed on the way out."""
        linger = self._settings.batch_linger_ms / 1000
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), linger)
                self._wake.clear()
                await self.flush(write_latest=False)
        finally:
            await self.flush()
            if self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)

    @property
    def waiting(self) -> int:
        """Fixes taken and not yet carried out."""
        return len(self._queue)

    @property
    def batches(self) -> dict[str, int]:
        """The shards' batches of this process's fixes by outcome
        (``EntityClient.fix_batches``; zeros while there is no client)."""
        entities = self._entity_client()
        if entities is None:
            return dict.fromkeys(FIX_BATCH_OUTCOMES, 0)
        return entities.fix_batches

    async def flush(self, *, write_latest: bool = True) -> int:
        """Carry out every queued fix now; returns how many. The newest fix per
        subject goes to Redis now too with ``write_latest``, else the newest of
        each subject whose last write was ``latest_every_s`` ago or more."""
        batch, self._queue = self._queue, []
        self._waiting = {}
        if self._bulk_due is not None:
            self._bulk_due.cancel()
            self._bulk_due = None
        done = 0
        while batch:
            chunk, batch = batch[: self._settings.batch_max], batch[self._settings.batch_max :]
            entities = self._track(chunk)
            self._sample(chunk)
            self._note_latest(chunk)
            done += len(chunk)
            self.carried_out += len(chunk)
            if entities is not None:
                await self._room(entities)
        self._write_samples(everyone=write_latest)
        await self._store_latest(everyone=write_latest)
        return done

    async def _room(self, entities: EntityClient) -> None:
        """Backpressure from the shards: wait while one has too many batches of fixes
        unanswered (meanwhile fixes queue here, where ``submit`` refuses past
        ``queue_max``), at most ``shard_wait_s``."""
        try:
            await asyncio.wait_for(
                entities.track_room(self._settings.shard_batches_in_flight),
                self._settings.shard_wait_s,
            )
        except TimeoutError:
            log.warning(
                "locations: a shard is %.1f s behind; going on", self._settings.shard_wait_s
            )

    # --- the three destinations ------------------------------------------------------

    def _entity_client(self) -> EntityClient | None:
        """The process's entity client; None while there is none."""
        try:
            return self._entities()
        except Exception as exc:  # no cluster in this process, or it is away
            log.debug("locations: no entity client (%s)", exc)
            return None

    def _track(self, batch: list[Sighting]) -> EntityClient | None:
        entities = self._entity_client()
        if entities is None:
            return None
        for s in batch:
            if s.fix.accuracy_m <= MAX_FIX_ACCURACY_M:
                entities.track(s.key, s.fix)
        entities.send_fixes()  # gathered over this linger already
        return entities

    def _note_latest(self, batch: list[Sighting]) -> None:
        """Keep each subject's newest fix until its next write (one older than the
        newest written or kept is not kept)."""
        newest = self._latest
        stored = self._stored
        every = self._settings.latest_every_s
        written = self._written
        now = self._monotonic()
        for s in batch:
            key = s.key
            known = newest.get(key)
            if known is not None:
                if s.fix.recorded_at > known.fix.recorded_at:
                    newest[key] = s
                continue
            last = stored.get(key)
            if last is None or s.fix.recorded_at > last:
                newest[key] = s
                last_write = written.get(key)
                due = now if last_write is None else max(now, last_write + every)
                heapq.heappush(self._due, (due, next(self._kept), key))

    async def _store_latest(self, *, everyone: bool) -> None:
        """Write the kept newest fixes that are due (``everyone``: all of them) to
        Redis in one round trip."""
        now = self._monotonic()
        if everyone:
            newest, self._latest, self._due = self._latest, {}, []
        else:
            newest = {}
            due, kept = self._due, self._latest
            while due and due[0][0] <= now:
                key = heapq.heappop(due)[2]
                s = kept.pop(key, None)
                if s is not None:  # (else stale: written with everyone since)
                    newest[key] = s
        if not newest:
            return
        latest = [(*_role_and_id(s.key), s.stored()) for s in newest.values()]
        try:
            await self._latest_port().store_latest(latest, self._ttl_s)
        except PersistenceError as exc:
            log.warning("locations: %d latest positions not stored (%s)", len(newest), exc)
            return
        if len(self._stored) > _MEMORY_MAX:
            self._stored.clear()
            self._written.clear()
        stored, written = self._stored, self._written
        for key, s in newest.items():
            stored[key] = s.fix.recorded_at
            written[key] = now

    def _sample(self, batch: list[Sighting]) -> None:
        every = self._settings.history_every_s
        now = self._monotonic()
        due = self._sample_due
        samples = self._samples
        if not samples:
            self._samples_since = now
        for s in batch:
            key = s.key
            next_at = due.get(key)
            if next_at is not None and now < next_at:
                continue
            due[key] = next_sample_at(now, key, every)
            samples.append((s.subject_id, s.fix.recorded_at, self._sample_data(s)))
        if len(samples) > HISTORY_WAITING_MAX:
            dropped = len(samples) - HISTORY_WAITING_MAX
            del samples[:dropped]
            log.warning("locations: %d history samples dropped (too many waiting)", dropped)
        if len(due) > _MEMORY_MAX:
            due.clear()

    def _write_samples(self, *, everyone: bool) -> None:
        """Write history samples in the background, once the first has waited
        ``HISTORY_LINGER_S``: the oldest ``history_write_max`` of them, the rest a
        linger later (``everyone``: all of them, now)."""
        samples = self._samples
        if not samples:
            return
        now = self._monotonic()
        if not everyone and now - self._samples_since < HISTORY_LINGER_S:
            return
        most = (
            len(samples)
            if everyone
            else history_write_max(len(self._sample_due), self._settings.history_every_s)
        )
        samples, self._samples = samples[:most], samples[most:]
        self._samples_since = now
        try:
            store = self._history()
        except Exception as exc:
            log.debug("locations: no event store (%s)", exc)
            return
        if store is None:
            return
        task = asyncio.get_running_loop().create_task(self._write_history(store, samples))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    @staticmethod
    def _sample_data(s: Sighting) -> dict[str, Any]:
        return {
            "subject_id": s.id_text,
            "subject_role": s.role.value,
            "latitude": s.fix.latitude,
            "longitude": s.fix.longitude,
            "accuracy_m": s.fix.accuracy_m,
            "received_at": codec.iso(s.received_at),
        }

    @staticmethod
    async def _write_history(
        store: LocationHistory, samples: list[tuple[UUID, datetime, dict[str, Any]]]
    ) -> None:
        try:
            await store.record(samples)
        except (PersistenceError, OSError) as exc:
            log.warning("locations: %d history samples not stored (%s)", len(samples), exc)


def next_sample_at(now: float, key: str, every: float) -> float:
    """When the subject ``key``, sampled ``now``, is next sampled for the history:
    the end of its current period of ``every`` seconds, each subject's periods
    shifted by a phase of its own (from its key). Subjects that all began
    together (10,000 phones reconnecting to a restarted gateway, or the bench
    starting) are then sampled spread over the period, not all together once
    per period: issue 20's bench saw 10,000 history writes every 30 s cost
    FerretDB and its PostgreSQL about half a core for several seconds, on a
    machine with none to spare. 0 samples every fix."""
    if every <= 0:
        return now
    phase = zlib.crc32(key.encode()) / 2**32 * every
    due = (math.floor((now + phase) / every) + 1) * every - phase
    return due if due > now else due + every  # (rounding, at a period's very end)


def history_write_max(subjects: int, every: float) -> int:
    """The most history samples one write takes: ``HISTORY_PER_WRITE``, or twice
    what ``subjects`` sampled every ``every`` seconds make in a linger, whichever
    is more (so the writes keep up with any steady rate, and a burst of first
    samples is spread over seconds); every sample when every fix is sampled."""
    if every <= 0:
        return HISTORY_WAITING_MAX
    return max(HISTORY_PER_WRITE, math.ceil(2 * subjects * HISTORY_LINGER_S / every))


def _role_and_id(key: str) -> tuple[str, str]:
    """An entity key's role and id, as text (``user:<uuid>`` -> ``user``, ``<uuid>``)."""
    role, _colon, subject_id = key.partition(":")
    return role, subject_id


def queue_bound(settings: GeofenceSettings, *, bulk: bool) -> int:
    """Fixes that may be waiting when one more comes: ``queue_max``, or for the bulk
    feed its share of it (at least one)."""
    if not bulk:
        return settings.queue_max
    return max(1, int(settings.queue_max * settings.bulk_queue_share))


def sighting(
    settings: GeofenceSettings,
    role: SubjectRole | str,
    reported: Reported,
    now: datetime,
    key: str,
) -> Sighting:
    """The fix of a validated ``location`` frame or body; :class:`StaleFix` when its
    time is too far in the future or the past. A fix without ``accuracy_m`` is
    taken as exact; one without ``recorded_at`` as taken now. ``key`` is the
    subject's entity key (``actors.subject.subject_key``), which callers keep
    (a socket's subject never changes) or read (the bulk feed)."""
    recorded = reported.recorded_at
    if recorded is None:
        at = now
    else:
        at = recorded if recorded.tzinfo is UTC else recorded.astimezone(UTC)
        ahead = (at - now).total_seconds()
        if ahead > settings.max_future_s:
            raise StaleFix(f"recorded_at is more than {settings.max_future_s:.0f} s in the future")
        if -ahead > settings.max_age_s:
            raise StaleFix(f"recorded_at is more than {settings.max_age_s:.0f} s in the past")
    accuracy = reported.accuracy_m
    fix = Fix(
        float(reported.latitude),
        float(reported.longitude),
        0.0 if accuracy is None else float(accuracy),
        at,
    )
    # (The bulk feed makes thousands a second: no enum lookup for a role that is one.)
    who = role if isinstance(role, SubjectRole) else SubjectRole(role)
    return Sighting(who, fix, reported, now, key)


class StaleFix(ValueError):
    """A fix recorded too far from now to be taken (clock skew, a replayed track)."""


def utcnow() -> datetime:
    return datetime.now(UTC)
