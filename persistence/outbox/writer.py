"""The outbox's writing side: events committed with the state they describe.

Writers put :func:`insert_statement` (or :func:`enqueue`) into the
transaction that changes state, so an event exists if and only if its state
change committed. ``persistence.outbox.relay`` then delivers the rows.
Refused at write time: an unknown topic, a naive time, an empty key (a bad
event fails its own transaction instead of blocking the relay's queue).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from config.settings import KAFKA_TOPICS
from persistence.drivers import postgres


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event to publish: becomes a CloudEvent on ``topic`` keyed by ``key``.

    ``key`` is the entity id the event concerns (same key, same partition,
    same order); ``event_id`` is the CloudEvent id consumers dedupe on.
    """

    event_id: UUID
    topic: str
    key: str
    type: str
    subject: str | None
    data: Mapping[str, Any]
    time: datetime


_INSERT = """
INSERT INTO outbox (event_id, topic, key, type, source, subject, time, data)
SELECT e.event_id, e.topic, e.key, e.type, $5, e.subject,
       date_trunc('milliseconds', e.time), e.data::jsonb
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
              $6::text[], $7::timestamptz[], $8::text[])
       AS e(event_id, topic, key, type, subject, time, data)
"""


def validate(events: Sequence[OutboxEvent], topics: Collection[str] = KAFKA_TOPICS) -> None:
    """Refuse events the relay could never deliver (unknown topic, naive time, empty key).

    Checked at write time so a bad event fails its own transaction instead
    of blocking the relay's queue later.
    """
    for event in events:
        if event.topic not in topics:
            raise ValueError(f"outbox event {event.event_id}: unknown topic {event.topic!r}")
        if event.time.tzinfo is None:
            raise ValueError(f"outbox event {event.event_id}: time must be timezone-aware")
        if not event.key:
            raise ValueError(f"outbox event {event.event_id}: empty key")


async def enqueue(
    conn: postgres.Connection,
    events: Sequence[OutboxEvent],
    *,
    source: str,
    topics: Collection[str] = KAFKA_TOPICS,
) -> None:
    """Write ``events`` to the outbox as part of the caller's open transaction.

    One statement for the whole batch (and so one NOTIFY to the relays on
    commit). ``source`` is the CloudEvents source (``KafkaSettings.source``). Raises
    ``ValueError`` for an undeliverable event and ``Conflict`` if an
    ``event_id`` was already enqueued. Not idempotent by itself: the
    caller's transaction is the unit of retry.
    """
    if not events:
        return
    if not conn.is_in_transaction():
        # Outside a transaction the event could commit without its state change.
        raise ValueError("enqueue must run inside the caller's transaction")
    statement, args = insert_statement(events, source=source, topics=topics)
    with postgres.EDGE:
        await conn.execute(statement, *args)


def insert_statement(
    events: Sequence[OutboxEvent],
    *,
    source: str,
    topics: Collection[str] = KAFKA_TOPICS,
) -> tuple[str, list[Any]]:
    """The INSERT of ``events`` and its arguments, after :func:`validate`.

    For writers that put the insert into a larger single statement (the
    entity store's commit); :func:`enqueue` is the usual way in.
    """
    validate(events, topics)
    return _INSERT, [
        [e.event_id for e in events],
        [e.topic for e in events],
        [e.key for e in events],
        [e.type for e in events],
        source,
        [e.subject for e in events],
        [e.time for e in events],
        [json.dumps(e.data, separators=(",", ":"), default=str) for e in events],
    ]
