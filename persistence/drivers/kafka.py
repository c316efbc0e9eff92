"""Kafka adapter on aiokafka: an idempotent publisher and a manual-commit consumer.

Messages are CloudEvents 1.0 JSON (``persistence.outbox.events.CloudEvent``, re-exported
here), keyed by the entity id they concern so one entity's events stay in one
partition, in order.

Failure behaviour: nothing here waits forever. ``start()`` and ``ping()`` give
up after ``KafkaSettings.request_timeout_ms`` with
``ServiceUnavailable("kafka")``; a publish whose broker is gone fails after the
same timeout (aiokafka expires undelivered batches then).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from config.settings import KafkaSettings
from persistence.drivers.edge import DriverEdge
from persistence.errors import EncodingError, PersistenceError, PublishError, ServiceUnavailable
from persistence.outbox.events import CloudEvent

__all__ = [
    "CloudEvent",
    "ConsumedEvent",
    "Delivery",
    "KafkaConsumer",
    "KafkaPublisher",
    "PendingDeliveries",
]

log = logging.getLogger(__name__)


def translate_error(exc: BaseException) -> PersistenceError:
    """Map an aiokafka/OS exception to the package's errors (use with ``from exc``)."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, OSError | TimeoutError | KafkaConnectionError | KafkaTimeoutError):
        return ServiceUnavailable("kafka", detail)
    if isinstance(exc, KafkaError) and getattr(exc, "retriable", False):
        return ServiceUnavailable("kafka", detail)
    return PublishError(detail, retriable=False)


#: Maps every aiokafka/OS error leaving a block (``with kafka.EDGE: ...``).
EDGE = DriverEdge((TimeoutError, OSError, KafkaError), translate_error)


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where the broker stored one message."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    """One decoded message and its position, as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp_ms: int
    event: CloudEvent


class PendingDeliveries:
    """Acknowledgements still to come for one ``enqueue_many`` batch."""

    def __init__(self, futures: list[asyncio.Future[Any]], timeout_s: float) -> None:
        self._futures = futures
        self._timeout_s = timeout_s

    def __len__(self) -> int:
        return len(self._futures)

    async def wait(self) -> list[Delivery]:
        """Every delivery of the batch, waiting at most the delivery timeout.

        Raises ``ServiceUnavailable("kafka")`` or ``PublishError`` if any
        message was not acknowledged in time or was refused.
        """
        if not self._futures:
            return []
        # An idempotent aiokafka producer never expires a batch: it retries
        # until the broker is back. So the wait is bounded here; what is still
        # pending stays queued in the producer and is delivered (once) when
        # the broker returns, and the caller's retry may add a duplicate:
        # at-least-once, consumers dedupe by event id.
        _done, pending = await asyncio.wait(self._futures, timeout=self._timeout_s)
        if pending:
            raise ServiceUnavailable(
                "kafka",
                f"{len(pending)} of {len(self._futures)} messages not acknowledged "
                f"within {self._timeout_s:.1f}s",
            )
        deliveries: list[Delivery] = []
        first_error: BaseException | None = None
        for fut in self._futures:
            error = fut.exception()
            if error is not None:
                first_error = first_error or error
                continue
            meta = fut.result()
            deliveries.append(Delivery(meta.topic, meta.partition, meta.offset))
        if first_error is not None:
            failed = len(self._futures) - len(deliveries)
            log.warning(
                "kafka: %s of %s messages not acknowledged: %r",
                failed,
                len(self._futures),
                first_error,
            )
            raise translate_error(first_error) from first_error
        return deliveries


class KafkaPublisher:
    """Publishes CloudEvents with ``acks=all`` and an idempotent producer.

    Guarantees: a successful ``publish``/``publish_many`` means every message
    is on all in-sync replicas. A failure means *some* may have been written:
    callers retry, and consumers dedupe by event id (at-least-once). Within
    one publisher, messages with the same key are delivered in call order.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        linger_ms: int = 5,
        max_batch_size: int = 256 * 1024,
    ) -> None:
        self._settings = settings
        self._linger_ms = linger_ms
        self._max_batch_size = max_batch_size
        self._producer: Any = None

    @property
    def timeout_s(self) -> float:
        """Bound on connecting and on one metadata round trip."""
        return self._settings.request_timeout_ms / 1000

    @property
    def delivery_timeout_s(self) -> float:
        """Bound on waiting for the acknowledgements of one ``publish_many``."""
        return self._settings.delivery_timeout_ms / 1000

    def _new_producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._settings.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=self._linger_ms,
            max_batch_size=self._max_batch_size,
            request_timeout_ms=self._settings.request_timeout_ms,
            retry_backoff_ms=100,
        )

    async def start(self) -> None:
        """Connect; ``ServiceUnavailable("kafka")`` within the request timeout if no broker answers.

        Safe to call again after ``stop()`` or a failed start.
        """
        if self._producer is not None:
            return
        producer = self._new_producer()
        try:
            async with asyncio.timeout(self.timeout_s):
                await producer.start()
        except (TimeoutError, OSError, KafkaError) as exc:
            await _quietly_stop(producer)
            raise ServiceUnavailable("kafka", f"cannot start producer: {exc!r}") from exc
        self._producer = producer
        log.info("kafka producer started: %s", self._settings.bootstrap_servers)

    async def stop(self) -> None:
        """Flush what is pending (bounded by the request timeout) and disconnect."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quietly_stop(producer, timeout_s=self.timeout_s * 2)

    async def restart(self) -> None:
        """Drop the producer and start a fresh one (new producer id).

        Used after a delivery failure: aiokafka's idempotent producer can be
        left with a sequence-number gap once a batch expired, and a fresh
        producer id is the reliable way out.
        """
        await self.stop()
        await self.start()

    async def ping(self) -> None:
        """Fetch cluster metadata from the broker; ``ServiceUnavailable("kafka")`` if it cannot."""
        producer = self._require()
        try:
            async with asyncio.timeout(self.timeout_s):
                await producer.client.fetch_all_metadata()
        except (TimeoutError, OSError, KafkaError) as exc:
            raise ServiceUnavailable("kafka", str(exc) or type(exc).__name__) from exc

    async def partitions_for(self, topic: str) -> set[int]:
        """The partition ids of ``topic``; ``PublishError`` if it does not exist."""
        producer = self._require()
        try:
            partitions = await producer.partitions_for(topic)
        except (TimeoutError, OSError, KafkaError) as exc:
            # aiokafka reports a missing topic as a metadata timeout.
            raise PublishError(f"topic {topic!r} unknown or broker unavailable: {exc!r}") from exc
        return set(partitions)

    async def publish(self, topic: str, event: CloudEvent) -> Delivery:
        """Publish one event and wait for its acknowledgement."""
        (delivery,) = await self.publish_many([(topic, event)])
        return delivery

    async def publish_many(self, items: Sequence[tuple[str, CloudEvent]]) -> list[Delivery]:
        """Publish a batch in order and wait for every acknowledgement.

        Raises ``ServiceUnavailable("kafka")`` or ``PublishError`` if any
        message was not acknowledged (some may still have been written).
        """
        return await (await self.enqueue_many(items)).wait()

    async def enqueue_many(self, items: Sequence[tuple[str, CloudEvent]]) -> PendingDeliveries:
        """Hand a batch to the producer, in order, without waiting for acknowledgements.

        Returns once every message is queued in the producer; ``wait()`` on
        the result awaits the acknowledgements. Messages of successive
        ``enqueue_many`` calls with the same key keep call order, so a caller
        may enqueue batch k+1 while batch k is still in flight (pipelining).
        """
        producer = self._require()
        futures: list[asyncio.Future[Any]] = []
        with EDGE:
            for topic, event in items:
                fut = await producer.send(
                    topic, value=event.to_bytes(), key=event.kafka_key.encode("utf-8")
                )
                futures.append(fut)
        return PendingDeliveries(futures, self.delivery_timeout_s)

    def _require(self) -> Any:
        if self._producer is None:
            raise ServiceUnavailable("kafka", "publisher is not started")
        return self._producer


class KafkaConsumer:
    """A consumer-group member that yields decoded CloudEvents.

    Auto-commit is off: offsets move only when ``commit()`` is called, so
    call it *after* processing. A crash before the commit redelivers the
    uncommitted events (at-least-once). Messages that are not CloudEvents are
    logged and skipped (their offsets are committed with the rest) so one bad
    producer cannot wedge the group.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        group_id: str,
        topics: Sequence[str],
        auto_offset_reset: str = "earliest",
        max_poll_records: int = 500,
    ) -> None:
        self._settings = settings
        self._group_id = group_id
        self._topics = list(topics)
        self._auto_offset_reset = auto_offset_reset
        self._max_poll_records = max_poll_records
        self._consumer: Any = None
        self.skipped = 0

    async def start(self) -> None:
        """Join the group; ``ServiceUnavailable("kafka")`` within the request timeout if down."""
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=self._settings.client_id,
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset=self._auto_offset_reset,
            max_poll_records=self._max_poll_records,
            request_timeout_ms=max(self._settings.request_timeout_ms, 10_000),
        )
        try:
            async with asyncio.timeout(self._settings.request_timeout_ms / 1000):
                await consumer.start()
        except (TimeoutError, OSError, KafkaError) as exc:
            await _quietly_stop(consumer)
            raise ServiceUnavailable("kafka", f"cannot start consumer: {exc!r}") from exc
        self._consumer = consumer
        log.info("kafka consumer %s started on %s", self._group_id, ",".join(self._topics))

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await _quietly_stop(consumer)

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the group has assigned partitions and their starting
        positions are fixed (with ``latest``, nothing produced after this is
        skipped). For tests and tools that produce right after starting."""
        consumer = self._require()
        async with asyncio.timeout(timeout_s):
            for _ in itertools.count():  # the group coordinator assigns in the background
                if consumer.assignment():
                    break
                await asyncio.sleep(0.05)
            for partition in consumer.assignment():
                await consumer.position(partition)

    async def commit(self) -> None:
        """Commit the position after every event returned so far."""
        with EDGE:
            await self._require().commit()

    async def get_many(self, timeout_ms: int = 1000) -> list[ConsumedEvent]:
        """Up to ``max_poll_records`` events, waiting at most ``timeout_ms``."""
        try:
            batches = await self._require().getmany(timeout_ms=timeout_ms)
        except (OSError, KafkaError) as exc:
            raise translate_error(exc) from exc
        out: list[ConsumedEvent] = []
        for records in batches.values():
            for record in records:
                decoded = self._decode(record)
                if decoded is not None:
                    out.append(decoded)
        return out

    async def __aiter__(self) -> AsyncIterator[ConsumedEvent]:
        while True:
            for event in await self.get_many():
                yield event

    def _decode(self, record: Any) -> ConsumedEvent | None:
        try:
            event = CloudEvent.from_bytes(record.value)
        except EncodingError as exc:
            self.skipped += 1
            log.error(
                "skipping undecodable message %s[%s]@%s: %s",
                record.topic,
                record.partition,
                record.offset,
                exc,
            )
            return None
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        return ConsumedEvent(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            timestamp_ms=record.timestamp,
            event=event,
        )

    def _require(self) -> Any:
        if self._consumer is None:
            raise ServiceUnavailable("kafka", "consumer is not started")
        return self._consumer


async def _quietly_stop(client: Any, *, timeout_s: float = 5.0) -> None:
    """Stop an aiokafka client without hanging or raising.

    A producer's ``stop()`` flushes first, and with the broker gone an
    idempotent producer's flush never ends. After ``timeout_s`` the undelivered
    messages are abandoned (the outbox still holds them as unsent) and the
    background sender and connections are torn down directly.
    """
    try:
        async with asyncio.timeout(timeout_s):
            await client.stop()
        return
    except TimeoutError:
        log.warning(
            "kafka client did not stop within %.1fs; abandoning pending messages", timeout_s
        )
    except Exception as exc:  # best effort on the way out
        log.debug("ignoring error while stopping kafka client: %r", exc)
    # aiokafka has no public "close now": reach for the sender task and client.
    sender = getattr(client, "_sender", None)
    task = getattr(sender, "sender_task", None)
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
    inner = getattr(client, "client", None) or getattr(client, "_client", None)
    if inner is not None:
        with contextlib.suppress(Exception):
            await inner.close()
