"""Writing and reading media bytes: sealing (``media.sealing``) over an
:class:`~media.ports.ObjectStore`. The shell between the HTTP routes and
storage; it decides nothing about who may do what (``media.policy``).

Plaintext is never written anywhere: a chunk is sealed in memory, one
segment at a time, and only records reach the store. Memory held per
transfer is a segment or two, whatever the file's size.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from uuid import UUID

from actors.store_errors import NotFound
from config.settings import MediaSettings
from media import sealing
from media.errors import NotMedia, TooLarge, UnknownKey, Unreadable
from media.model import MediaRow, Part, Sealed, object_key
from media.ports import ObjectStore
from media.sniff import HEAD_BYTES, Sniffed, sniff


class MasterKeys:
    """The master keys by id, and the one new data keys are wrapped with."""

    __slots__ = ("_active", "_keys")

    def __init__(self, secrets_by_id: Mapping[str, str], active: str) -> None:
        if active not in secrets_by_id:
            raise ValueError(f"active master key {active!r} is not among the keys")
        self._keys = {key_id: sealing.master_key(s) for key_id, s in secrets_by_id.items()}
        self._active = active

    @property
    def active(self) -> str:
        return self._active

    def wrap(self, media_id: UUID, data_key: bytes) -> tuple[str, bytes]:
        """``(key id, wrapped key)`` under the active master key."""
        wrapped = sealing.wrap_key(self._keys[self._active], self._active, media_id, data_key)
        return self._active, wrapped

    def unwrap(self, media_id: UUID, key_id: str, wrapped: bytes) -> bytes:
        key = self._keys.get(key_id)
        if key is None:
            raise UnknownKey(
                f"media {media_id} is wrapped by master key {key_id!r}, not configured"
            )
        try:
            return sealing.unwrap_key(key, key_id, media_id, wrapped)
        except sealing.SealError as exc:
            raise Unreadable(str(exc)) from exc

    def rewrap(self, media_id: UUID, key_id: str, wrapped: bytes) -> tuple[str, bytes]:
        """The data key of ``media_id`` wrapped under the active key instead."""
        return self.wrap(media_id, self.unwrap(media_id, key_id, wrapped))


def media_keys(settings: MediaSettings) -> MasterKeys:
    """The master keys of ``settings``."""
    return MasterKeys(
        {key_id: secret.get_secret_value() for key_id, secret in settings.master_keys.items()},
        settings.active_key_id,
    )


@dataclass(frozen=True, slots=True)
class Written:
    """A stored object: its plaintext's size and SHA-256, type and sealing."""

    size: int
    sha256: str
    sniffed: Sniffed
    sealed: Sealed


async def _head(chunks: AsyncIterator[bytes]) -> bytes:
    head = bytearray()
    async for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    return bytes(head)


#: Plaintext handed on per read chunk: several segments, so a response is not
#: sent a 64 KiB segment at a time (each send costs the server a turn).
READ_CHUNK = 512 * 1024


async def _coalesced(pieces: AsyncIterator[bytes], size: int) -> AsyncIterator[bytes]:
    buffer = bytearray()
    async for piece in pieces:
        buffer += piece
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def part_name() -> str:
    """A fresh part name (random: racing writers never share a key)."""
    return secrets.token_hex(8)


class Vault:
    """Seals into and opens from one object store."""

    __slots__ = ("_keys", "_objects", "_segment_size")

    def __init__(
        self,
        objects: ObjectStore,
        keys: MasterKeys,
        *,
        segment_size: int = sealing.SEGMENT_SIZE,
    ) -> None:
        self._objects = objects
        self._keys = keys
        self._segment_size = segment_size

    @property
    def objects(self) -> ObjectStore:
        return self._objects

    @property
    def keys(self) -> MasterKeys:
        return self._keys

    async def write(
        self, media_id: UUID, chunks: AsyncIterable[bytes], *, max_bytes: int
    ) -> Written:
        """Seal and store a whole file as one part.

        Refuses (:class:`NotMedia`) before storing anything when the first bytes
        are not an allow-listed type, and (:class:`TooLarge`) as soon as more
        than ``max_bytes`` arrive; a refused or failed write leaves no object.
        """
        source = aiter(chunks)
        head = await _head(source)
        sniffed = sniff(head)
        if sniffed is None:
            raise NotMedia("the file is not an accepted image, audio or video type")
        data_key = sealing.new_data_key()
        key_id, wrapped = self._keys.wrap(media_id, data_key)
        digest = hashlib.sha256()
        size = 0
        count = 0
        refused: list[TooLarge] = []
        segmenter = sealing.Segmenter(self._segment_size)

        async def plaintext() -> AsyncIterator[bytes]:
            yield head
            async for chunk in source:
                yield chunk

        async def records() -> AsyncIterator[bytes]:
            nonlocal size, count
            async for chunk in plaintext():
                size += len(chunk)
                if size > max_bytes:
                    refused.append(TooLarge(f"the file is over {max_bytes} bytes", limit=max_bytes))
                    raise refused[-1]
                digest.update(chunk)
                for segment in segmenter.feed(chunk):
                    yield sealing.seal(data_key, media_id, count, segment)
                    count += 1
            rest = segmenter.finish()
            if rest or count == 0:
                yield sealing.seal(data_key, media_id, count, rest)
                count += 1

        name = part_name()
        key = object_key(media_id, name)
        try:
            await self._objects.put(key, records())
        except BaseException as exc:
            await self._objects.delete(key)
            if refused:
                raise refused[-1] from exc
            raise
        sealed = Sealed(key_id, wrapped, self._segment_size, (Part(name, count),))
        return Written(size=size, sha256=digest.hexdigest(), sniffed=sniffed, sealed=sealed)

    def read(self, row: MediaRow, start: int, end: int) -> AsyncIterator[bytes]:
        """Plaintext bytes ``[start, end)`` of ``row`` (``0 <= start < end <= size``),
        opening only the segments they cover. The data key is opened here, before
        the first byte is asked for, so an unknown or wrong master key
        (:class:`UnknownKey`, :class:`Unreadable`) is raised by this call, not in
        the middle of a response; :class:`Unreadable` later if a record fails to
        authenticate or is missing."""
        sealed = row.sealed
        data_key = self._keys.unwrap(row.id, sealed.key_id, sealed.wrapped_key)
        return _coalesced(self._read(data_key, row.id, row.size, sealed, start, end), READ_CHUNK)

    async def _read(
        self, data_key: bytes, media_id: UUID, size: int, sealed: Sealed, start: int, end: int
    ) -> AsyncIterator[bytes]:
        seg = sealed.segment_size
        span = sealing.span(start, end, seg)
        total = sealing.segment_count(size, seg)
        skip, take = span.skip, span.take
        first_of_part = 0
        for part in sealed.parts:
            lo = max(span.first, first_of_part)
            hi = min(span.last, first_of_part + part.segments - 1)
            if lo <= hi:
                async for plain in self._open_part(
                    data_key, media_id, object_key(media_id, part.name), seg, total, size,
                    first_of_part, lo, hi,
                ):  # fmt: skip
                    if skip:
                        plain, skip = plain[skip:], 0
                    piece = plain[:take]
                    take -= len(piece)
                    if piece:
                        yield piece
                    if not take:
                        return
            first_of_part += part.segments
        if take:
            raise Unreadable(f"media {media_id} has fewer stored bytes than its size")

    async def _open_part(
        self,
        data_key: bytes,
        media_id: UUID,
        key: str,
        seg: int,
        total: int,
        size: int,
        first_of_part: int,
        lo: int,
        hi: int,
    ) -> AsyncIterator[bytes]:
        record = sealing.record_size(seg)

        def length(index: int) -> int:
            if index == total - 1:
                return size - index * seg + sealing.OVERHEAD
            return record

        begin = (lo - first_of_part) * record
        stop = (hi - first_of_part) * record + length(hi)
        buffer = bytearray()
        index = lo
        try:
            async for chunk in self._objects.stream(key, begin, stop):
                buffer += chunk
                while index <= hi and len(buffer) >= length(index):
                    n = length(index)
                    yield sealing.open_record(data_key, media_id, index, bytes(buffer[:n]))
                    del buffer[:n]
                    index += 1
        except sealing.SealError as exc:
            raise Unreadable(str(exc)) from exc
        except NotFound as exc:  # a row whose object is gone: never served short
            raise Unreadable(f"media {media_id}: {key} is missing") from exc
        if index <= hi:
            raise Unreadable(f"media {media_id}: segment {index} is missing from {key}")

    async def remove(self, media_id: UUID) -> None:
        """Delete every object of ``media_id`` (parts, tail); safe to repeat."""
        await remove_objects(self._objects, media_id)


async def remove_objects(objects: ObjectStore, media_id: UUID) -> None:
    """Delete every object of ``media_id`` (parts, tail); safe to repeat."""
    async for key in objects.list(f"{media_id}/"):
        await objects.delete(key)
