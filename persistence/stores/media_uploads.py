"""Resumable uploads in progress (``media.ports.MediaUploads``) in PostgreSQL:
table ``media_uploads`` (migration 0012).

Every write is conditional: a chunk commits only at the offset it was sent
for (``WHERE "offset" = $old``), so of two racing chunks one wins; the
completion deletes the row at that offset and inserts the media row of the
same id, with its ``media.uploaded`` event and the alert's budget check, in
one transaction (``PostgresMediaRecords.insert_on``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from actors.roles import Role
from media.errors import TooLarge
from media.model import MediaKind, MediaRow, Part, Upload
from persistence.drivers import postgres
from persistence.stores.media import _ALERT_BYTES, _LOCK_ALERT, PostgresMediaRecords, _sealed

_COLUMNS = """
id, alert_id, uploader_id, uploader_role, length, "offset", parts, tail, key_id, wrapped_key,
segment_size, content_type, kind, created_at, expires_at
"""

_INSERT = (
    f"INSERT INTO media_uploads ({_COLUMNS}) "  # noqa: S608
    "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12, $13, $14, $15)"
)
# Column lists are constants of this module, never input.
_BY_ID = f"SELECT {_COLUMNS} FROM media_uploads WHERE id = $1"  # noqa: S608
_EXPIRED = (
    f"SELECT {_COLUMNS} FROM media_uploads WHERE expires_at <= $1 "  # noqa: S608
    "ORDER BY expires_at LIMIT $2"
)
_ADVANCE = """
UPDATE media_uploads SET "offset" = $3, parts = $4::jsonb, tail = $5, content_type = $6, kind = $7
 WHERE id = $1 AND "offset" = $2 RETURNING true
"""
_DISCARD = """
DELETE FROM media_uploads
 WHERE id = $1 AND ($2::bigint IS NULL OR "offset" = $2)
   AND ($3::timestamptz IS NULL OR expires_at <= $3)
RETURNING true
"""


def _upload(record: asyncpg.Record) -> Upload:
    kind = record["kind"]
    return Upload(
        id=record["id"],
        alert_id=record["alert_id"],
        uploader_id=record["uploader_id"],
        uploader_role=Role(record["uploader_role"]),
        length=record["length"],
        offset=record["offset"],
        sealed=_sealed(record),
        tail=record["tail"],
        content_type=record["content_type"],
        kind=None if kind is None else MediaKind(kind),
        created_at=record["created_at"],
        expires_at=record["expires_at"],
    )


def _parts(parts: Sequence[Part]) -> list[list[str | int]]:
    """``[[name, segments], ...]``, encoded to jsonb by the pool's JSON codec."""
    return [[part.name, part.segments] for part in parts]


def _args(upload: Upload) -> list[Any]:
    return [
        upload.id,
        upload.alert_id,
        upload.uploader_id,
        upload.uploader_role.value,
        upload.length,
        upload.offset,
        _parts(upload.sealed.parts),
        upload.tail,
        upload.sealed.key_id,
        upload.sealed.wrapped_key,
        upload.sealed.segment_size,
        upload.content_type,
        None if upload.kind is None else upload.kind.value,
        upload.created_at,
        upload.expires_at,
    ]


class PostgresMediaUploads:
    """``media.ports.MediaUploads`` on one pool; ``source`` names the CloudEvents' source."""

    __slots__ = ("_pool", "_records")

    def __init__(self, pool: asyncpg.Pool, *, source: str) -> None:
        self._pool = pool
        self._records = PostgresMediaRecords(pool, source=source)

    async def create(self, upload: Upload, *, alert_limit: int | None = None) -> Upload:
        """Record a new upload; :class:`TooLarge` if the alert's stored originals and
        this upload's length would pass ``alert_limit`` (checked under the alert's
        lock; the completion checks again)."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                if alert_limit is not None:
                    await conn.execute(_LOCK_ALERT, upload.alert_id)
                    used = int(await conn.fetchval(_ALERT_BYTES, upload.alert_id))
                    if used + upload.length > alert_limit:
                        raise TooLarge(
                            f"the alert's files would pass {alert_limit} bytes", limit=alert_limit
                        )
                await conn.execute(_INSERT, *_args(upload))
        return upload

    async def get(self, upload_id: UUID) -> Upload | None:
        with postgres.EDGE:
            record = await self._pool.fetchrow(_BY_ID, upload_id)
        return None if record is None else _upload(record)

    async def advance(self, before: Upload, after: Upload) -> bool:
        """Store ``after`` if the row is still at ``before.offset``."""
        with postgres.EDGE:
            done = await self._pool.fetchval(
                _ADVANCE,
                before.id,
                before.offset,
                after.offset,
                _parts(after.sealed.parts),
                after.tail,
                after.content_type,
                None if after.kind is None else after.kind.value,
            )
        return bool(done)

    async def complete(self, before: Upload, media: MediaRow, *, alert_limit: int | None) -> bool:
        """The upload row (still at ``before.offset``) replaced by ``media``, in one
        transaction; False, changing nothing, if it moved or is gone."""
        with postgres.EDGE:
            async with self._pool.acquire() as conn, conn.transaction():
                done = await conn.fetchval(_DISCARD, before.id, before.offset, None)
                if not done:
                    return False
                await self._records.insert_on(conn, media, alert_limit=alert_limit)
        return True

    async def discard(
        self, upload_id: UUID, *, offset: int | None = None, expired_by: datetime | None = None
    ) -> bool:
        with postgres.EDGE:
            done = await self._pool.fetchval(_DISCARD, upload_id, offset, expired_by)
        return bool(done)

    async def expired(self, now: datetime, limit: int) -> Sequence[Upload]:
        with postgres.EDGE:
            records = await self._pool.fetch(_EXPIRED, now, limit)
        return [_upload(record) for record in records]
