"""Media rows (``media.ports.MediaRecords``) in PostgreSQL: tables ``media`` and
``media_uploads`` (migration 0012).

**Events with their change.** Every change that matters to the evidence trail
(stored, deleted, held, released, purged, processing queued/started/done/failed,
key rewrapped) writes its CloudEvent to the outbox in the same transaction
(topics ``media-uploads`` and ``media-processing``, keyed by the alert id, so
one alert's media events keep their order); the relay publishes them to
Kafka and the ``media_events`` collection. The data never holds a location
or a file name.

**An alert's byte budget** is checked under a transaction-scoped advisory
lock on the alert, so two uploads racing for the last bytes cannot both fit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from actors.effects import EventType, Topic
from actors.roles import Role
from media.errors import TooLarge
from media.model import MediaKind, MediaRow, Part, Processing, RenditionKind, Sealed
from persistence.drivers import postgres
from persistence.drivers.postgres import Connection
from persistence.outbox.writer import OutboxEvent, insert_statement

_COLUMNS = """
id, alert_id, parent_id, rendition, uploader_id, uploader_role, content_type, kind, size,
sha256, created_at, key_id, wrapped_key, segment_size, parts, processing, processing_error,
deleted_at, purge_after, hidden_from_user, legal_hold, purged_at
"""

_INSERT = (
    f"INSERT INTO media ({_COLUMNS}) "  # noqa: S608
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17, "
    "$18, $19, $20, $21, $22)"
)

# Column lists are constants of this module, never input.
_BY_ID = f"SELECT {_COLUMNS} FROM media WHERE id = $1"  # noqa: S608
_CHILDREN = f"SELECT {_COLUMNS} FROM media WHERE parent_id = $1 ORDER BY created_at, id"  # noqa: S608
_FOR_ALERT = (
    f"SELECT {_COLUMNS} FROM media WHERE alert_id = $1 AND purged_at IS NULL "  # noqa: S608
    "ORDER BY created_at, id"
)
_DUE = (
    f"SELECT {_COLUMNS} FROM media WHERE purge_after <= $1 AND purged_at IS NULL "  # noqa: S608
    "AND NOT legal_hold AND parent_id IS NULL ORDER BY purge_after LIMIT $2"
)
_REWRAP = {
    table: f"UPDATE {table} SET key_id = $3, wrapped_key = $4 "  # noqa: S608
    "WHERE id = $1 AND key_id = $2 RETURNING true"
    for table in ("media", "media_uploads")
}

_ALERT_BYTES = """
SELECT coalesce(sum(size), 0) FROM media
 WHERE alert_id = $1 AND parent_id IS NULL AND purged_at IS NULL
"""

_LOCK_ALERT = "SELECT pg_advisory_xact_lock(hashtextextended('media:' || $1::uuid::text, 0))"


def _sealed(record: asyncpg.Record) -> Sealed:
    parts = record["parts"]
    if isinstance(parts, str):  # a connection without the json codec
        parts = json.loads(parts)
    return Sealed(
        key_id=record["key_id"],
        wrapped_key=bytes(record["wrapped_key"]),
        segment_size=record["segment_size"],
        parts=tuple(Part(str(name), int(count)) for name, count in parts),
    )


def _row(record: asyncpg.Record, renditions: Sequence[MediaRow] = ()) -> MediaRow:
    rendition = record["rendition"]
    return MediaRow(
        id=record["id"],
        alert_id=record["alert_id"],
        uploader_id=record["uploader_id"],
        uploader_role=Role(record["uploader_role"]),
        content_type=record["content_type"],
        kind=MediaKind(record["kind"]),
        size=record["size"],
        sha256=record["sha256"],
        created_at=record["created_at"],
        sealed=_sealed(record),
        parent_id=record["parent_id"],
        rendition=None if rendition is None else RenditionKind(rendition),
        processing=Processing(record["processing"]),
        processing_error=record["processing_error"],
        deleted_at=record["deleted_at"],
        purge_after=record["purge_after"],
        hidden_from_user=record["hidden_from_user"],
        legal_hold=record["legal_hold"],
        purged_at=record["purged_at"],
        renditions=tuple(renditions),
    )


def _parts_json(parts: Sequence[Part]) -> list[list[str | int]]:
    """``parts`` as the jsonb array ``[[name, segments], ...]`` (the pool's codec encodes it)."""
    return [[part.name, part.segments] for part in parts]


def _args(row: MediaRow) -> list[Any]:
    return [
        row.id,
        row.alert_id,
        row.parent_id,
        None if row.rendition is None else row.rendition.value,
        row.uploader_id,
        row.uploader_role.value,
        row.content_type,
        row.kind.value,
        row.size,
        row.sha256,
        row.created_at,
        row.sealed.key_id,
        row.sealed.wrapped_key,
        row.sealed.segment_size,
        _parts_json(row.sealed.parts),
        row.processing.value,
        row.processing_error,
        row.deleted_at,
        row.purge_after,
        row.hidden_from_user,
        row.legal_hold,
        row.purged_at,
    ]


def media_event(row: MediaRow, event_type: EventType, at: datetime, **data: Any) -> OutboxEvent:
    """The CloudEvent of a change to ``row`` (keyed by its alert)."""
    topic = (
        Topic.MEDIA_UPLOADS if event_type is EventType.MEDIA_UPLOADED else Topic.MEDIA_PROCESSING
    )
    body: dict[str, Any] = {
        "media_id": str(row.id),
        "alert_id": str(row.alert_id),
        "kind": row.kind.value,
        "content_type": row.content_type,
        "size": row.size,
        "at": at.isoformat(),
        **data,
    }
    if row.parent_id is not None:
        body["parent_id"] = str(row.parent_id)
        body["rendition"] = None if row.rendition is None else row.rendition.value
    return OutboxEvent(
        event_id=uuid4(),
        topic=topic.value,
        key=str(row.alert_id),
        type=event_type.value,
        subject=str(row.id),
        data=body,
        time=at,
    )


class PostgresMediaRecords:
    """``media.ports.MediaRecords`` on one pool; ``source`` names the CloudEvents' source."""

    __slots__ = ("_pool", "_source")

    def __init__(self, pool: asyncpg.Pool, *, source: str) -> None:
        self._pool = pool
        self._source = source

    async def _events(self, conn: Connection, *events: OutboxEvent) -> None:
        statement, args = insert_statement(events, source=self._source)
        await conn.execute(statement, *args)

    async def _update(self, statement: str, args: Sequence[Any], event: OutboxEvent | None) -> bool:
        """Run a conditional ``UPDATE ... RETURNING true``; when it changed a row,
        write ``event`` in the same transaction. Whether it changed one."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                changed = bool(await conn.fetchval(statement, *args))
                if changed and event is not None:
                    await self._events(conn, event)
        return changed

    async def _insert(
        self, conn: Connection, row: MediaRow, alert_limit: int | None, event: EventType | None
    ) -> None:
        if alert_limit is not None and row.parent_id is None:
            await conn.execute(_LOCK_ALERT, row.alert_id)
            used = int(await conn.fetchval(_ALERT_BYTES, row.alert_id))
            if used + row.size > alert_limit:
                raise TooLarge(
                    f"the alert's files would pass {alert_limit} bytes", limit=alert_limit
                )
        await conn.execute(_INSERT, *_args(row))
        if event is not None:
            await self._events(conn, media_event(row, event, row.created_at))

    async def insert(self, media: MediaRow, *, alert_limit: int | None = None) -> MediaRow:
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                await self.insert_on(conn, media, alert_limit=alert_limit)
        return media

    async def insert_on(
        self, conn: Connection, media: MediaRow, *, alert_limit: int | None = None
    ) -> None:
        """:meth:`insert` inside the caller's transaction on ``conn`` (a resumable
        upload's completion, ``persistence.stores.media_uploads``)."""
        event = EventType.MEDIA_UPLOADED if media.parent_id is None else None
        await self._insert(conn, media, alert_limit, event)

    async def get(self, media_id: UUID) -> MediaRow | None:
        with postgres.EDGE:
            async with self._pool.acquire() as conn:
                record = await conn.fetchrow(_BY_ID, media_id)
                if record is None:
                    return None
                children = await conn.fetch(_CHILDREN, media_id)
        return _row(record, [_row(child) for child in children])

    async def for_alert(self, alert_id: UUID) -> Sequence[MediaRow]:
        with postgres.EDGE:
            records = await self._pool.fetch(_FOR_ALERT, alert_id)
        children: dict[UUID, list[MediaRow]] = {}
        for record in records:
            if record["parent_id"] is not None:
                children.setdefault(record["parent_id"], []).append(_row(record))
        return [
            _row(record, children.get(record["id"], ()))
            for record in records
            if record["parent_id"] is None
        ]

    async def mark_deleted(
        self, row: MediaRow, at: datetime, purge_after: datetime | None, *, by: UUID
    ) -> bool:
        """Soft-delete ``row``: purged after ``purge_after``, or never (None: hidden
        from its user only). False when it is held or already deleted."""
        hidden = purge_after is None
        return await self._update(
            "UPDATE media SET deleted_at = $2, purge_after = $3, hidden_from_user = $4 "
            "WHERE id = $1 AND deleted_at IS NULL AND NOT legal_hold RETURNING true",
            (row.id, at, purge_after, hidden),
            media_event(row, EventType.MEDIA_DELETED, at, by=str(by), kept=hidden),
        )

    async def set_hold(
        self, row: MediaRow, held: bool, by: UUID, at: datetime, reason: str | None
    ) -> MediaRow | None:
        """Place or release a legal hold (a held row's pending purge is cancelled,
        and a released one gets its purge back if it was deleted)."""
        event = EventType.MEDIA_HOLD_SET if held else EventType.MEDIA_HOLD_RELEASED
        await self._update(
            "UPDATE media SET legal_hold = $2, held_by = $3, held_at = $4 "
            "WHERE id = $1 AND purged_at IS NULL AND legal_hold <> $2 RETURNING true",
            (row.id, held, by, at),
            media_event(row, event, at, by=str(by), reason=reason),
        )
        return await self.get(row.id)

    async def due_for_purge(self, now: datetime, limit: int) -> Sequence[MediaRow]:
        """Deleted originals past their retention and not held."""
        with postgres.EDGE:
            records = await self._pool.fetch(_DUE, now, limit)
        return [_row(record) for record in records]

    async def purged(self, row: MediaRow, at: datetime) -> None:
        """Record that the objects of ``row`` and its renditions are gone."""
        await self._update(
            "UPDATE media SET purged_at = $2 WHERE (id = $1 OR parent_id = $1) "
            "AND purged_at IS NULL AND NOT legal_hold RETURNING true",
            (row.id, at),
            media_event(row, EventType.MEDIA_PURGED, at),
        )

    async def set_processing(
        self,
        row: MediaRow,
        state: Processing,
        at: datetime,
        *,
        error: str | None = None,
        only_from: Sequence[Processing] | None = None,
    ) -> bool:
        """Move processing to ``state`` (only from ``only_from`` when given), with its event."""
        event = {
            Processing.QUEUED: EventType.MEDIA_PROCESSING_QUEUED,
            Processing.RUNNING: EventType.MEDIA_PROCESSING_STARTED,
            Processing.DONE: EventType.MEDIA_PROCESSED,
            Processing.FAILED: EventType.MEDIA_PROCESSING_FAILED,
        }.get(state)
        allowed = None if only_from is None else [p.value for p in only_from]
        data: dict[str, Any] = {} if error is None else {"error": error}
        return await self._update(
            "UPDATE media SET processing = $2, processing_error = $3 WHERE id = $1 "
            "AND ($4::text[] IS NULL OR processing = ANY($4::text[])) RETURNING true",
            (row.id, state.value, error, allowed),
            None if event is None else media_event(row, event, at, **data),
        )

    async def add_renditions(
        self, parent: MediaRow, renditions: Sequence[MediaRow], at: datetime
    ) -> None:
        """Store the renditions of ``parent`` and mark it processed, in one transaction
        (replacing renditions of an earlier run)."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("DELETE FROM media WHERE parent_id = $1", parent.id)
                for rendition in renditions:
                    await conn.execute(_INSERT, *_args(rendition))
                await conn.execute(
                    "UPDATE media SET processing = 'done', processing_error = NULL WHERE id = $1",
                    parent.id,
                )
                made = [r.rendition.value for r in renditions if r.rendition is not None]
                await self._events(
                    conn, media_event(parent, EventType.MEDIA_PROCESSED, at, renditions=made)
                )

    # --- master-key rotation ----------------------------------------------------

    async def keys_not_wrapped_by(
        self, key_id: str, limit: int
    ) -> Sequence[tuple[str, UUID, str, bytes]]:
        """``(table, id, key_id, wrapped_key)`` of rows (media and uploads) whose data
        key another master key wraps."""
        with postgres.EDGE:
            records = await self._pool.fetch(
                "(SELECT 'media' AS t, id, key_id, wrapped_key FROM media WHERE key_id <> $1 "
                " LIMIT $2) UNION ALL "
                "(SELECT 'media_uploads', id, key_id, wrapped_key FROM media_uploads "
                " WHERE key_id <> $1 LIMIT $2)",
                key_id,
                limit,
            )
        return [(r["t"], r["id"], r["key_id"], bytes(r["wrapped_key"])) for r in records]

    async def rewrap(
        self, table: str, media_id: UUID, old_key_id: str, key_id: str, wrapped: bytes
    ) -> bool:
        """Replace a wrapped data key if it is still wrapped by ``old_key_id``."""
        statement = _REWRAP.get(table)
        if statement is None:
            raise ValueError(f"no wrapped keys in table {table!r}")
        with postgres.EDGE:
            done = await self._pool.fetchval(statement, media_id, old_key_id, key_id, wrapped)
        return bool(done)
