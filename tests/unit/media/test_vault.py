"""The vault seals what it stores and opens exactly the requested range
(on a fake object store: the real ones are tests/integration/persistence)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from actors.roles import Role
from media.errors import NotMedia, TooLarge, Unreadable
from media.model import MediaRow
from media.vault import MasterKeys, Vault, Written
from tests.fakes.objects import FakeObjectStore

PNG = b"\x89PNG\r\n\x1a\n"
SEGMENT = 100


async def _chunks(data: bytes, size: int = 37) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _row(media_id: uuid.UUID, written: Written) -> MediaRow:
    return MediaRow(
        id=media_id,
        alert_id=uuid.uuid4(),
        uploader_id=uuid.uuid4(),
        uploader_role=Role.USER,
        content_type=written.sniffed.content_type,
        kind=written.sniffed.kind,
        size=written.size,
        sha256=written.sha256,
        created_at=datetime.now(UTC),
        sealed=written.sealed,
    )


def _vault(store: FakeObjectStore, **keys: str) -> Vault:
    keys = keys or {"k1": "a" * 40}
    return Vault(store, MasterKeys(keys, next(iter(keys))), segment_size=SEGMENT)


async def _read(vault: Vault, row: MediaRow, start: int, end: int) -> bytes:
    return b"".join([piece async for piece in vault.read(row, start, end)])


@pytest.mark.parametrize("length", [len(PNG), SEGMENT - 1, SEGMENT, SEGMENT + 1, 5 * SEGMENT + 7])
async def test_stored_bytes_read_back_whole_and_by_any_range(length: int) -> None:
    store = FakeObjectStore(chunk=33)
    vault = _vault(store)
    data = PNG + os.urandom(length - len(PNG))
    media_id = uuid.uuid4()
    written = await vault.write(media_id, _chunks(data), max_bytes=10_000)
    assert (written.size, written.sha256) == (length, hashlib.sha256(data).hexdigest())
    assert written.sniffed.content_type == "image/png"
    row = _row(media_id, written)
    assert await _read(vault, row, 0, length) == data
    for start, end in [(0, 1), (1, length), (length - 1, length), (SEGMENT - 3, length)]:
        if start < end <= length:
            assert await _read(vault, row, start, end) == data[start:end]
    stored = b"".join(store.objects.values())
    assert data[8:40] not in stored or length == len(PNG)
    assert PNG not in stored


async def test_not_media_is_refused_before_anything_is_stored() -> None:
    store = FakeObjectStore()
    with pytest.raises(NotMedia):
        await _vault(store).write(uuid.uuid4(), _chunks(b"\x7fELF" + b"\0" * 500), max_bytes=10**6)
    assert store.objects == {}


async def test_a_file_over_the_limit_is_refused_and_leaves_no_object() -> None:
    store = FakeObjectStore()
    with pytest.raises(TooLarge):
        await _vault(store).write(uuid.uuid4(), _chunks(PNG + b"\0" * 500), max_bytes=300)
    assert store.objects == {}


async def test_a_tampered_object_is_unreadable_not_served() -> None:
    store = FakeObjectStore()
    vault = _vault(store)
    media_id = uuid.uuid4()
    row = _row(media_id, await vault.write(media_id, _chunks(PNG + b"x" * 250), max_bytes=10**6))
    (key,) = store.objects
    raw = bytearray(store.objects[key])
    raw[150] ^= 0xFF
    store.objects[key] = bytes(raw)
    with pytest.raises(Unreadable):
        await _read(vault, row, 0, row.size)
    store.objects[key] = bytes(raw[:200])  # truncated
    with pytest.raises(Unreadable):
        await _read(vault, row, 0, row.size)


async def test_a_rewrapped_key_reads_the_same_bytes_with_the_new_master_key_only() -> None:
    store = FakeObjectStore()
    old = _vault(store, k1="a" * 40)
    media_id = uuid.uuid4()
    data = PNG + os.urandom(333)
    row = _row(media_id, await old.write(media_id, _chunks(data), max_bytes=10**6))
    before = dict(store.objects)
    rotated = Vault(store, MasterKeys({"k1": "a" * 40, "k2": "b" * 40}, "k2"), segment_size=SEGMENT)
    key_id, wrapped = rotated.keys.rewrap(media_id, row.sealed.key_id, row.sealed.wrapped_key)
    assert key_id == "k2"
    row = replace(row, sealed=replace(row.sealed, key_id=key_id, wrapped_key=wrapped))
    only_new = Vault(store, MasterKeys({"k2": "b" * 40}, "k2"), segment_size=SEGMENT)
    assert await _read(only_new, row, 0, row.size) == data
    assert store.objects == before  # the content was not re-encrypted


async def test_remove_deletes_every_object_of_the_media_only() -> None:
    store = FakeObjectStore()
    vault = _vault(store)
    kept, gone = uuid.uuid4(), uuid.uuid4()
    await vault.write(kept, _chunks(PNG), max_bytes=100)
    await vault.write(gone, _chunks(PNG), max_bytes=100)
    await vault.remove(gone)
    await vault.remove(gone)
    assert [key.split("/")[0] for key in store.objects] == [str(kept)]
