"""Geofence tracking on a shard: location fixes to subject entities, with their zones.

The gateway sends fixes in unordered batches (``EntityClient.track``): order
does not matter, because a subject entity ignores a fix older than its last
one. For each fix the shard looks up the zones near it in its zone book (by
the fix's H3 cell: the book lists, per cell, every zone within
``geo.coverage.MAX_FIX_ACCURACY_M`` of it; of those, the ones whose
bounding box the fix's accuracy circle touches) and enqueues a ``TrackFix``
that carries them, so the entity's ``decide`` stays pure. A zone the circle
does not touch is one the subject is certainly outside of: leaving its
neighbourhood is an exit, exactly as ``geo.fences.track`` expects. A fix that changes
nothing takes the runtime's inline path: no task, no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol
from uuid import UUID

from actors.effects import EntityKind
from actors.runtime import EntityHost
from actors.subject import NearZone, TrackFix
from cluster.batching import Item
from geo.cells import cell_of
from geo.errors import GeoError
from geo.fences import Fix

log = logging.getLogger(__name__)


class ZoneSource(Protocol):
    """The zones a shard knows (``cluster.zones.ZoneBook``), as tracking needs them."""

    def near_point(
        self, cell: str, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...]:
        """The live zones listed under ``cell`` (every zone within
        ``MAX_FIX_ACCURACY_M`` of it) that the fix's accuracy circle may touch."""
        ...

    @property
    def gone(self) -> frozenset[UUID]:
        """Zones deleted (or deactivated) since the shard started."""
        ...


class Tracker:
    def __init__(self, host: EntityHost, zones: ZoneSource | None, *, resolution: int) -> None:
        self._host = host
        self._zones = zones
        self._resolution = resolution
        self.rejected = 0

    def track(self, items: Sequence[Item]) -> int:
        """Enqueue each ``(SUBJECT, key, Fix)``; returns how many were malformed."""
        rejected = 0
        zones = self._zones
        gone = frozenset[UUID]() if zones is None else zones.gone
        for kind, key, fix in items:
            if kind is not EntityKind.SUBJECT or not isinstance(fix, Fix):
                rejected += 1
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
            try:
                self._host.enqueue(
                    EntityKind.SUBJECT, key, TrackFix(fix, near, gone), want_reply=False
                )
            except Exception as exc:  # a bad key: the entity kind refuses it
                log.debug("fix for %s refused: %s", key, exc)
                rejected += 1
        if rejected:
            self.rejected += rejected
            log.warning("%d malformed fixes dropped", rejected)
        return rejected
