"""Fakes for the entity runtime's ports: an in-memory store, a recording push
sink and a router that delivers to one local host. For unit tests of the
runtime's logic only; the real store is tested against PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from actors.effects import Audience, EntityKind, Push
from actors.ports import CommitBatch, StoredTimer
from actors.runtime import EntityHost


class FakeEntityStore:
    """Applies commits to dicts, in the order the real store promises."""

    def __init__(self) -> None:
        self.snapshots: dict[tuple[EntityKind, str], tuple[int, Mapping[str, Any]]] = {}
        self.timers: dict[tuple[EntityKind, str, str], StoredTimer] = {}
        self.events: list[Any] = []
        self.commits: list[CommitBatch] = []
        self.fail_commits = 0

    async def load_snapshot(self, kind: EntityKind, entity_id: str) -> Mapping[str, Any] | None:
        found = self.snapshots.get((kind, entity_id))
        return None if found is None else found[1]

    async def load_snapshots(
        self, kind: EntityKind, entity_ids: Sequence[str]
    ) -> Mapping[str, Mapping[str, Any]]:
        found = {e: self.snapshots.get((kind, e)) for e in entity_ids}
        return {e: snapshot[1] for e, snapshot in found.items() if snapshot is not None}

    async def commit(self, batch: CommitBatch) -> None:
        if self.fail_commits:
            self.fail_commits -= 1
            raise ConnectionError("fake store: commit failed")
        self.commits.append(batch)
        for fired in batch.fired:
            key = (fired.kind, fired.entity_id, fired.timer_id)
            if key in self.timers and self.timers[key].due_at == fired.due_at:
                del self.timers[key]
        for key in batch.cancelled:
            self.timers.pop(key, None)
        for timer in batch.timers:
            self.timers[(timer.kind, timer.entity_id, timer.timer_id)] = timer
        for persist in batch.snapshots:
            key = (persist.kind, str(persist.entity_id))
            if key not in self.snapshots or self.snapshots[key][0] < persist.version:
                self.snapshots[key] = (persist.version, persist.snapshot)
        self.events.extend(batch.events)

    async def load_timers(self) -> Sequence[StoredTimer]:
        return list(self.timers.values())

    async def open_alert_ids(self) -> Sequence[str]:
        return [
            entity_id
            for (kind, entity_id), (_v, snap) in self.snapshots.items()
            if kind is EntityKind.ALERT and snap["status"] not in ("resolved", "cancelled")
        ]


class FakePushSink:
    """Records pushes; each reaches one listener unless its audience is in ``nobody``."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []
        self.nobody: set[Audience] = set()
        self.presence_asked = 0

    async def push(self, pushes: Sequence[Push]) -> list[int]:
        self.pushes.extend(pushes)
        return [0 if p.audience in self.nobody else 1 for p in pushes]

    async def ask_presence(self) -> None:
        self.presence_asked += 1


class FakeLocalRouter:
    """Routes every message to one host (bound after the host is built)."""

    def __init__(self) -> None:
        self.host: EntityHost | None = None
        self.routed: list[tuple[EntityKind, str, object, bool]] = []
        #: Drop best-effort tells (a lost message), recording them all the same.
        self.drop_tells = False

    def tell(self, kind: EntityKind, entity_id: str, message: object) -> None:
        assert self.host is not None
        self.routed.append((kind, entity_id, message, False))
        if not self.drop_tells:
            self.host.enqueue(kind, entity_id, message, want_reply=False)

    async def deliver(
        self, kind: EntityKind, entity_id: str, message: object, stored: StoredTimer
    ) -> None:
        assert self.host is not None
        self.routed.append((kind, entity_id, message, True))
        await self.host.deliver_stored(message, stored)
