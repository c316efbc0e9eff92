"""Group commit: entity commits that queue up are written in one statement.

A shard hosts many entities, and each transition with a durable effect
commits on its own (``EntityStore.commit``: one statement, one round trip).
Under load most of that is fixed cost: at 7,000 geofence fixes/s the
commits of the fixes that gave an event were ~30 % of the shard's time, a
few hundred statements a second of a few rows each.

``GroupCommit`` wraps a store. A commit that finds no write in flight is
written at once (next loop turn: no added wait); commits that arrive while
one is being written wait for it and then go together, as one
``CommitBatch``, in one statement. Each caller still returns only once its
own batch is committed, and raises if it was not, so the durability
promise of ``commit`` is unchanged.

Merging is sound because one statement is one transaction and the batches
of different entities touch different rows; an entity has at most one
commit in flight (the host awaits it before its next message), and where
the same row does appear twice (a housekeeping flush's coalesced snapshot
beside that entity's next transition) the store keeps the newest version,
as it does within one batch. If a merged statement fails, nothing of it was
written, and each batch is retried alone: one bad batch fails only its own
caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from actors.effects import EntityKind
from actors.ports import CommitBatch, EntityStore, StoredTimer
from persistence.grouping import Grouped, Waiting, at_most

log = logging.getLogger(__name__)

#: Batches written together at most (bounds one statement's size).
MAX_GROUP = 64

_Waiting = Waiting[CommitBatch, None]


def merged(batches: Sequence[CommitBatch]) -> CommitBatch:
    """One batch holding every item of ``batches``, in their order."""
    out = CommitBatch()
    for batch in batches:
        out.snapshots += batch.snapshots
        out.events += batch.events
        out.timers += batch.timers
        out.cancelled += batch.cancelled
        out.fired += batch.fired
    return out


class GroupCommit:
    """An ``EntityStore`` that writes commits queued behind a write together."""

    def __init__(self, store: EntityStore, *, max_group: int = MAX_GROUP) -> None:
        if max_group < 1:
            raise ValueError("max_group must be >= 1")
        self._store = store
        self._calls = Grouped[CommitBatch, None](
            self._write, take=at_most(max_group), stopped="entity commits stopped"
        )
        #: Statements written, and batches they carried (for tests and metrics).
        self.statements = 0
        self.batches = 0

    async def load_snapshot(self, kind: EntityKind, entity_id: str) -> Mapping[str, Any] | None:
        return await self._store.load_snapshot(kind, entity_id)

    async def load_timers(self) -> Sequence[StoredTimer]:
        return await self._store.load_timers()

    async def open_alert_ids(self) -> Sequence[str]:
        return await self._store.open_alert_ids()

    async def commit(self, batch: CommitBatch) -> None:
        """Return once ``batch`` is committed; raise (it was not written) otherwise."""
        if not batch:
            return
        # A caller cancelled while waiting leaves its batch to be written anyway
        # (as a cancelled direct commit may have been); it is not told.
        await self._calls.call(batch)

    async def _write(self, group: list[_Waiting]) -> None:
        if len(group) == 1:
            await self._write_alone(*group[0])
            return
        try:
            await self._store.commit(merged([batch for batch, _f in group]))
        except Exception as exc:
            log.warning("a commit of %d batches failed (%s); writing each alone", len(group), exc)
            for batch, future in group:
                await self._write_alone(batch, future)
            return
        self.statements += 1
        self.batches += len(group)
        for _batch, future in group:
            if not future.done():
                future.set_result(None)

    async def _write_alone(self, batch: CommitBatch, future: asyncio.Future[None]) -> None:
        try:
            await self._store.commit(batch)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        self.statements += 1
        self.batches += 1
        if not future.done():
            future.set_result(None)
