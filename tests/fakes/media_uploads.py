"""A fake ``media.ports.MediaUploads``: uploads and media rows in dicts, with the
same conditional writes as the PostgreSQL store (unit tests of ``media.resumable``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from media.errors import TooLarge
from media.model import MediaRow, Upload


class FakeMediaUploads:
    def __init__(self) -> None:
        self.uploads: dict[UUID, Upload] = {}
        self.media: dict[UUID, MediaRow] = {}

    async def create(self, upload: Upload, *, alert_limit: int | None = None) -> Upload:
        self._check_budget(upload.alert_id, upload.length, alert_limit)
        self.uploads[upload.id] = upload
        return upload

    def _check_budget(self, alert_id: UUID, size: int, limit: int | None) -> None:
        used = sum(m.size for m in self.media.values() if m.alert_id == alert_id)
        if limit is not None and used + size > limit:
            raise TooLarge(f"the alert's files would pass {limit} bytes", limit=limit)

    async def get(self, upload_id: UUID) -> Upload | None:
        return self.uploads.get(upload_id)

    async def advance(self, before: Upload, after: Upload) -> bool:
        current = self.uploads.get(before.id)
        if current is None or current.offset != before.offset:
            return False
        self.uploads[before.id] = after
        return True

    async def complete(self, before: Upload, media: MediaRow, *, alert_limit: int | None) -> bool:
        current = self.uploads.get(before.id)
        if current is None or current.offset != before.offset:
            return False
        self._check_budget(media.alert_id, media.size, alert_limit)
        del self.uploads[before.id]
        self.media[media.id] = media
        return True

    async def discard(
        self, upload_id: UUID, *, offset: int | None = None, expired_by: datetime | None = None
    ) -> bool:
        current = self.uploads.get(upload_id)
        if current is None:
            return False
        if offset is not None and current.offset != offset:
            return False
        if expired_by is not None and current.expires_at > expired_by:
            return False
        del self.uploads[upload_id]
        return True

    async def expired(self, now: datetime, limit: int) -> Sequence[Upload]:
        due = sorted(
            (u for u in self.uploads.values() if u.expires_at <= now), key=lambda u: u.expires_at
        )
        return due[:limit]
