"""An in-memory ``gateway.ports.Fleet``: statuses and moves set by the test."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Position:
    latitude: float
    longitude: float
    heading: float | None = None
    speed_mps: float | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StatusRow:
    agent_id: UUID
    status: str
    vetting: str
    changed_at: datetime


class FakeFleet:
    """``moves`` is a log of ``(tick, agent_id, position)``; ``rows`` of status rows.
    ``moves_since`` answers the moves at or after a tick (the watermark), like Redis."""

    def __init__(self) -> None:
        self.rows: list[StatusRow] = []
        self.moves: list[tuple[int, UUID, Position]] = []
        self.reads = 0

    async def approved_agents(self) -> Sequence[object]:
        return []

    async def nearest(self, latitude: float, longitude: float, limit: int) -> Sequence[object]:
        return []

    async def statuses_since(self, since: datetime | None) -> Sequence[StatusRow]:
        self.reads += 1
        return [r for r in self.rows if since is None or r.changed_at >= since]

    async def moves_since(self, since: int | None) -> tuple[Mapping[UUID, Position], int | None]:
        found = [m for m in self.moves if since is None or m[0] >= since]
        if not found:
            return {}, since
        return {agent: position for _, agent, position in found}, max(t for t, _, _ in found)
