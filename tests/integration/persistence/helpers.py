"""Helpers shared by the persistence integration tests (no fixtures here)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from actors.effects import Topic
from config.settings import KafkaSettings, Settings
from persistence.drivers.kafka import ConsumedEvent, KafkaConsumer, KafkaPublisher
from persistence.drivers.postgres import Connection
from persistence.outbox.events import CloudEvent
from persistence.outbox.writer import OutboxEvent, insert_statement

#: The CloudEvents source the relay stores (``KafkaSettings.source``).
SOURCE = Settings().kafka.source


async def write_outbox(
    conn: Connection,
    events: Sequence[OutboxEvent],
    *,
    topics: Collection[str] = frozenset(Topic),
) -> None:
    """Insert ``events`` into the outbox inside ``conn``'s open transaction, with
    the statement the entity store's commit uses (``insert_statement``)."""
    statement, args = insert_statement(events, source=SOURCE, topics=topics)
    await conn.execute(statement, *args)


def make_event(**overrides: Any) -> CloudEvent:
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "source": "urn:panic-alert:test",
        "type": "test.happened",
        "subject": str(uuid.uuid4()),
        "time": datetime.now(UTC),
        "data": {"n": 1, "nested": {"ok": True}},
    }
    fields.update(overrides)
    return CloudEvent(**fields)


async def commit_group_at_end(
    settings: KafkaSettings, publisher: KafkaPublisher, group_id: str, topic: str
) -> None:
    """Commit ``group_id``'s offsets at the current end of ``topic``.

    A ``KafkaConsumer`` of that group then starts exactly after everything
    already in the topic: it sees only what the test publishes next.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = await publisher.partitions_for(topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        offsets = {tp: await consumer.position(tp) for tp in tps}
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def consume_until(
    settings: KafkaSettings,
    group_id: str,
    topic: str,
    done: Callable[[list[ConsumedEvent]], bool],
    *,
    timeout_s: float = 30.0,
) -> list[ConsumedEvent]:
    """Consume ``topic`` as ``group_id`` until ``done(seen)``; commit; return what was seen."""
    consumer = KafkaConsumer(settings, group_id=group_id, topics=[topic])
    await consumer.start()
    seen: list[ConsumedEvent] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(seen):
                seen.extend(await consumer.get_many(timeout_ms=500))
        await consumer.commit()
    finally:
        await consumer.stop()
    return seen


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 30.0, every_s: float = 0.2
) -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {timeout_s}s: {check}")
        await asyncio.sleep(every_s)
