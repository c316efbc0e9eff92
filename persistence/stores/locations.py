"""Subjects' locations: the last known one in Redis (``location:{role}:{id}``,
``gateway.ports.LatestLocations``) and a sampled history in the MongoDB event
store (``location_events``, ``gateway.ports.LocationHistory``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid4

import redis.asyncio as aioredis

from actors.effects import EventType, Topic
from persistence.drivers import redis as redis_driver
from persistence.drivers.mongo import EventStore
from persistence.drivers.redis import location_key
from persistence.outbox.events import CloudEvent

#: SET each of the first ``n`` KEYS to ARGV[i] with the expiry ARGV[n + 1] (seconds);
#: for each ARGV[n + 1 + i] that is not empty (an agent's id), ZADD it to the last
#: KEY (:data:`AGENT_MOVES_KEY`) scored with Redis's own clock in ms, and drop
#: members older than the expiry. Redis's clock, so every gateway's writes share
#: one order: a reader of scores ``>= t`` misses no write executed after it read.
_SET_ALL: Final = """
local n = #KEYS - 1
local ttl = tonumber(ARGV[n + 1])
local moves = KEYS[n + 1]
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local moved = 0
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[i], 'EX', ttl)
  local member = ARGV[n + 1 + i]
  if member ~= '' then
    redis.call('ZADD', moves, ms, member)
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('ZREMRANGEBYSCORE', moves, '-inf', '(' .. (ms - ttl * 1000))
end
return n
"""

#: A sorted set of agent ids scored by when their ``location:agent:{id}`` was last
#: written (Redis ms): the fleet's "moved since" index (``persistence.stores.fleet``).
AGENT_MOVES_KEY: Final = "locations:agent:moved"


class RedisLatestLocations:
    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def store_latest(self, latest: Sequence[tuple[str, str, bytes]], ttl_s: int) -> None:
        """Overwrite each subject's last location, and note each agent's in
        :data:`AGENT_MOVES_KEY`; one round trip. Idempotent."""
        keys = [location_key(role, subject_id) for role, subject_id, _ in latest]
        values: list[bytes | int | str] = [value for _, _, value in latest]
        members = [subject_id if role == "agent" else "" for role, subject_id, _ in latest]
        with redis_driver.EDGE:
            # One script call for the whole batch: a pipeline of SETs costs the
            # client ~4x more CPU per key (a command packed and a reply parsed each).
            await self._client.eval(
                _SET_ALL, len(keys) + 1, *keys, AGENT_MOVES_KEY, *values, ttl_s, *members
            )


class MongoLocationHistory:
    """Each sample is one ``location.recorded`` CloudEvent from ``source``."""

    __slots__ = ("_source", "_store")

    def __init__(self, store: EventStore, *, source: str) -> None:
        self._store = store
        self._source = source

    async def record(self, samples: Sequence[tuple[UUID, datetime, Mapping[str, Any]]]) -> None:
        events = [
            (
                Topic.LOCATION_UPDATES,
                CloudEvent(
                    id=str(uuid4()),
                    source=self._source,
                    type=EventType.LOCATION_RECORDED,
                    subject=str(subject_id),
                    time=recorded_at,
                    data=dict(data),
                ),
            )
            for subject_id, recorded_at, data in samples
        ]
        await self._store.insert_events(events)
