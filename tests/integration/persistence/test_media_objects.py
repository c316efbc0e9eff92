"""The media object store on both backends: a directory, and the SeaweedFS S3
API that ``scripts/services up seaweedfs`` starts (a failure, never a skip,
when it is not running).

Every test works under a key prefix of its own and removes it afterwards, so
runs sharing the bucket never see each other's objects.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import stat
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from config.settings import MediaBackend, S3Settings, Settings
from media import sealing
from persistence.errors import ConfigurationError, NotFound, ServiceUnavailable
from persistence.media.objects import PART_SIZE, STREAM_CHUNK, ObstoreObjects, object_store

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
REPO = Path(__file__).resolve().parents[3]


@dataclass
class Bucket:
    objects: ObstoreObjects
    #: This test's own key prefix (no trailing ``/``).
    prefix: str
    #: The stored bytes of a key: the file on disk (local), or the whole object
    #: as S3 returns it; no decryption happens in the store either way.
    raw: Callable[[str], Awaitable[bytes]]

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"


@pytest.fixture(params=[MediaBackend.LOCAL, MediaBackend.S3], ids=["local", "s3"])
async def bucket(
    request: pytest.FixtureRequest, settings: Settings, tmp_path: Path
) -> AsyncIterator[Bucket]:
    backend: MediaBackend = request.param
    media = settings.media.model_copy(update={"backend": backend, "root": tmp_path / "media"})
    objects = object_store(media, tmp_path)
    assert objects.backend is backend

    async def raw(key: str) -> bytes:
        if backend is MediaBackend.LOCAL:
            return (media.root / key).read_bytes()
        return await objects.get_range(key, 0, 1 << 40)

    prefix = f"test-{uuid.uuid4().hex}"
    try:
        yield Bucket(objects, prefix, raw)
    finally:
        for key in [key async for key in objects.list(prefix)]:
            await objects.delete(key)
        assert [key async for key in objects.list(prefix)] == []


def pattern(size: int, seed: bytes = b"media") -> bytes:
    """``size`` bytes that differ at every offset (a misplaced range shows)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


# A size over two whole parts, so the put is a three-part multipart upload.
BIG = 2 * PART_SIZE + 123_457


async def test_a_multipart_put_reads_back_by_range(bucket: Bucket) -> None:
    data = pattern(BIG)
    key = bucket.key("big")
    assert await bucket.objects.put(key, chunked(data, 64 * 1024 + 7)) == BIG

    get = bucket.objects.get_range
    assert await get(key, 0, 100) == data[:100]
    assert await get(key, PART_SIZE - 50, PART_SIZE + 50) == data[PART_SIZE - 50 : PART_SIZE + 50]
    assert await get(key, BIG - 100, BIG) == data[-100:]
    assert await get(key, 0, BIG) == data
    # Past the end: what exists, and nothing (not an error) from the end on.
    assert await get(key, BIG - 10, BIG + 1000) == data[-10:]
    assert await get(key, BIG, BIG + 10) == b""
    assert await get(key, BIG + 5, BIG + 10) == b""
    assert await get(key, 17, 17) == b""
    with pytest.raises(ValueError, match="bad range"):
        await get(key, 10, 5)


async def test_stream_yields_the_range_in_chunks(bucket: Bucket) -> None:
    data = pattern(3 * MiB + 11)
    key = bucket.key("streamed")
    assert await bucket.objects.put(key, chunked(data, MiB)) == len(data)

    chunks = [c async for c in bucket.objects.stream(key, 1000, 3 * MiB)]
    assert b"".join(chunks) == data[1000 : 3 * MiB]
    assert all(isinstance(c, bytes) for c in chunks)
    # More than one chunk, none of the non-final ones below the minimum.
    assert len(chunks) > 1
    assert all(len(c) >= STREAM_CHUNK for c in chunks[:-1])

    tail = [c async for c in bucket.objects.stream(key, len(data) - 5, len(data) + 100)]
    assert b"".join(tail) == data[-5:]
    assert [c async for c in bucket.objects.stream(key, len(data), len(data) + 100)] == []


async def test_overwrite_replaces_the_whole_object(bucket: Bucket) -> None:
    key = bucket.key("again")
    assert await bucket.objects.put(key, chunked(b"first version", 4)) == 13
    assert await bucket.objects.get_range(key, 0, 100) == b"first version"

    big = pattern(PART_SIZE + 10, seed=b"second")
    assert await bucket.objects.put(key, chunked(big, MiB)) == len(big)
    assert await bucket.objects.get_range(key, 0, len(big) + 10) == big

    # A shorter object after a longer one: nothing of the longer one is left.
    assert await bucket.objects.put(key, chunked(b"third", 5)) == 5
    assert await bucket.objects.get_range(key, 0, len(big)) == b"third"
    assert [k async for k in bucket.objects.list(bucket.prefix)] == [key]


async def test_an_empty_object_is_stored(bucket: Bucket) -> None:
    key = bucket.key("empty")
    assert await bucket.objects.put(key, chunked(b"", 1)) == 0
    assert [k async for k in bucket.objects.list(bucket.prefix)] == [key]
    assert await bucket.objects.get_range(key, 0, 10) == b""


async def test_a_failed_put_leaves_the_previous_object(bucket: Bucket) -> None:
    key = bucket.key("kept")
    assert await bucket.objects.put(key, chunked(b"previous", 3)) == 8

    async def breaks() -> AsyncIterator[bytes]:
        yield pattern(PART_SIZE + 1)
        yield b"more"
        raise RuntimeError("the client went away")

    with pytest.raises(RuntimeError, match="went away"):
        await bucket.objects.put(key, breaks())
    assert await bucket.objects.get_range(key, 0, 100) == b"previous"
    assert [k async for k in bucket.objects.list(bucket.prefix)] == [key]


async def test_delete_is_idempotent_and_reads_then_say_not_found(bucket: Bucket) -> None:
    key = bucket.key("gone")
    await bucket.objects.put(key, chunked(b"evidence", 8))
    await bucket.objects.delete(key)
    await bucket.objects.delete(key)
    await bucket.objects.delete(bucket.key("never-written"))

    with pytest.raises(NotFound) as info:
        await bucket.objects.get_range(key, 0, 10)
    assert info.value.retriable is False
    with pytest.raises(NotFound):
        [c async for c in bucket.objects.stream(key, 0, 10)]
    # A range past the end of a missing key is still "missing", not "empty".
    with pytest.raises(NotFound):
        await bucket.objects.get_range(key, 5, 10)
    assert [k async for k in bucket.objects.list(bucket.prefix)] == []


async def test_list_gives_every_key_under_a_prefix(bucket: Bucket) -> None:
    names = ["a/00000", "a/00001", "a/tail", "a/sub/x", "ab/00000", "b/00000"]
    for name in names:
        await bucket.objects.put(bucket.key(name), chunked(name.encode(), 100))

    under_a = {k async for k in bucket.objects.list(bucket.key("a"))}
    assert under_a == {bucket.key(n) for n in ["a/00000", "a/00001", "a/tail", "a/sub/x"]}
    assert {k async for k in bucket.objects.list(bucket.key("a/sub"))} == {bucket.key("a/sub/x")}
    assert {k async for k in bucket.objects.list(bucket.prefix)} == {bucket.key(n) for n in names}
    assert [k async for k in bucket.objects.list(bucket.key("nothing-here"))] == []


async def test_sealed_records_are_stored_without_their_plaintext(bucket: Bucket) -> None:
    media_id = uuid.uuid4()
    data_key = sealing.new_data_key()
    marker = b"GPS 51.5007N 0.1246W; the plaintext must never be stored. "
    plaintext = marker * (3 * sealing.SEGMENT_SIZE // len(marker) + 1)
    segments = [
        plaintext[i : i + sealing.SEGMENT_SIZE]
        for i in range(0, len(plaintext), sealing.SEGMENT_SIZE)
    ]

    async def records() -> AsyncIterator[bytes]:
        for index, segment in enumerate(segments):
            yield sealing.seal(data_key, media_id, index, segment)

    key = bucket.key(f"{media_id}/00000")
    written = await bucket.objects.put(key, records())
    assert written == sealing.stored_size(len(plaintext))

    stored = await bucket.raw(key)
    assert len(stored) == written
    assert marker not in stored
    assert marker[:16] not in stored
    # ... and the stored records are exactly what opens back to the plaintext.
    size = sealing.record_size()
    opened = b"".join(
        sealing.open_record(data_key, media_id, i, stored[i * size : (i + 1) * size])
        for i in range(len(segments))
    )
    assert opened == plaintext


async def test_local_objects_are_private_to_the_owner(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "private" / "media"
    objects = object_store(
        settings.media.model_copy(update={"backend": MediaBackend.LOCAL, "root": root}), tmp_path
    )
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    small, big = "m1/00000", "m2/sub/00000"
    await objects.put(small, chunked(b"x" * 10, 4))
    await objects.put(big, chunked(pattern(PART_SIZE + 1), MiB))
    for key in (small, big):
        path = root / key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, key
        for parent in path.parents:
            if parent == root:
                break
            assert stat.S_IMODE(parent.stat().st_mode) == 0o700, parent
    # Deleting an object's last key removes its directory too.
    await objects.delete(small)
    assert not (root / "m1").exists()
    assert os.listdir(root) == ["m2"]


# Run in a process of its own: the peak resident size (VmHWM, reset by exec;
# not ru_maxrss, which keeps the forking parent's) only grows, so it says
# something only in a process that did nothing else.
_MEMORY_PROBE = """
import asyncio, json, sys, uuid
from pathlib import Path
from config.settings import Settings
from persistence.media.objects import ObstoreObjects

def peak():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")

SIZE = int(sys.argv[2])

async def chunks():
    block = bytes(range(256)) * 4096
    for _ in range(SIZE // len(block)):
        yield block

async def main():
    if sys.argv[1] == "s3":
        objects = ObstoreObjects.s3(Settings().media.s3)
    else:
        objects = ObstoreObjects.local(Path(sys.argv[3]))
    key = f"test-{uuid.uuid4().hex}/big"
    before = peak()
    try:
        written = await objects.put(key, chunks())
        read = 0
        async for chunk in objects.stream(key, 0, SIZE):
            read += len(chunk)
    finally:
        await objects.delete(key)
    print(json.dumps({"written": written, "read": read, "growth": peak() - before}))

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_a_large_object_is_never_held_in_memory(backend: str, tmp_path: Path) -> None:
    size = 256 * MiB
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _MEMORY_PROBE,
        backend,
        str(size),
        str(tmp_path / "media"),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await probe.communicate()
    # 0, not 134: the process exits cleanly after obstore calls (_settle_at_exit).
    assert probe.returncode == 0, (out.decode(), err.decode())
    result = json.loads(out)
    assert result["written"] == result["read"] == size
    # Parts in flight (PART_SIZE * (PUT_CONCURRENCY + 1)) and read buffers: a
    # small fraction of the object, whatever its size.
    assert result["growth"] < 64 * MiB, result


async def test_an_unreachable_s3_endpoint_is_service_unavailable() -> None:
    # Port 9 (discard) has no listener on loopback: the connection is refused.
    objects = ObstoreObjects.s3(S3Settings(endpoint="http://127.0.0.1:9"))
    with pytest.raises(ServiceUnavailable) as info:
        await objects.get_range("any/key", 0, 10)
    assert info.value.retriable is True
    assert info.value.service == "objects"
    with pytest.raises(ServiceUnavailable):
        await objects.put("any/key", chunked(b"abc", 1))


async def test_wrong_s3_credentials_are_a_configuration_error(settings: Settings) -> None:
    wrong = settings.media.s3.model_copy(update={"secret_access_key": SecretStr("not-the-secret")})
    objects = ObstoreObjects.s3(wrong)
    with pytest.raises(ConfigurationError) as info:
        await objects.put(f"test-{uuid.uuid4().hex}/x", chunked(b"abc", 1))
    assert info.value.retriable is False
