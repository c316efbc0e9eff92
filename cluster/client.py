"""The one typed client through which the gateway and workers reach entities.

``ask`` waits for the entity's reply (or its ``ActorError``, raised here);
``tell`` is fire-and-forget through a per-shard micro-batcher; ``tell_many``
sends many messages in batches and waits until all are processed; ``track``
sends location fixes to subject entities in batches outside that order. Messages
from one client to one entity are processed in the order the client issued
them, whichever of the three carried them (calls are numbered per shard, see
``cluster.sequencing``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, Final, cast
from uuid import uuid4

import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from actors.effects import EntityKind
from actors.kinds import DEFERRING
from cluster.batching import Batcher, CallBatcher, Item
from cluster.errors import ClusterError, ClusterUnavailable
from cluster.fix_stream import Address, FixStreams
from cluster.peers import ShardReply
from cluster.placement import group_by_shard, in_item_order, owner, shard_name
from cluster.sequencing import SenderStream
from cluster.tracking import FIXES_PER_CALL, pack_fixes
from geo.fences import Fix

log = logging.getLogger(__name__)

#: Entity -> shard answers remembered by a client (hashing is the hot cost of ``tell``).
_OWNER_CACHE = 200_000


class AskTimeout(ClusterError):
    """No reply within the timeout; the message may still be processed later."""

    retriable = True


#: How a gateway's batches of location fixes went to the shards (``EntityClient.fix_batches``).
FIX_BATCH_OUTCOMES: Final = ("streamed", "called", "failed")


class EntityClient:
    def __init__(
        self,
        shard_count: int,
        *,
        namespace: str,
        ask_timeout_s: float = 5.0,
        linger_s: float = 0.002,
        max_batch: int = 500,
        lazy_linger_s: float = 1.0,
        max_fixes: int | None = None,
        fix_stream: bool = True,
    ) -> None:
        """``max_batch`` messages per call to a shard; ``max_fixes`` location fixes
        per ``track`` call (default ``max_batch``; at most ``FIXES_PER_CALL``, so
        a call's argument travels inline): a gateway's flush of fixes then goes
        to each shard in few calls (each call costs both sides about the same
        whatever its size). With ``fix_stream`` those batches go over a plain
        stream to each shard instead, calls only while it is down
        (``cluster.fix_stream``)."""
        if shard_count < 1:
            raise ValueError("shard_count must be >= 1")
        self.shard_count = shard_count
        self._namespace = namespace
        self._ask_timeout_s = ask_timeout_s
        self._max_batch = max_batch
        self._stream_id = uuid4().hex
        self._streams = [SenderStream() for _ in range(shard_count)]
        self._handles: dict[int, Any] = {}
        self._owners: dict[tuple[EntityKind, str], int] = {}
        self._calls = CallBatcher(self._submit_calls, linger=linger_s, max_batch=max_batch)
        self._fixes = Batcher(
            self._submit_fixes,
            linger=linger_s,
            max_batch=min(max_fixes or max_batch, FIXES_PER_CALL),
        )
        self._lazy = Batcher(self._submit_batch, linger=lazy_linger_s, max_batch=max_batch)
        #: Where fixes go when not as calls (None: always as calls).
        self.fix_streams = FixStreams(self._fix_stream_address) if fix_stream else None
        #: Batches of fixes sent as ``track`` calls (the others went over a stream).
        self.fix_calls = 0

    def shard_of(self, kind: EntityKind, entity_id: str) -> int:
        key = (kind, entity_id)
        shard = self._owners.get(key)
        if shard is None:
            if len(self._owners) >= _OWNER_CACHE:
                self._owners.clear()  # cheap bound; hot ids come back at once
            shard = self._owners[key] = owner(kind.value, entity_id, self.shard_count)
        return shard

    def handle(self, shard: int) -> Any:
        """The shard actor's handle; :class:`ClusterUnavailable` while it is gone
        (killed and not yet restarted: Ray does not know the name then), or when
        this process is not connected to Ray (any call would start a Ray of its
        own: a batch whose linger ends after ``ray.shutdown`` must not)."""
        if not ray.is_initialized():
            raise ClusterUnavailable("this process is not connected to Ray")
        found = self._handles.get(shard)
        if found is None:
            try:
                found = ray.get_actor(shard_name(shard), namespace=self._namespace)
            except ValueError as exc:
                raise ClusterUnavailable(f"shard {shard} is not running: {exc}") from exc
            self._handles[shard] = found
        return found

    async def ask(
        self, kind: EntityKind, entity_id: str, message: object, *, deadline_s: float | None = None
    ) -> object:
        """The entity's reply; raises its ``ActorError``, or :class:`AskTimeout`.

        Asks made in the same turn of the event loop go to their shard in one
        call, with the tells made meanwhile, in order
        (:class:`~cluster.batching.CallBatcher`). An ask that may wait on another entity
        (:data:`~actors.kinds.DEFERRING`: an agent's ``TakeOffer`` waits
        for its alert) goes alone, so it holds up no other asker.
        """
        shard = self.shard_of(kind, entity_id)
        if isinstance(message, DEFERRING):
            answer = self._ask_alone(shard, (kind, entity_id, message))
        else:
            answer = self._calls.ask(shard, (kind, entity_id, message))
        try:
            reply = await asyncio.wait_for(answer, deadline_s or self._ask_timeout_s)
        except TimeoutError as exc:
            raise AskTimeout(f"{kind.value} {entity_id} did not answer in time") from exc
        ok, value = cast(ShardReply, reply)
        if not ok:
            assert isinstance(value, BaseException)
            raise value
        return value

    def _ask_alone(self, shard: int, item: Item) -> Awaitable[object]:
        self._calls.flush_shard(shard)  # earlier asks and tells to this shard go first
        handle = self.handle(shard)  # before numbering: a call numbered must be sent
        stream = self._streams[shard]
        seq, floor = stream.open()
        kind, entity_id, message = item
        ref = handle.ask.remote(self._stream_id, seq, floor, kind, entity_id, message)
        return self._finish(stream, seq, ref)

    async def ask_many(
        self, items: Sequence[tuple[EntityKind, str, object]], *, deadline_s: float | None = None
    ) -> list[object]:
        """Ask several entities at once: one call per shard instead of one per entity.

        Returns, in the order of ``items``, each entity's reply or the
        ``ActorError`` it raised (as a value: one refusal does not hide the
        other answers). Raises :class:`AskTimeout` if a shard does not answer.
        """
        per_shard = group_by_shard(self.shard_of(kind, e) for kind, e, _m in items)
        calls = []
        for shard, indexes in per_shard.items():
            self._calls.flush_shard(shard)
            handle = self.handle(shard)
            stream = self._streams[shard]
            seq, floor = stream.open()
            batch = [items[i] for i in indexes]
            ref = handle.ask_many.remote(self._stream_id, seq, floor, batch)
            calls.append(self._finish(stream, seq, ref))
        try:
            answers = await asyncio.wait_for(
                asyncio.gather(*calls), deadline_s or self._ask_timeout_s
            )
        except TimeoutError as exc:
            raise AskTimeout(f"{len(items)} entities did not answer in time") from exc
        return in_item_order(per_shard, answers)  # a reply, or the ActorError as a value

    def tell(self, kind: EntityKind, entity_id: str, message: object) -> None:
        """Fire-and-forget, batched; rejections are counted by the shard, not raised."""
        self._calls.tell(self.shard_of(kind, entity_id), (kind, entity_id, message))

    def tell_lazily(self, kind: EntityKind, entity_id: str, message: object) -> None:
        """:meth:`tell` for what no one waits for (signs of life): gathered per
        shard for up to ``lazy_linger_s``, so a fleet's heartbeats cost a call
        a second per shard rather than one each. Not ordered with the other
        tells and asks: it may arrive after messages sent later."""
        self._lazy.add(self.shard_of(kind, entity_id), (kind, entity_id, message))

    async def tell_many(self, items: Iterable[tuple[EntityKind, str, object]]) -> int:
        """Send in batches per shard and wait until every message is processed.

        Returns how many messages their entities rejected.
        """
        per_shard: dict[int, list[Item]] = {}
        for kind, entity_id, message in items:
            per_shard.setdefault(self.shard_of(kind, entity_id), []).append(
                (kind, entity_id, message)
            )
        pending: list[Awaitable[object]] = []
        for shard, shard_items in per_shard.items():
            self._calls.flush_shard(shard)
            for start in range(0, len(shard_items), self._max_batch):
                pending.append(
                    self._submit_batch(shard, shard_items[start : start + self._max_batch])
                )
        results = await asyncio.gather(*pending)
        return sum(int(r) for r in results if isinstance(r, int))

    def track(self, subject: str, fix: Fix) -> None:
        """A location fix for a subject entity (``actors.subject``): batched,
        unordered (the entity drops a fix older than its last), best effort."""
        shard = self.shard_of(EntityKind.SUBJECT, subject)
        self._fixes.add(shard, (EntityKind.SUBJECT, subject, fix))

    def send_fixes(self) -> None:
        """Send the fixes ``track`` buffered now, not after the linger (the caller
        gathered them over a linger of its own)."""
        self._fixes.send_buffered()

    async def track_room(self, batches: int) -> None:
        """Return once no shard has more than ``batches`` batches of fixes unanswered
        (``track``'s backpressure: the caller holds its fixes meanwhile)."""
        await self._fixes.wait_below(batches)

    @property
    def fix_batches(self) -> dict[str, int]:
        """Batches of fixes this process sent the shards: over a stream, as calls,
        and how many of either failed (lost with a broken stream or a failed
        call, or not sent at all: no shard, no Ray)."""
        streamed = 0 if self.fix_streams is None else self.fix_streams.sent
        counts = (streamed, self.fix_calls, self._fixes.failed_batches)
        return dict(zip(FIX_BATCH_OUTCOMES, counts, strict=True))

    async def flush(self) -> None:
        """Send every buffered tell (lazy ones too) and fix, and wait until they are
        processed."""
        await self._calls.flush()
        await self._fixes.flush()
        await self._lazy.flush()

    def _submit_calls(
        self, shard: int, batch: Sequence[Item], asked: Sequence[int]
    ) -> Awaitable[Sequence[object]]:
        # Numbered and submitted now (synchronously), so calls keep their order.
        handle = self.handle(shard)
        stream = self._streams[shard]
        seq, floor = stream.open()
        if asked:
            ref = handle.call_many.remote(self._stream_id, seq, floor, list(batch), list(asked))
        else:
            ref = handle.tell_many.remote(self._stream_id, seq, floor, list(batch))
        return cast(Awaitable[Sequence[object]], self._answers(stream, seq, ref, bool(asked)))

    def _submit_batch(self, shard: int, batch: Sequence[Item]) -> Awaitable[object]:
        # Numbered and submitted now (synchronously), so calls keep their order.
        handle = self.handle(shard)
        stream = self._streams[shard]
        seq, floor = stream.open()
        ref = handle.tell_many.remote(self._stream_id, seq, floor, list(batch))
        return self._finish(stream, seq, ref)

    def _submit_fixes(self, shard: int, batch: Sequence[Item]) -> Awaitable[object]:
        packed = pack_fixes([(key, cast(Fix, fix)) for _kind, key, fix in batch])
        if self.fix_streams is not None:
            answer = self.fix_streams.send(shard, packed)
            if answer is not None:
                return answer
        handle = self.handle(shard)
        self.fix_calls += 1
        return handle.track.remote(packed)  # type: ignore[no-any-return]

    async def _fix_stream_address(self, shard: int) -> Address:
        return await self.handle(shard).fix_stream.remote()  # type: ignore[no-any-return]

    @staticmethod
    async def _answers(stream: SenderStream, seq: int, ref: Any, asked: bool) -> Sequence[object]:
        answered = await EntityClient._finish(stream, seq, ref)
        return cast(Sequence[object], answered) if asked else ()

    @staticmethod
    async def _finish(stream: SenderStream, seq: int, ref: Any) -> object:
        try:
            return await ref
        except (RayActorError, ActorUnavailableError) as exc:
            # A shard killed or restarting; entity refusals come back as values.
            raise ClusterUnavailable(f"shard unavailable: {exc}") from exc
        finally:
            stream.close(seq)
