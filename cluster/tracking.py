"""Geofence tracking on a shard: location fixes to subject entities, with their zones.

The gateway sends fixes in unordered batches (``EntityClient.track``): order
does not matter, because a subject entity ignores a fix older than its last
one. A batch crosses Ray packed (:func:`pack_fixes`): the subjects' keys as
one string and the numbers as two arrays, which pickle as three objects
instead of a tuple and a ``Fix`` per fix (at 10,000 fixes/s, pickling them
one by one cost the gateways 4 % of their time and the shard 9 % of its own).

For each fix the shard looks up the zones near it in its zone book (the
ones whose bounding box the fix's accuracy circle touches: most fixes from
one fine lat/lon grid over every zone, without an H3 cell, a whole batch at
once, with the fix's position in each zone found over the batch too; the
rest, and every point off the map, by the fix's H3 cell, under which the
book lists every zone within ``geo.coverage.MAX_FIX_ACCURACY_M``) and
enqueues a ``TrackFix`` that carries them, so the entity's ``decide`` stays
pure. A zone the circle does not touch is one the subject is certainly
outside of: leaving its neighbourhood is an exit, exactly as
``geo.fences.track`` expects. A fix that changes nothing but where its
subject was last seen (most of them) takes the subject's shortcut
(``actors.subject.shortcut``): no decision, no task, no I/O.
"""

from __future__ import annotations

import asyncio
import logging
from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Protocol
from uuid import UUID

from actors.effects import EntityKind
from actors.subject import NearZone, TrackFix
from actors.zone_index import Nearby
from geo.cells import cell_of
from geo.errors import GeoError
from geo.fences import Fix

log = logging.getLogger(__name__)

#: A batch of fixes as it crosses Ray: keys joined by newlines, then latitude,
#: longitude and accuracy of each fix (doubles), then ``recorded_at`` of each
#: (microseconds since the epoch, 64-bit integers); both in the machine's byte
#: order (the gateways and the shards run the same build).
PackedFixes = tuple[str, bytes, bytes]

#: Fixes a shard tracks in one turn of its event loop (``Tracker.track_packed_in_turns``).
TURN_FIXES: Final = 250

#: Ray sends a call's argument in the call's own message, straight to the actor,
#: up to this size (Ray's ``max_direct_call_object_size``); a larger one it first
#: puts in the object store, through the raylet, and the actor fetches it there.
RAY_INLINE_BYTES: Final = 100 * 1024
#: Fixes in one ``track`` call at most (``EntityClient``): packed, a fix is about
#: 75 bytes (a key of 41 or 42 characters and its newline, four 8-byte numbers), so
#: a call stays inline with room to spare. Above the limit a call held its caller
#: four times as long and cost it twice the CPU (``bench/ray_call.py``, an idle
#: machine: ``.remote()`` 1.75-1.78 ms and 2.4-2.5 ms of CPU for 1,400 and 2,000
#: fixes, against 0.37-0.51 ms and 1.0-1.2 ms for 125 to 1,300), the gateway's
#: event loop waiting on the raylet, which shares the cores with everything else.
#: A gateway that had fallen behind flushed 2,000-fix batches, just when it could
#: least afford it; one keeping up sends a few hundred each flush.
FIXES_PER_CALL: Final = 1000

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class MalformedBatch(ValueError):
    """Packed fixes whose parts do not agree (a bug, or not from ``pack_fixes``)."""


def pack_fixes(fixes: Sequence[tuple[str, Fix]]) -> PackedFixes:
    """``(subject key, fix)`` pairs as one :data:`PackedFixes`; keys hold no newline."""
    keys: list[str] = []
    numbers: list[float] = []
    micros: list[int] = []
    key_of, numbers_of, micros_of = keys.append, numbers.extend, micros.append
    for key, fix in fixes:
        key_of(key)
        numbers_of((fix.latitude, fix.longitude, fix.accuracy_m))
        micros_of((fix.recorded_at - _EPOCH) // _MICROSECOND)
    return "\n".join(keys), array("d", numbers).tobytes(), array("q", micros).tobytes()


def unpack_fixes(packed: object) -> list[tuple[str, Fix]]:
    """The pairs :func:`pack_fixes` packed (times in UTC); :class:`MalformedBatch` otherwise
    (``packed`` came over a stream: anything, so it is checked here, not by its type)."""
    if not isinstance(packed, tuple) or len(packed) != 3:
        raise MalformedBatch(f"not packed fixes: a {type(packed).__name__}")
    joined, raw_numbers, raw_micros = packed
    if not (isinstance(joined, str) and isinstance(raw_numbers, bytes | bytearray)):
        raise MalformedBatch("not packed fixes: keys are not a str or numbers not bytes")
    if not isinstance(raw_micros, bytes | bytearray):
        raise MalformedBatch("not packed fixes: times are not bytes")
    try:
        numbers = array("d", raw_numbers).tolist()
        micros = array("q", raw_micros)
    except (TypeError, ValueError) as exc:
        raise MalformedBatch(f"not packed fixes: {exc}") from exc
    count = len(micros)
    keys = joined.split("\n") if joined else []
    if len(keys) != count or len(numbers) != 3 * count:
        raise MalformedBatch(
            f"{len(keys)} keys, {len(numbers)} numbers and {count} times do not make fixes"
        )
    try:
        times = [_EPOCH + m * _MICROSECOND for m in micros]
    except OverflowError as exc:  # a time beyond datetime's range
        raise MalformedBatch(f"a fix's time is out of range: {exc}") from exc
    fixes = map(Fix, numbers[0::3], numbers[1::3], numbers[2::3], times)
    return list(zip(keys, fixes, strict=True))


class ZoneSource(Protocol):
    """The zones a shard knows (``actors.zone_book.ZoneBook``), as tracking needs them."""

    def near_point(
        self, cell: str, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...]:
        """The live zones listed under ``cell`` (every zone within
        ``MAX_FIX_ACCURACY_M`` of it) that the fix's accuracy circle may touch."""
        ...

    def near_fixes(self, fixes: Sequence[Fix]) -> list[Nearby | None]:
        """For each fix of a batch, the live zones its accuracy circle may touch,
        found without its cell (the fix is then a valid point), and its position
        in each (True inside, False outside, None straddling the boundary); None
        when the caller must find its cell and ask :meth:`near_point`."""
        ...

    @property
    def gone(self) -> frozenset[UUID]:
        """Zones deleted (or deactivated) since the shard started."""
        ...


class Subjects(Protocol):
    """Where tracked fixes go (``actors.runtime.EntityHost``)."""

    def tell_each(self, kind: EntityKind, messages: Iterable[tuple[str, object]]) -> int:
        """Enqueue each pair's message to its entity, in order; how many were refused."""
        ...


class Tracker:
    def __init__(self, host: Subjects, zones: ZoneSource | None, *, resolution: int) -> None:
        self._host = host
        self._zones = zones
        self._resolution = resolution
        self.rejected = 0

    async def track_packed_in_turns(self, packed: object, per_turn: int = TURN_FIXES) -> int:
        """Track a batch from ``EntityClient.track``; returns how many fixes were
        malformed (a malformed batch counts as one, and none of it is tracked).

        The event loop runs between every ``per_turn`` fixes: a bulk feed's
        batch of 2,000 fixes is ~50 ms of work, and the entities' commits and
        pushes waiting in the same loop (a probe's ``geofence.alert``) should
        not wait for all of it. Fixes keep their order within the batch; the
        caller keeps batches from interleaving."""
        try:
            fixes = unpack_fixes(packed)
        except MalformedBatch as exc:
            self.rejected += 1
            log.warning("a malformed batch of fixes dropped: %s", exc)
            return 1
        rejected = 0
        for start in range(0, len(fixes), per_turn):
            if start:
                await asyncio.sleep(0)
            rejected += self._track(fixes[start : start + per_turn])
        return rejected

    def _track(self, fixes: Sequence[tuple[str, Fix]]) -> int:
        """Enqueue each subject's fix with the zones near it, in order; returns how
        many were malformed (off the map, or a key that is not a subject's)."""
        rejected = 0
        zones = self._zones
        gone = frozenset[UUID]() if zones is None else zones.gone
        found = None if zones is None else zones.near_fixes([fix for _key, fix in fixes])
        messages: list[tuple[str, object]] = []
        for index, (key, fix) in enumerate(fixes):
            nearby = None if found is None else found[index]
            if nearby is not None:
                messages.append((key, TrackFix(fix, nearby[0], gone, nearby[1])))
                continue
            try:
                cell = cell_of(fix.latitude, fix.longitude, self._resolution)
            except GeoError:
                rejected += 1
                continue
            near = (
                ()
                if zones is None
                else zones.near_point(cell, fix.latitude, fix.longitude, fix.accuracy_m)
            )
            messages.append((key, TrackFix(fix, near, gone)))
        # A bad key (not a subject's) is refused by the entity kind, and counted.
        rejected += self._host.tell_each(EntityKind.SUBJECT, messages)
        if rejected:
            self.rejected += rejected
            log.warning("%d malformed fixes dropped", rejected)
        return rejected
