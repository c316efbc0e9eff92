"""In-memory stand-ins for the notification workers' Kafka ports (``notify.ports``):
a consumer handing out given batches and counting commits, a publisher that
keeps what it was given, and recipients from a dict."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from notify.plan import NotificationRequest, Recipient
from notify.ports import Incoming, Outgoing


@dataclass(frozen=True)
class Event:
    """A consumed CloudEvent (``notify.ports.Incoming``)."""

    id: str
    type: str
    data: Mapping[str, Any]
    time: datetime = field(default_factory=lambda: datetime.now(UTC))


def requested(request: NotificationRequest) -> Event:
    """The ``notification.requested`` event of ``request``, as the planner publishes it."""
    return Event(str(request.id), "notification.requested", request.to_json())


class FakeConsumer:
    """Hands out ``batches`` one per ``get_many``, then nothing; ``committed``
    counts the batches committed after being handed out, ``all_committed`` is
    set once every batch was."""

    def __init__(self, batches: Sequence[Sequence[Incoming]]) -> None:
        self._batches = list(batches)
        self._total = len(self._batches)
        self.handed_out = 0
        self.committed = 0
        self.all_committed = asyncio.Event()

    async def get_many(self, timeout_ms: int = 1000) -> Sequence[Incoming]:
        if not self._batches:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        self.handed_out += 1
        return self._batches.pop(0)

    async def commit(self) -> None:
        self.committed = self.handed_out
        if self.committed == self._total:
            self.all_committed.set()

    async def ready(self, timeout_s: float = 30.0) -> None:
        return None


@dataclass
class FakePublisher:
    published: list[Outgoing] = field(default_factory=list)

    async def publish(self, events: Sequence[Outgoing]) -> None:
        self.published += events


@dataclass
class FakeRecipients:
    people: dict[UUID, tuple[str, list[Recipient]]] = field(default_factory=dict)

    async def of(self, user_id: UUID) -> tuple[str, list[Recipient]]:
        return self.people.get(user_id, ("", []))
