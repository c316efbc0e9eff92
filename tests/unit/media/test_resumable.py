"""Resumable uploads sealed chunk by chunk (``media.resumable``), on fakes: any
cut of a file reads back byte-identical, and what a refused or losing chunk
wrote is gone (the real stores: tests/integration/api/test_media_tus.py)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from actors.roles import Role
from media import sealing
from media.errors import NotMedia, TooLarge, UploadGone, UploadMoved
from media.model import MediaRow, Upload, object_key
from media.resumable import (
    Appended,
    append,
    expire_uploads,
    new_upload,
    tail_size,
    terminate,
    whole_segments,
)
from media.vault import MasterKeys, Vault
from tests.fakes.media_uploads import FakeMediaUploads
from tests.fakes.objects import FakeObjectStore

PNG = b"\x89PNG\r\n\x1a\n"
SEGMENT = 100  # the smallest allowed is sniff.HEAD_BYTES (64)
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Setup:
    def __init__(self) -> None:
        self.store = FakeObjectStore(chunk=33)
        self.keys = MasterKeys({"k1": "a" * 40}, "k1")
        self.vault = Vault(self.store, self.keys, segment_size=SEGMENT)
        self.uploads = FakeMediaUploads()

    async def start(self, length: int, *, expiry_s: float = 3600.0) -> Upload:
        upload = new_upload(
            self.keys,
            upload_id=uuid.uuid4(),
            alert_id=uuid.uuid4(),
            uploader_id=uuid.uuid4(),
            uploader_role=Role.USER,
            length=length,
            now=NOW,
            expiry_s=expiry_s,
            segment_size=SEGMENT,
        )
        return await self.uploads.create(upload)

    async def send(self, upload: Upload, data: bytes, pieces: Sequence[int] = ()) -> Appended:
        return await append(
            self.vault, self.uploads, upload, _chunks(data, pieces), now=NOW, alert_limit=None
        )

    async def read(self, row: MediaRow) -> bytes:
        return b"".join([piece async for piece in self.vault.read(row, 0, row.size)])

    def keys_of(self, upload_id: uuid.UUID) -> set[str]:
        return {key for key in self.store.objects if key.startswith(f"{upload_id}/")}


async def _chunks(data: bytes, pieces: Sequence[int] = ()) -> AsyncIterator[bytes]:
    """``data`` in pieces of the given sizes (the last takes the rest)."""
    at = 0
    for size in pieces:
        yield data[at : at + size]
        at += size
    if at < len(data):
        yield data[at:]


def _file(size: int) -> bytes:
    return (PNG + os.urandom(size))[:size]


def _referenced(upload: Upload) -> set[str]:
    keys = {object_key(upload.id, part.name) for part in upload.sealed.parts}
    if upload.tail is not None:
        keys.add(object_key(upload.id, upload.tail))
    return keys


# Each plan: the file's size, then per request (PATCH) the sizes of its body's chunks
# (the last request sends the rest).
PLANS = {
    "one-byte chunks at the start": (
        5 * SEGMENT + 7,
        [[1]] * 9 + [[1, 1, 1, 1, 1]] * 12 + [[30, 40]] + [[1000]],
    ),
    "exact segment multiple": (3 * SEGMENT, [[SEGMENT]] * 3),
    "segment multiple in odd cuts": (4 * SEGMENT, [[37, 63], [150], [49, 1], [100]]),
    "one request": (7 * SEGMENT + 3, [[7, 300, 1]]),
    "a file shorter than the sniffed head": (10, [[3], [3], [4]]),
    "a file of one byte less than a segment": (SEGMENT - 1, [[SEGMENT - 1]]),
    "a file of one byte more than a segment": (SEGMENT + 1, [[SEGMENT], [1]]),
    "tails of every length": (6 * SEGMENT + 50, [[n] for n in (64, 1, 99, 101, 35, 199, 101)]),
}


@pytest.mark.parametrize("plan", PLANS.values(), ids=PLANS.keys())
async def test_a_file_sent_in_any_cut_reads_back_byte_identical(
    plan: tuple[int, list[list[int]]],
) -> None:
    size, requests = plan
    setup = Setup()
    data = _file(size)
    upload = await setup.start(size)
    at = 0
    done: Appended | None = None
    for n, pieces in enumerate(requests, 1):
        body = data[at:] if n == len(requests) else data[at : at + sum(pieces)]
        done = await setup.send(upload, body, pieces[:-1])
        at += len(body)
        if at < size:
            assert done.media is None
            upload = done.upload
            assert upload.offset == at
            assert tail_size(upload) == at % SEGMENT
            assert (upload.tail is None) == (at % SEGMENT == 0)
            # Nothing stored but what the row names: the old tails are gone.
            assert setup.keys_of(upload.id) == _referenced(upload)
            assert setup.uploads.uploads[upload.id] == upload
    assert at == size
    assert done is not None
    assert done.media is not None
    media = done.media
    assert media.id == upload.id
    assert media.size == size
    assert media.content_type == "image/png"
    assert media.sha256 == hashlib.sha256(data).hexdigest()
    assert sum(p.segments for p in media.sealed.parts) == sealing.segment_count(size, SEGMENT)
    assert await setup.read(media) == data
    assert setup.uploads.uploads == {}
    assert setup.uploads.media == {media.id: media}
    assert setup.keys_of(media.id) == {object_key(media.id, p.name) for p in media.sealed.parts}
    stored = b"".join(setup.store.objects.values())
    assert PNG not in stored
    for i in range(0, size - 16, 16):
        assert data[i : i + 16] not in stored


def test_an_empty_upload_is_refused_at_creation() -> None:
    keys = MasterKeys({"k1": "a" * 40}, "k1")
    with pytest.raises(ValueError, match="at least one byte"):
        new_upload(
            keys,
            upload_id=uuid.uuid4(),
            alert_id=uuid.uuid4(),
            uploader_id=uuid.uuid4(),
            uploader_role=Role.USER,
            length=0,
            now=NOW,
            expiry_s=60,
            segment_size=SEGMENT,
        )


async def test_an_empty_chunk_changes_nothing() -> None:
    setup = Setup()
    data = _file(250)
    upload = (await setup.send(await setup.start(250), data[:130])).upload
    before = dict(setup.store.objects)
    same = await setup.send(upload, b"")
    assert same.upload == upload
    assert same.media is None
    assert setup.store.objects == before


@pytest.mark.parametrize("winner_leaves_a_tail", [False, True])
async def test_a_chunk_that_loses_the_race_leaves_no_object(winner_leaves_a_tail: bool) -> None:
    setup = Setup()
    data = _file(1000)
    upload = await setup.start(1000)
    if winner_leaves_a_tail:  # the loser then finds the tail it read deleted
        upload = (await setup.send(upload, data[:150])).upload
        assert upload.tail is not None
    stale = upload
    won = (await setup.send(upload, data[upload.offset : upload.offset + 230])).upload
    kept = dict(setup.store.objects)
    with pytest.raises(UploadMoved):
        await setup.send(stale, data[stale.offset : stale.offset + 330])
    assert setup.store.objects == kept
    assert setup.keys_of(won.id) == _referenced(won)
    assert setup.uploads.uploads[won.id] == won
    # The last chunk racing too: the loser's final part goes, the file is whole.
    rest = data[won.offset :]
    done = await setup.send(won, rest)
    assert done.media is not None
    with pytest.raises(UploadGone):
        await setup.send(won, rest)
    assert await setup.read(done.media) == data
    assert setup.keys_of(won.id) == {object_key(won.id, p.name) for p in done.media.sealed.parts}


@pytest.mark.parametrize("first", [64, 10, 1])
async def test_a_file_that_is_not_media_ends_the_upload_and_leaves_nothing(first: int) -> None:
    setup = Setup()
    elf = b"\x7fELF\x02\x01\x01\x00" + os.urandom(992)
    upload = await setup.start(len(elf))
    if first < 64:  # too little to judge: kept, unsniffed, until the head is complete
        upload = (await setup.send(upload, elf[:first])).upload
        assert upload.content_type is None
        assert upload.offset == first
    with pytest.raises(NotMedia):
        await setup.send(upload, elf[upload.offset :], [1, 2, 100])
    assert setup.uploads.uploads == {}
    assert setup.store.objects == {}


async def test_bytes_past_the_length_are_refused_and_nothing_is_committed() -> None:
    setup = Setup()
    data = _file(300)
    upload = (await setup.send(await setup.start(300), data[:120])).upload
    kept = dict(setup.store.objects)
    with pytest.raises(TooLarge):
        await setup.send(upload, data[120:] + b"one too many", [150])
    assert setup.store.objects == kept
    assert setup.uploads.uploads[upload.id] == upload
    done = await setup.send(upload, data[120:])
    assert done.media is not None
    assert await setup.read(done.media) == data


async def test_an_alert_over_its_budget_at_completion_ends_the_upload() -> None:
    setup = Setup()
    data = _file(300)
    upload = (await setup.send(await setup.start(300), data[:200])).upload
    with pytest.raises(TooLarge):
        await append(
            setup.vault, setup.uploads, upload, _chunks(data[200:]), now=NOW, alert_limit=250
        )
    assert setup.uploads.uploads == {}
    assert setup.uploads.media == {}
    assert setup.store.objects == {}


async def test_termination_and_expiry_remove_rows_and_objects() -> None:
    setup = Setup()
    data = _file(500)
    ended = (await setup.send(await setup.start(500), data[:250])).upload
    old = (await setup.send(await setup.start(500, expiry_s=60), data[:170])).upload
    young = (await setup.send(await setup.start(500, expiry_s=7200), data[:330])).upload
    assert whole_segments(old) == 1
    assert old.tail is not None

    assert await terminate(setup.store, setup.uploads, ended.id)
    assert not await terminate(setup.store, setup.uploads, ended.id)  # safe to repeat
    assert setup.keys_of(ended.id) == set()

    assert await expire_uploads(setup.uploads, setup.store, NOW + timedelta(seconds=59)) == 0
    assert await expire_uploads(setup.uploads, setup.store, NOW + timedelta(seconds=60)) == 1
    assert set(setup.uploads.uploads) == {young.id}
    assert setup.keys_of(old.id) == set()
    assert setup.keys_of(young.id) == _referenced(young)
    with pytest.raises(UploadGone):
        await setup.send(old, data[170:])
    assert setup.keys_of(old.id) == set()
