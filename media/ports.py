"""What media needs from storage, as Protocols it declares.

``persistence.media`` implements them: :class:`ObjectStore` on the local
filesystem or an S3-compatible bucket (one adapter over ``obstore``), and
:class:`MediaRecords` on PostgreSQL. Errors are those of
``actors.store_errors`` (``ServiceUnavailable`` when the store is down,
``NotFound``-like absences answered as ``None``), never a driver's.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

from media.model import MediaRow, Processing, Upload


class ObjectStore(Protocol):
    """Opaque objects by key (keys are ``/``-separated, no leading ``/``).

    An object is written whole and becomes visible only once complete; writing
    a key again replaces it. Everything here is safe to retry.
    """

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the concatenated ``chunks`` under ``key``; the bytes written."""
        ...

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the object (fewer if it is shorter)."""
        ...

    def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of the object, in chunks as they arrive."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is absent."""
        ...

    def list(self, prefix: str) -> AsyncIterator[str]:
        """Every key under ``prefix``."""
        ...


class MediaRecords(Protocol):
    """The ``media`` table: one row per object (originals and renditions).

    Each change writes its event (``media-uploads`` / ``media-processing``) in
    the same transaction.
    """

    async def insert(self, media: MediaRow, *, alert_limit: int | None = None) -> MediaRow:
        """Record a stored object; :class:`~media.errors.TooLarge` when the alert's
        originals would pass ``alert_limit`` bytes (checked in the same transaction)."""
        ...

    async def get(self, media_id: UUID) -> MediaRow | None:
        """The row with its renditions (purged rows too: the caller decides)."""
        ...

    async def for_alert(self, alert_id: UUID) -> Sequence[MediaRow]:
        """The alert's originals not purged, oldest first, with their renditions."""
        ...

    async def mark_deleted(
        self, row: MediaRow, at: datetime, purge_after: datetime | None, *, by: UUID
    ) -> bool:
        """Soft-delete: purged after ``purge_after``, or never (None: hidden from its
        user only). False when held or already deleted."""
        ...

    async def set_hold(
        self, row: MediaRow, held: bool, by: UUID, at: datetime, reason: str | None
    ) -> MediaRow | None: ...

    async def due_for_purge(self, now: datetime, limit: int) -> Sequence[MediaRow]:
        """Deleted originals past their retention, not held."""
        ...

    async def purged(self, row: MediaRow, at: datetime) -> None:
        """The objects of ``row`` and its renditions are gone."""
        ...

    async def set_processing(
        self,
        row: MediaRow,
        state: Processing,
        at: datetime,
        *,
        error: str | None = None,
        only_from: Sequence[Processing] | None = None,
    ) -> bool:
        """Move processing to ``state`` (only from ``only_from``); False if it did not."""
        ...

    async def add_renditions(
        self, parent: MediaRow, renditions: Sequence[MediaRow], at: datetime
    ) -> None:
        """Store renditions of ``parent`` (replacing earlier ones) and mark it done."""
        ...

    async def keys_not_wrapped_by(
        self, key_id: str, limit: int
    ) -> Sequence[tuple[str, UUID, str, bytes]]:
        """``(table, id, key_id, wrapped_key)`` of rows another master key wraps."""
        ...

    async def rewrap(
        self, table: str, media_id: UUID, old_key_id: str, key_id: str, wrapped: bytes
    ) -> bool:
        """Replace a wrapped key if still wrapped by ``old_key_id``."""
        ...


class MediaUploads(Protocol):
    """The ``media_uploads`` table: resumable uploads in progress (``media.resumable``).

    Every change is conditional, so racing chunks, a termination and the
    expiry never both win: the loser learns it from a False.
    """

    async def create(self, upload: Upload, *, alert_limit: int | None = None) -> Upload:
        """Record a new upload; :class:`~media.errors.TooLarge` when the alert's stored
        originals and ``upload.length`` together would pass ``alert_limit``."""
        ...

    async def get(self, upload_id: UUID) -> Upload | None:
        """The upload (expired ones too: the caller decides)."""
        ...

    async def advance(self, before: Upload, after: Upload) -> bool:
        """Store ``after`` (offset, parts, tail, type) if the row's offset is still
        ``before.offset``; False otherwise (another chunk won, or it is gone)."""
        ...

    async def complete(self, before: Upload, media: MediaRow, *, alert_limit: int | None) -> bool:
        """In one transaction: delete the upload if its offset is still
        ``before.offset`` and insert ``media`` (same id) with its ``media.uploaded``
        event. False (nothing changed) if the upload moved or is gone;
        :class:`~media.errors.TooLarge` (nothing changed) past ``alert_limit``."""
        ...

    async def discard(
        self, upload_id: UUID, *, offset: int | None = None, expired_by: datetime | None = None
    ) -> bool:
        """Delete the row (only at ``offset``, only if expired by ``expired_by``,
        when given); False if it did not. Its objects are the caller's to remove,
        and only after a True: a False may mean the upload just became media."""
        ...

    async def expired(self, now: datetime, limit: int) -> Sequence[Upload]:
        """Uploads whose ``expires_at`` is not after ``now``, oldest first."""
        ...
