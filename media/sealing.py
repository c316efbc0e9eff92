"""The at-rest format of media objects: AES-256-GCM in fixed-size segments.

Pure: bytes in, bytes out; no I/O. Every object has its own random 256-bit
data key; the key is stored wrapped (AES-256-GCM) by a master key named by a
key id, so rotating the master key rewraps data keys and leaves content alone.

An object's plaintext is cut into segments of ``segment_size`` bytes (the
last may be shorter, or empty for an empty file). Each segment is stored as
one record, ``nonce (12) || ciphertext || tag (16)``, authenticated with the
media id and the segment's index, so a record cannot be moved to another
place or another object without failing to open. Records sit back to back,
so the record of segment ``i`` starts at ``i * record_size`` of its part and a
byte range is read by opening only the segments it covers. The plaintext's
size and the segment count live in the database row, not in the object:
a truncated object fails to read, it never reads short.

Nonces are random (96 bits) per record: the data key is unique to the
object and an object has at most a few hundred thousand records, far below
the 2**32 random-nonce bound, and a record that is rewritten (the tail of a
resumable upload) gets a fresh nonce, never a repeated one.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

#: Plaintext bytes per segment.
SEGMENT_SIZE = 64 * 1024
NONCE_SIZE = 12
TAG_SIZE = 16
#: Bytes a record adds to its segment.
OVERHEAD = NONCE_SIZE + TAG_SIZE
DATA_KEY_SIZE = 32
_RECORD_AAD = b"panic-alert media v1 segment"
_WRAP_AAD = b"panic-alert media v1 data key"


class SealError(Exception):
    """A record or a wrapped key failed to authenticate (tampered, misplaced,
    or opened with the wrong key)."""


def master_key(secret: str) -> bytes:
    """The 256-bit key of a master secret from the settings (its SHA-256)."""
    return hashlib.sha256(secret.encode()).digest()


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * DATA_KEY_SIZE)


def wrap_key(master: bytes, key_id: str, media_id: UUID, data_key: bytes) -> bytes:
    """``data_key`` encrypted under ``master``, bound to the media id and key id."""
    nonce = os.urandom(NONCE_SIZE)
    aad = _WRAP_AAD + media_id.bytes + key_id.encode()
    return nonce + AESGCM(master).encrypt(nonce, data_key, aad)


def unwrap_key(master: bytes, key_id: str, media_id: UUID, wrapped: bytes) -> bytes:
    aad = _WRAP_AAD + media_id.bytes + key_id.encode()
    try:
        return AESGCM(master).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:], aad)
    except InvalidTag as exc:
        raise SealError(
            f"the data key of media {media_id} does not open with key {key_id!r}"
        ) from exc


def _aad(media_id: UUID, index: int) -> bytes:
    return _RECORD_AAD + media_id.bytes + index.to_bytes(8, "big")


def seal(data_key: bytes, media_id: UUID, index: int, plaintext: bytes) -> bytes:
    """The record of segment ``index``."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + AESGCM(data_key).encrypt(nonce, plaintext, _aad(media_id, index))


def open_record(data_key: bytes, media_id: UUID, index: int, record: bytes) -> bytes:
    """The plaintext of segment ``index`` from its record; :class:`SealError` if it
    was altered, belongs elsewhere, or the key is wrong."""
    if len(record) < OVERHEAD:
        raise SealError(f"segment {index} of media {media_id} is truncated")
    try:
        return AESGCM(data_key).decrypt(
            record[:NONCE_SIZE], record[NONCE_SIZE:], _aad(media_id, index)
        )
    except InvalidTag as exc:
        raise SealError(f"segment {index} of media {media_id} does not authenticate") from exc


def record_size(segment_size: int = SEGMENT_SIZE) -> int:
    return segment_size + OVERHEAD


def stored_size(size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Bytes stored for ``size`` bytes of plaintext."""
    return size + segment_count(size, segment_size) * OVERHEAD


def segment_count(size: int, segment_size: int = SEGMENT_SIZE) -> int:
    """Segments of a ``size``-byte plaintext (an empty one still has one, empty)."""
    return max(1, -(-size // segment_size))


@dataclass(frozen=True, slots=True)
class SegmentSpan:
    """The segments covering plaintext bytes ``[start, end)``: segments
    ``first..last`` inclusive; ``skip`` bytes dropped from the first one's
    plaintext and ``take`` bytes kept in total."""

    first: int
    last: int
    skip: int
    take: int


def span(start: int, end: int, segment_size: int = SEGMENT_SIZE) -> SegmentSpan:
    """The segments to open for plaintext ``[start, end)`` (``start < end``)."""
    if not 0 <= start < end:
        raise ValueError(f"empty or negative range [{start}, {end})")
    first = start // segment_size
    return SegmentSpan(
        first=first,
        last=(end - 1) // segment_size,
        skip=start - first * segment_size,
        take=end - start,
    )


class Segmenter:
    """Cuts a stream of chunks into whole segments (pure; the caller seals them).

    ``feed`` returns the whole segments the chunk completed; ``rest`` is what
    is left (shorter than a segment), which ``finish`` hands back.
    """

    def __init__(self, segment_size: int = SEGMENT_SIZE, *, rest: bytes = b"") -> None:
        self._size = segment_size
        self._buffer = bytearray(rest)

    @property
    def rest(self) -> bytes:
        return bytes(self._buffer)

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        whole = len(self._buffer) // self._size * self._size
        if not whole:
            return []
        out = [bytes(self._buffer[i : i + self._size]) for i in range(0, whole, self._size)]
        del self._buffer[:whole]
        return out

    def finish(self) -> bytes:
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest
