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

from media.model import MediaRow


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
    """The ``media`` table: one row per object (originals and renditions)."""

    async def insert(self, media: MediaRow, *, alert_limit: int | None = None) -> MediaRow:
        """Record a stored object; ``Conflict`` when the alert's originals would
        pass ``alert_limit`` bytes (checked in the same transaction)."""
        ...

    async def get(self, media_id: UUID) -> MediaRow | None: ...

    async def for_alert(self, alert_id: UUID) -> Sequence[MediaRow]:
        """The alert's originals (not purged), oldest first, with their renditions."""
        ...

    async def alert_bytes(self, alert_id: UUID) -> int:
        """Bytes of the alert's originals not yet purged."""
        ...

    async def mark_deleted(self, media_id: UUID, at: datetime, purge_after: datetime) -> bool:
        """Soft-delete; False when already deleted or held."""
        ...

    async def set_hold(
        self, media_id: UUID, held: bool, by: UUID, at: datetime
    ) -> MediaRow | None: ...

    async def due_for_purge(self, now: datetime, limit: int) -> Sequence[MediaRow]: ...

    async def purged(self, media_id: UUID, at: datetime) -> None:
        """The objects of ``media_id`` (and its renditions) are gone."""
        ...

    async def set_processing(
        self, media_id: UUID, state: str, error: str | None = None
    ) -> None: ...

    async def keys_not_wrapped_by(
        self, key_id: str, limit: int
    ) -> Sequence[tuple[UUID, str, bytes]]:
        """``(id, key_id, wrapped_key)`` of rows whose data key another master key wraps."""
        ...

    async def rewrap(self, media_id: UUID, old_key_id: str, key_id: str, wrapped: bytes) -> bool:
        """Replace the wrapped key if it is still wrapped by ``old_key_id``."""
        ...
