"""How a shard reaches entities hosted elsewhere: its peer shards over Ray.

:class:`PeerRouter` is the entity runtime's ``Router`` (``actors.ports``) in a
shard: a message for an entity this shard owns goes to its own host, any other
to the owning peer (best-effort tells micro-batched per peer, durable
messages delivered and confirmed). Domain errors cross Ray as values
(:data:`ShardReply`), so Ray never wraps or retries them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

from actors.effects import EntityKind
from actors.errors import ActorError
from actors.ports import StoredTimer
from cluster.batching import Batcher, Item
from cluster.placement import owner

#: What a shard call returns: ``(True, value)`` or ``(False, ActorError)``.
#: Domain errors travel as values so Ray never wraps or retries them.
ShardReply = tuple[bool, object]


async def reply_of(reply: Awaitable[object]) -> ShardReply:
    """The reply, or the entity's refusal as a value (never raised across Ray)."""
    try:
        return True, await reply
    except ActorError as exc:
        return False, exc


class PeerRouter:
    """Routes entity-to-entity messages: locally, or to the owning peer shard."""

    def __init__(self, shard: Any) -> None:  # the ShardActor hosting it
        self._shard = shard
        self._best_effort = Batcher(
            self._send_best_effort,
            linger=shard.cfg.batch_linger_ms / 1000,
            max_batch=shard.cfg.batch_max,
        )

    def tell(self, kind: EntityKind, entity_id: str, message: object) -> None:
        target = owner(kind.value, entity_id, self._shard.count)
        if target == self._shard.index:
            self._shard.host.enqueue(kind, entity_id, message, want_reply=False)
        else:
            self._best_effort.add(target, (kind, entity_id, message))

    async def deliver(
        self, kind: EntityKind, entity_id: str, message: object, stored: StoredTimer
    ) -> None:
        target = owner(kind.value, entity_id, self._shard.count)
        if target == self._shard.index:
            await self._shard.host.deliver_stored(message, stored)
            return
        ok, value = await self._shard.peer(target).deliver_stored.remote(message, stored)
        if not ok:
            assert isinstance(value, BaseException)
            raise value

    def _send_best_effort(self, target: int, batch: Sequence[Item]) -> Any:
        return self._shard.peer(target).tell_unordered.remote(list(batch))
