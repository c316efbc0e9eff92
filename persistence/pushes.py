"""Pushes to WebSocket sockets over Redis pub/sub (implements ``actors.ports.PushSink``).

Every frame for one audience (all sockets of one user, or of one agent) is
published on that audience's channel; whichever gateway replica holds those
sockets subscribes to it. At-most-once by design: a frame published while
nobody listens is gone, and apps resync on reconnect.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from actors.effects import Push
from persistence.drivers.redis import translate_error

log = logging.getLogger(__name__)


def push_channel(audience_kind: str, audience_id: str) -> str:
    """``ws:{user|agent}:{id}``: the pub/sub channel of one audience's sockets."""
    return f"ws:{audience_kind}:{audience_id}"


class RedisPushSink:
    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def push(self, pushes: Sequence[Push]) -> None:
        """Publish every frame in one round trip; raises ``PersistenceError`` if Redis fails."""
        if not pushes:
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for p in pushes:
                    pipe.publish(
                        push_channel(*p.audience.as_tuple()),
                        json.dumps(p.frame(), separators=(",", ":")),
                    )
                await pipe.execute()
        except (RedisError, OSError) as exc:
            raise translate_error(exc) from exc
