"""Group load: entity loads that queue up are read in one query.

A shard activates an entity on its first message by loading its last
snapshot (``EntityStore.load_snapshot``: one query, one round trip). When
many activate at once (a shard starting under a bulk feed: 10,000 subjects
within a second; a new integration's fleet), those queries' fixed cost is
most of the work, on the shard and on PostgreSQL, while every message to
them waits. Issue 20: at 30,000 fixes/s offered over the bulk feed, the
probes' first entries after a 10 s warm-up waited 0.4-4 s.

``GroupLoad`` wraps a store. A load is read at the next turn of the event
loop together with every other load asked for by then, and loads that
arrive while a read is in flight wait for it and then go together: per
kind, in one ``load_snapshots`` query of at most ``max_group`` ids. Each
caller gets its own snapshot (None for an entity never persisted), or the
error of the query that read it, as a load of its own would have given.
Everything else is passed through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from actors.effects import EntityKind
from actors.ports import CommitBatch, StoredTimer
from persistence.grouping import Grouped, Waiting, at_most, fail_each

#: Ids read in one query at most.
MAX_GROUP = 500

_Load = tuple[EntityKind, str]
_Waiting = Waiting[_Load, Mapping[str, Any] | None]


class SnapshotStore(Protocol):
    """An ``EntityStore`` that also reads many snapshots of one kind at once."""

    async def load_snapshot(self, kind: EntityKind, entity_id: str) -> Mapping[str, Any] | None: ...

    async def load_snapshots(
        self, kind: EntityKind, entity_ids: Sequence[str]
    ) -> Mapping[str, Mapping[str, Any]]:
        """The last committed snapshot of each of ``entity_ids`` that has one, by id."""
        ...

    async def commit(self, batch: CommitBatch) -> None: ...

    async def load_timers(self) -> Sequence[StoredTimer]: ...

    async def open_alert_ids(self) -> Sequence[str]: ...


class GroupLoad:
    """An ``EntityStore`` whose snapshot loads that queue up are read together."""

    def __init__(self, store: SnapshotStore, *, max_group: int = MAX_GROUP) -> None:
        if max_group < 1:
            raise ValueError("max_group must be >= 1")
        self._store = store
        self._calls = Grouped[_Load, Mapping[str, Any] | None](
            self._read, take=at_most(max_group), stopped="entity loads stopped"
        )
        #: Queries read, and loads they answered (for tests and metrics).
        self.queries = 0
        self.loads = 0

    async def load_snapshot(self, kind: EntityKind, entity_id: str) -> Mapping[str, Any] | None:
        return await self._calls.call((kind, entity_id))

    async def commit(self, batch: CommitBatch) -> None:
        await self._store.commit(batch)

    async def load_timers(self) -> Sequence[StoredTimer]:
        return await self._store.load_timers()

    async def open_alert_ids(self) -> Sequence[str]:
        return await self._store.open_alert_ids()

    async def _read(self, group: list[_Waiting]) -> None:
        by_kind: dict[EntityKind, list[_Waiting]] = {}
        for waiting in group:
            by_kind.setdefault(waiting[0][0], []).append(waiting)
        for kind, loads in by_kind.items():
            await self._read_kind(kind, loads)

    async def _read_kind(self, kind: EntityKind, loads: list[_Waiting]) -> None:
        ids = list(dict.fromkeys(entity_id for (_kind, entity_id), _future in loads))
        try:
            found = await self._store.load_snapshots(kind, ids)
        except Exception as exc:
            fail_each(loads, exc)
            return
        self.queries += 1
        self.loads += len(loads)
        for (_kind, entity_id), future in loads:
            if not future.done():
                future.set_result(found.get(entity_id))
