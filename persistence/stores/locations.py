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

#: SET every KEYS[i] to ARGV[i] with the expiry ARGV[#KEYS + 1] (seconds).
_SET_ALL: Final = """
local ttl = ARGV[#KEYS + 1]
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i], 'EX', ttl)
end
return #KEYS
"""


class RedisLatestLocations:
    __slots__ = ("_client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def store_latest(self, latest: Sequence[tuple[str, UUID, bytes]], ttl_s: int) -> None:
        """Overwrite each subject's last location; one round trip. Idempotent."""
        keys = [location_key(role, subject_id) for role, subject_id, _ in latest]
        values: list[bytes | int] = [value for _, _, value in latest]
        with redis_driver.EDGE:
            # One script call for the whole batch: a pipeline of SETs costs the
            # client ~4x more CPU per key (a command packed and a reply parsed each).
            await self._client.eval(_SET_ALL, len(keys), *keys, *values, ttl_s)


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
