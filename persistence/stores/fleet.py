"""The fleet's live picture for the dispatcher console (``gateway.ports.Fleet``).

Where each fact is freshest:

* an agent's **position**: Redis ``location:agent:{id}``, written by the
  gateway's location batcher (``gateway.locations``) within
  ``geofence.batch_linger_ms`` of the ``location`` frame, with heading and
  speed. ``agents.last_location`` is the agent entity's snapshot, written
  coalesced every ``actors.flush_interval_s``: used only where Redis has no
  key (expired after ``http.ws_location_ttl_s``), and to preselect by
  distance (PostGIS KNN on its index).
* which agents **moved**: the sorted set ``locations:agent:moved``
  (``persistence.stores.locations.AGENT_MOVES_KEY``), scored by Redis's clock
  when each key was written, so "moved since t" is one ``ZRANGEBYSCORE``.
* the **duty status**: ``agents.status``, committed with every change by the
  agent entity (``persistence.stores.entities``); "changed since t" reads
  ``agents.updated_at``.

Read-only; safe to share between tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import asyncpg
import orjson
import redis.asyncio as aioredis

from persistence.drivers import postgres
from persistence.drivers import redis as redis_driver
from persistence.drivers.redis import location_key
from persistence.stores.locations import AGENT_MOVES_KEY

_COLUMNS = """
SELECT g.id, u.full_name, g.badge_number, g.vetting, g.status, g.last_seen_at,
       ST_Y(g.last_location::geometry) AS latitude, ST_X(g.last_location::geometry) AS longitude
  FROM agents g JOIN users u ON u.id = g.id
"""

_APPROVED = _COLUMNS + " WHERE g.vetting = 'approved' ORDER BY g.id"

_NEAREST = (
    _COLUMNS
    + """
 WHERE g.vetting = 'approved' AND g.last_location IS NOT NULL
 ORDER BY g.last_location <-> ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography
 LIMIT $3
"""
)

#: Approved agents among ``$1`` whose column has no position yet: an agent that
#: came on duty within the last ``actors.flush_interval_s`` has one only in Redis.
_UNFLUSHED = (
    _COLUMNS
    + """
 WHERE g.vetting = 'approved' AND g.last_location IS NULL AND g.id = ANY($1::uuid[])
"""
)

_STATUSES = """
SELECT id, status, vetting, updated_at FROM agents
 WHERE $1::timestamptz IS NULL OR updated_at >= $1
"""


@dataclass(frozen=True, slots=True)
class PositionRecord:
    latitude: float
    longitude: float
    heading: float | None
    speed_mps: float | None
    at: datetime | None


@dataclass(frozen=True, slots=True)
class FleetRecord:
    agent_id: UUID
    full_name: str
    badge_number: str | None
    vetting: str
    status: str
    position: PositionRecord | None
    last_seen_at: datetime | None


@dataclass(frozen=True, slots=True)
class FleetStatusRecord:
    agent_id: UUID
    status: str
    vetting: str
    changed_at: datetime


def parse_position(raw: bytes | str | None) -> PositionRecord | None:
    """A ``location:agent:{id}`` value (``gateway.locations.Sighting.stored``), or
    None when absent or unreadable."""
    if raw is None:
        return None
    try:
        value: Any = orjson.loads(raw)
        at = value.get("recorded_at") or value.get("received_at")
        return PositionRecord(
            latitude=float(value["latitude"]),
            longitude=float(value["longitude"]),
            heading=_float_or_none(value.get("heading")),
            speed_mps=_float_or_none(value.get("speed_mps")),
            at=None if at is None else datetime.fromisoformat(at),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


class PostgresRedisFleet:
    """``gateway.ports.Fleet`` on one PostgreSQL pool and one Redis client."""

    __slots__ = ("_pool", "_redis")

    def __init__(self, pool: asyncpg.Pool, client: aioredis.Redis) -> None:
        self._pool = pool
        self._redis = client

    async def approved_agents(self) -> Sequence[FleetRecord]:
        with postgres.EDGE:
            rows = await self._pool.fetch(_APPROVED)
        return await self._with_positions(rows)

    async def nearest(self, latitude: float, longitude: float, limit: int) -> Sequence[FleetRecord]:
        # Preselected by the coalesced column, re-ranked by the caller on the
        # fresh positions: a few more than asked for, for agents that moved since;
        # plus those whose first position has not reached the column yet.
        with redis_driver.EDGE:
            movers = cast("list[bytes | str]", await self._redis.zrange(AGENT_MOVES_KEY, 0, -1))
        with postgres.EDGE:
            rows = await self._pool.fetch(_NEAREST, latitude, longitude, limit * 2 + 10)
            if movers:
                ids = [UUID(_text(member)) for member in movers]
                rows = [*rows, *await self._pool.fetch(_UNFLUSHED, ids)]
        return await self._with_positions(rows)

    async def statuses_since(self, since: datetime | None) -> Sequence[FleetStatusRecord]:
        with postgres.EDGE:
            rows = await self._pool.fetch(_STATUSES, since)
        return [
            FleetStatusRecord(r["id"], r["status"], r["vetting"], r["updated_at"]) for r in rows
        ]

    async def moves_since(self, since: int | None) -> tuple[dict[UUID, PositionRecord], int | None]:
        low = "-inf" if since is None else str(since)
        with redis_driver.EDGE:
            moved = cast(
                "list[tuple[bytes | str, float]]",
                await self._redis.zrangebyscore(AGENT_MOVES_KEY, low, "+inf", withscores=True),
            )
            if not moved:
                return {}, since
            ids = [_text(member) for member, _ in moved]
            values = await self._redis.mget([location_key("agent", i) for i in ids])
        watermark = int(max(score for _, score in moved))
        positions: dict[UUID, PositionRecord] = {}
        for agent_id, raw in zip(ids, values, strict=True):
            position = parse_position(raw)
            if position is not None:
                positions[UUID(agent_id)] = position
        return positions, watermark

    async def _with_positions(self, rows: Sequence[asyncpg.Record]) -> list[FleetRecord]:
        if not rows:
            return []
        with redis_driver.EDGE:
            values = await self._redis.mget([location_key("agent", r["id"]) for r in rows])
        out = []
        for row, raw in zip(rows, values, strict=True):
            position = parse_position(raw)
            if position is None and row["latitude"] is not None:
                position = PositionRecord(
                    latitude=row["latitude"],
                    longitude=row["longitude"],
                    heading=None,
                    speed_mps=None,
                    at=row["last_seen_at"],
                )
            out.append(
                FleetRecord(
                    agent_id=row["id"],
                    full_name=row["full_name"],
                    badge_number=row["badge_number"],
                    vetting=row["vetting"],
                    status=row["status"],
                    position=position,
                    last_seen_at=row["last_seen_at"],
                )
            )
        return out


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
