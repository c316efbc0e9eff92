"""What the entity runtime needs from the outside world, as Protocols.

The runtime (``actors.runtime``) declares these; ``persistence`` implements
the store, ``cluster`` the router, the push sink and the searcher. Tests pass fakes from
``tests/fakes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from actors.effects import Emit, EntityKind, Persist, Push
from actors.search import Candidate, Search

#: Timer name of a durable message between entities (its payload is the
#: message, see ``actors.message_codec``): a stored message is a timer due at once.
MESSAGE_TIMER = "__message__"


@dataclass(frozen=True, slots=True)
class StoredTimer:
    """A durable timer of one entity; ``(kind, entity_id, timer_id)`` is its key."""

    kind: EntityKind
    entity_id: str
    timer_id: str
    name: str
    due_at: datetime
    payload: Mapping[str, Any]


@dataclass(slots=True)
class CommitBatch:
    """Everything one transition makes durable, written in ONE transaction.

    ``fired`` removes the timers whose delivery produced this transition, but
    only the instance with that ``due_at`` (a timer re-armed meanwhile stays).
    So a timer's effects and its removal commit together: it fires once.
    """

    snapshots: list[Persist] = field(default_factory=list)
    events: list[Emit] = field(default_factory=list)
    timers: list[StoredTimer] = field(default_factory=list)
    cancelled: list[tuple[EntityKind, str, str]] = field(default_factory=list)
    fired: list[StoredTimer] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.snapshots or self.events or self.timers or self.cancelled or self.fired)


class EntityStore(Protocol):
    """Durable state of entities: snapshots, outbox events, timers."""

    async def load_snapshot(self, kind: EntityKind, entity_id: str) -> Mapping[str, Any] | None:
        """The last committed snapshot, or None for an entity never persisted."""
        ...

    async def commit(self, batch: CommitBatch) -> None:
        """Write the batch atomically; raise (and write nothing) on failure."""
        ...

    async def load_timers(self) -> Sequence[StoredTimer]:
        """Every pending timer (the caller keeps the ones it owns)."""
        ...

    async def open_alert_ids(self) -> Sequence[str]:
        """Ids of alerts not yet resolved or cancelled."""
        ...


class PushSink(Protocol):
    """Delivers WebSocket frames to whichever gateway holds the sockets; at-most-once."""

    async def push(self, pushes: Sequence[Push]) -> Sequence[int]:
        """Publish each push; how many listeners (gateways holding a socket of
        its audience) each reached, in order."""
        ...

    async def ask_presence(self) -> None:
        """Ask every gateway to announce its agents' live sockets again (a
        shard that starts has lost the region index it hosted)."""
        ...


class Router(Protocol):
    """Delivers messages to entities wherever they are hosted."""

    def tell(self, kind: EntityKind, entity_id: str, message: object) -> None:
        """Best-effort and non-blocking: hand the message over, never wait."""
        ...

    async def deliver(
        self, kind: EntityKind, entity_id: str, message: object, stored: StoredTimer
    ) -> None:
        """Deliver a durable message; ``stored`` is its stored copy, which the
        recipient removes in the same transaction as the message's effects.
        Returns once the recipient has committed; raises if it could not."""
        ...


class Searcher(Protocol):
    """Carries out an entity's ``Search``: finds available agents near a point."""

    async def search(self, query: Search) -> tuple[Candidate, ...]:
        """The merged answer of the region cells around the point, nearest first.

        Raises when a region could not be asked (the entity searches again later)."""
        ...
