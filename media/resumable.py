"""Resumable (tus) uploads: a file sealed chunk by chunk, then made media.

An upload (:class:`~media.model.Upload`) that has received ``offset`` bytes
is stored as

* **parts**: the whole segments ``0..n-1``, sealed with consecutive indices
  (``media.sealing``), one object per chunk that completed any, under
  ``<id>/<random name>``;
* **a tail**: the ``offset - n * segment_size`` bytes past them (less than a
  segment), sealed as ONE record at index ``n`` in an object ``<id>/<random
  name>``; no tail when there are none.

A chunk (one PATCH) reads the tail's plaintext back, feeds it and the body
through a :class:`~media.sealing.Segmenter`, writes the whole segments to a
new part and what is left to a new tail (a fresh random nonce: re-sealing a
tail never repeats one), and only then commits by a conditional update of
the row's offset. Objects are only ever written under new names, so a chunk
that loses a race deletes what it wrote and nothing of the winner's; the
previous tail is deleted after the commit. A chunk cut short (the client went
away) commits what arrived, so a resumed upload continues from the true
offset.

When the last byte arrives, the tail's plaintext becomes the last segment of
the last part (a file whose size is a multiple of the segment size has no
extra empty segment: the reader expects ``segment_count(size)``), the
SHA-256 is computed by reading the plaintext back, and the upload row is
replaced by a media row of the same id in one transaction.

The first bytes (``sniff.HEAD_BYTES``) are sniffed as soon as they have all
arrived (from the tail's plaintext and the body; segments are at least that
long, so it is before any whole segment is stored), or when the file ends if
it is shorter; a file that is not media is refused (:class:`NotMedia`) and
the upload terminated.

:class:`ChunkSealer` decides (pure: bytes in, records out); :func:`append`,
:func:`terminate` and :func:`expire_uploads` are the thin shell over the
:class:`~media.ports.ObjectStore` and :class:`~media.ports.MediaUploads`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NoReturn
from uuid import UUID

from actors.roles import Role
from actors.store_errors import NotFound
from media import sealing
from media.errors import NotMedia, TooLarge, Unreadable, UploadGone, UploadMoved
from media.model import MediaRow, Part, Sealed, Upload, object_key
from media.ports import MediaUploads, ObjectStore
from media.sniff import HEAD_BYTES, Sniffed, sniff
from media.vault import MasterKeys, Vault, part_name

log = logging.getLogger(__name__)


# --- pure ---------------------------------------------------------------------------


def new_upload(
    keys: MasterKeys,
    *,
    upload_id: UUID,
    alert_id: UUID,
    uploader_id: UUID,
    uploader_role: Role,
    length: int,
    now: datetime,
    expiry_s: float,
    segment_size: int = sealing.SEGMENT_SIZE,
) -> Upload:
    """A new, empty upload of ``length`` bytes (at least one) with its own data
    key, wrapped by the active master key; it expires ``expiry_s`` after ``now``."""
    if length < 1:
        raise ValueError("an upload has at least one byte")
    if segment_size < HEAD_BYTES:
        raise ValueError(f"segments of a resumable upload hold at least {HEAD_BYTES} bytes")
    key_id, wrapped = keys.wrap(upload_id, sealing.new_data_key())
    return Upload(
        id=upload_id,
        alert_id=alert_id,
        uploader_id=uploader_id,
        uploader_role=uploader_role,
        length=length,
        offset=0,
        sealed=Sealed(key_id, wrapped, segment_size, ()),
        tail=None,
        content_type=None,
        kind=None,
        created_at=now,
        expires_at=now + timedelta(seconds=expiry_s),
    )


def whole_segments(upload: Upload) -> int:
    """The segments stored in the upload's parts."""
    return sum(part.segments for part in upload.sealed.parts)


def tail_size(upload: Upload) -> int:
    """Plaintext bytes held in the tail (less than a segment)."""
    return upload.offset - whole_segments(upload) * upload.sealed.segment_size


class ChunkSealer:
    """Seals one chunk (PATCH body) after what ``upload`` holds. Pure.

    Feed the body with :meth:`feed` (records of whole segments, in order, for
    the new part), then take :meth:`last_records` (the file's last segment if
    the chunk completed it) and :meth:`tail_record` (the new tail, if any).
    :class:`TooLarge` past the upload's length, :class:`NotMedia` as soon as
    the first bytes are known not to be media; neither yields anything first.
    """

    def __init__(self, upload: Upload, data_key: bytes, rest: bytes) -> None:
        seg = upload.sealed.segment_size
        if seg < HEAD_BYTES:
            raise ValueError(f"segments of a resumable upload hold at least {HEAD_BYTES} bytes")
        if len(rest) != tail_size(upload):
            raise Unreadable(
                f"upload {upload.id}: the tail holds {len(rest)} bytes, not {tail_size(upload)}"
            )
        self._upload = upload
        self._key = data_key
        self._segmenter = sealing.Segmenter(seg, rest=rest)
        self._index = whole_segments(upload)
        self._new = 0
        self._received = 0
        self._sniffed: Sniffed | None = None
        if upload.content_type is not None and upload.kind is not None:
            self._sniffed = Sniffed(upload.content_type, upload.kind)
        # Unsniffed means fewer than HEAD_BYTES arrived: all of them are in ``rest``.
        self._head = bytearray(rest if self._sniffed is None else b"")

    @property
    def offset(self) -> int:
        return self._upload.offset + self._received

    @property
    def received(self) -> int:
        return self._received

    @property
    def complete(self) -> bool:
        return self.offset == self._upload.length

    @property
    def new_segments(self) -> int:
        """Records returned so far by :meth:`feed` and :meth:`last_records`."""
        return self._new

    @property
    def sniffed(self) -> Sniffed | None:
        return self._sniffed

    def _seal(self, plaintext: bytes) -> bytes:
        record = sealing.seal(self._key, self._upload.id, self._index, plaintext)
        self._index += 1
        self._new += 1
        return record

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.offset + len(chunk) > self._upload.length:
            limit = self._upload.length
            raise TooLarge(f"the body goes past the upload's length of {limit} bytes", limit=limit)
        self._received += len(chunk)
        if self._sniffed is None:
            self._head += chunk[:HEAD_BYTES]
            if len(self._head) >= HEAD_BYTES or self.complete:
                self._sniffed = sniff(bytes(self._head))
                if self._sniffed is None:
                    raise NotMedia("the file is not an accepted image, audio or video type")
        return [self._seal(segment) for segment in self._segmenter.feed(chunk)]

    def last_records(self) -> list[bytes]:
        """The file's last segment when this chunk completed it (none when the size
        is a whole number of segments, the empty one of an empty file)."""
        if not self.complete:
            return []
        rest = self._segmenter.finish()
        if rest or self._index == 0:
            return [self._seal(rest)]
        return []

    def tail_record(self) -> bytes | None:
        """The new tail's record (index: the next segment's), or None if the chunk
        completed the file or left nothing past the whole segments."""
        rest = self._segmenter.rest
        if self.complete or not rest:
            return None
        return sealing.seal(self._key, self._upload.id, self._index, rest)

    def advanced(self, part: Part | None, tail: str | None) -> Upload:
        """The upload once this chunk is committed with ``part`` and ``tail``."""
        sealed = self._upload.sealed
        if part is not None:
            sealed = replace(sealed, parts=(*sealed.parts, part))
        sniffed = self._sniffed
        return replace(
            self._upload,
            offset=self.offset,
            sealed=sealed,
            tail=tail,
            content_type=None if sniffed is None else sniffed.content_type,
            kind=None if sniffed is None else sniffed.kind,
        )


def media_of(upload: Upload, *, sha256: str, at: datetime) -> MediaRow:
    """The media row a complete upload becomes (same id)."""
    if upload.offset != upload.length or upload.content_type is None or upload.kind is None:
        raise ValueError(f"upload {upload.id} is not complete")
    return MediaRow(
        id=upload.id,
        alert_id=upload.alert_id,
        uploader_id=upload.uploader_id,
        uploader_role=upload.uploader_role,
        content_type=upload.content_type,
        kind=upload.kind,
        size=upload.length,
        sha256=sha256,
        created_at=at,
        sealed=upload.sealed,
    )


# --- the shell ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Appended:
    """A committed chunk: the upload after it, and the media it became if complete."""

    upload: Upload
    media: MediaRow | None


async def _one(record: bytes) -> AsyncIterator[bytes]:
    yield record


async def _then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for record in rest:
        yield record


async def _lost(uploads: MediaUploads, upload: Upload) -> UploadGone | UploadMoved | None:
    """Why a commit at ``upload.offset`` failed (it moved, or it is gone), or None
    if the row is as it was."""
    current = await uploads.get(upload.id)
    if current is None:
        return UploadGone(f"upload {upload.id} is gone")
    if current.offset != upload.offset:
        return UploadMoved(f"upload {upload.id} is at {current.offset}, not {upload.offset}")
    return None


async def _raise_lost(uploads: MediaUploads, upload: Upload) -> NoReturn:
    lost = await _lost(uploads, upload)
    raise lost or UploadMoved(f"upload {upload.id} changed under the chunk")


async def _tail_plaintext(
    vault: Vault, uploads: MediaUploads, upload: Upload, data_key: bytes
) -> bytes:
    if upload.tail is None:
        return b""
    key = object_key(upload.id, upload.tail)
    size = tail_size(upload) + sealing.OVERHEAD
    try:
        record = await vault.objects.get_range(key, 0, size)
        return sealing.open_record(data_key, upload.id, whole_segments(upload), record)
    except (NotFound, sealing.SealError) as exc:
        # Gone or short: another chunk may have committed (and deleted it) since
        # the row was read; otherwise the stored bytes are damaged.
        lost = await _lost(uploads, upload)
        if lost is not None:
            raise lost from exc
        raise Unreadable(f"upload {upload.id}: {exc}") from exc


async def remove_objects(objects: ObjectStore, upload_id: UUID) -> None:
    """Delete every object under ``<upload_id>/``; safe to repeat."""
    async for key in objects.list(f"{upload_id}/"):
        await objects.delete(key)


async def append(
    vault: Vault,
    uploads: MediaUploads,
    upload: Upload,
    chunks: AsyncIterable[bytes],
    *,
    now: datetime,
    alert_limit: int | None,
) -> Appended:
    """Seal ``chunks`` after ``upload`` and commit them; the media row if they complete it.

    A stream that simply ends early (a client that went away) commits what
    arrived. Raises, with nothing committed and nothing of its own left
    stored: :class:`UploadMoved` / :class:`UploadGone` when another chunk,
    a termination or the expiry came first; :class:`TooLarge` past the
    upload's length (the upload is kept) or past the alert's budget (the
    upload is terminated); :class:`NotMedia` (the upload is terminated).
    """
    data_key = vault.keys.unwrap(upload.id, upload.sealed.key_id, upload.sealed.wrapped_key)
    rest = await _tail_plaintext(vault, uploads, upload, data_key)
    sealer = ChunkSealer(upload, data_key, rest)
    objects = vault.objects
    written: list[str] = []

    async def records() -> AsyncIterator[bytes]:
        async for chunk in chunks:
            for record in sealer.feed(chunk):
                yield record
        for record in sealer.last_records():
            yield record

    try:
        sealed = records()
        first = await anext(sealed, None)
        part: Part | None = None
        if first is not None:
            name = part_name()
            written.append(object_key(upload.id, name))
            await objects.put(written[-1], _then(first, sealed))
            part = Part(name, sealer.new_segments)
        if sealer.received == 0:
            return Appended(upload, None)  # an empty chunk: nothing to commit
        tail: str | None = None
        tail_record = sealer.tail_record()
        if tail_record is not None:
            tail = part_name()
            written.append(object_key(upload.id, tail))
            await objects.put(written[-1], _one(tail_record))
        after = sealer.advanced(part, tail)
        media: MediaRow | None = None
        if sealer.complete:
            media = await _complete(vault, uploads, upload, after, now, alert_limit)
        elif not await uploads.advance(upload, after):
            await _raise_lost(uploads, upload)
    except NotMedia:
        await _delete(objects, written)
        await terminate(objects, uploads, upload.id, offset=upload.offset)
        raise
    except BaseException:
        await _delete(objects, written)
        raise
    if upload.tail is not None:
        await objects.delete(object_key(upload.id, upload.tail))
    return Appended(after, media)


async def _complete(
    vault: Vault,
    uploads: MediaUploads,
    before: Upload,
    after: Upload,
    now: datetime,
    alert_limit: int | None,
) -> MediaRow:
    digest = hashlib.sha256()
    provisional = media_of(after, sha256="0" * 64, at=now)
    async for piece in vault.read(provisional, 0, after.length):
        digest.update(piece)
    media = replace(provisional, sha256=digest.hexdigest())
    try:
        done = await uploads.complete(before, media, alert_limit=alert_limit)
    except TooLarge:
        await terminate(vault.objects, uploads, before.id, offset=before.offset)
        raise
    if not done:
        await _raise_lost(uploads, before)
    return media


async def _delete(objects: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        await objects.delete(key)


async def terminate(
    objects: ObjectStore, uploads: MediaUploads, upload_id: UUID, *, offset: int | None = None
) -> bool:
    """End an upload: its row, then its objects (tus termination). False, removing
    nothing, if it was gone (or, given ``offset``, had moved). Safe to repeat."""
    if not await uploads.discard(upload_id, offset=offset):
        return False
    await remove_objects(objects, upload_id)
    return True


async def expire_uploads(
    uploads: MediaUploads, objects: ObjectStore, now: datetime, *, limit: int = 100
) -> int:
    """Delete uploads expired by ``now`` (rows, then objects); how many. For the
    media worker's loop; safe to run in several processes at once (a row is
    deleted by one, and an upload completing meanwhile is never touched)."""
    done = 0
    for upload in await uploads.expired(now, limit):
        if await uploads.discard(upload.id, expired_by=now):
            await remove_objects(objects, upload.id)
            done += 1
    return done
