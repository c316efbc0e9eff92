"""Resumable uploads (tus 1.0) over real HTTP, against PostgreSQL, Redis, Ray and
the filesystem object store, driven by the real ``tuspy`` client: uploads
complete byte-identical, an interrupted one resumes where the server says it
stopped, and only the uploader sees an upload."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from tusclient import client as tus
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

from config.settings import Settings
from gateway.auth.principal import Role
from media.resumable import expire_uploads
from persistence.media.objects import object_store
from persistence.stores.media_uploads import PostgresMediaUploads
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.mediakit import (
    MAX_FILE,
    entries,
    http,
    media_api,
    media_root,
    media_settings,
    noise_png,
    stored_bytes,
    stored_files,
)
from tests.integration.api.test_alerts import alert_body, assert_problem

pytestmark = pytest.mark.integration

__all__ = ["http", "media_api", "media_root"]  # the module's gateway (mediakit)

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = 50_000  # not a multiple of the 64 KiB segments: every chunk leaves a tail


async def raise_alert(http: httpx.AsyncClient, user: Account) -> str:
    response = await http.post("/alerts", json=alert_body(), headers=user.headers)
    assert response.status_code == 201, response.text
    alert_id: str = response.json()["id"]
    return alert_id


def metadata(alert_id: str) -> str:
    return "alert_id " + base64.b64encode(alert_id.encode()).decode()


async def create(http: httpx.AsyncClient, who: Account, alert_id: str, length: int) -> str:
    """A new upload's path."""
    created = await http.post(
        "/media/uploads",
        headers={
            **who.headers,
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(alert_id),
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["tus-resumable"] == "1.0.0"
    assert created.headers["upload-expires"].endswith(" GMT")
    location: str = created.headers["location"]
    assert location.startswith("/media/uploads/")
    return location


async def patch(
    http: httpx.AsyncClient, who: Account, path: str, offset: int, body: bytes, **headers: str
) -> httpx.Response:
    return await http.patch(
        path,
        content=body,
        headers={
            **who.headers,
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


async def head_offset(http: httpx.AsyncClient, who: Account, path: str) -> int:
    response = await http.head(path, headers={**who.headers, **TUS})
    assert response.status_code == 200, response.status_code
    assert response.headers["cache-control"] == "no-store"
    return int(response.headers["upload-offset"])


def uploader(
    gateway: Gateway,
    who: Account,
    content: bytes,
    *,
    alert_id: str | None = None,
    url: str | None = None,
) -> tus.Uploader:
    """A tuspy uploader (sync: call its methods in a thread)."""
    client = tus.TusClient(f"{gateway.base_url}/media/uploads", headers=who.headers)
    if url is not None:
        return client.uploader(file_stream=io.BytesIO(content), url=url, chunk_size=CHUNK)
    assert alert_id is not None
    return client.uploader(
        file_stream=io.BytesIO(content), chunk_size=CHUNK, metadata={"alert_id": alert_id}
    )


async def assert_no_upload(http: httpx.AsyncClient, who: Account, path: str) -> None:
    """HEAD answers 404 (a HEAD answer has no body to hold the problem)."""
    response = await http.head(path, headers={**who.headers, **TUS})
    assert response.status_code == 404
    assert response.headers["tus-resumable"] == "1.0.0"
    assert "upload-offset" not in response.headers


def media_id_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


async def assert_reads_back(
    http: httpx.AsyncClient, who: Account, media_id: str, content: bytes
) -> None:
    read = await http.get(f"/media/{media_id}", headers=who.headers)
    assert read.status_code == 200, read.text
    assert read.content == content
    meta = (await http.get(f"/media/{media_id}/meta", headers=who.headers)).json()
    assert meta["size"] == len(content)
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert meta["content_type"] == "image/png"


def assert_no_plaintext(stored: bytes, content: bytes) -> None:
    assert stored, "nothing is stored"
    assert b"IHDR" not in stored
    assert b"\x89PNG" not in stored
    for offset in range(0, len(content) - 32, max(1, len(content) // 50)):
        assert content[offset : offset + 32] not in stored


async def test_options_say_what_the_server_supports(http: httpx.AsyncClient) -> None:
    response = await http.options("/media/uploads")
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert response.headers["tus-extension"] == "creation,termination,expiration"
    assert response.headers["tus-max-size"] == str(MAX_FILE)


async def test_a_tus_upload_reads_back_byte_identical(
    http: httpx.AsyncClient,
    media_api: Gateway,
    user: Account,
    media_root: Path,
    api_pool: asyncpg.Pool,
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(300, 260)
    assert len(content) > 4 * CHUNK
    sender = uploader(media_api, user, content, alert_id=alert_id)
    await asyncio.to_thread(sender.upload)
    assert sender.offset == len(content)
    media_id = media_id_of(sender.url)
    await assert_reads_back(http, user, media_id, content)
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert [item["id"] for item in listing.json()["items"]] == [media_id]
    # The upload itself is gone; the file's stored bytes hold no plaintext.
    await assert_no_upload(http, user, f"/media/uploads/{media_id}")
    assert_no_plaintext(stored_bytes(media_root, media_id), content)
    # Stored like any upload: its event in the same transaction, once.
    events = await api_pool.fetch(
        "SELECT type, data FROM outbox WHERE topic = 'media-uploads' AND subject = $1", media_id
    )
    assert [e["type"] for e in events] == ["media.uploaded"]
    data = events[0]["data"]
    data = json.loads(data) if isinstance(data, str) else data
    assert data["alert_id"] == alert_id
    assert data["size"] == len(content)


async def test_a_tus_upload_interrupted_halfway_resumes_and_completes(
    http: httpx.AsyncClient, media_api: Gateway, user: Account, media_root: Path
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(320, 300)
    half = len(content) // 2
    first = uploader(media_api, user, content, alert_id=alert_id)
    await asyncio.to_thread(first.upload, half)
    assert first.offset == half
    url = first.url
    assert url is not None
    path = urlsplit(url).path
    assert await head_offset(http, user, path) == half
    # What is stored meanwhile is sealed too (parts and the re-sealed tail).
    assert_no_plaintext(stored_bytes(media_root, media_id_of(url)), content[:half])
    assert_problem(await http.get(f"/media/{media_id_of(url)}", headers=user.headers), 404)

    # A new client (the app restarted) asks the offset and sends the rest.
    second = await asyncio.to_thread(uploader, media_api, user, content, url=url)
    assert second.offset == half
    await asyncio.to_thread(second.upload)
    assert second.offset == len(content)
    await assert_reads_back(http, user, media_id_of(url), content)


async def test_a_chunk_cut_mid_body_keeps_what_arrived(
    http: httpx.AsyncClient, media_api: Gateway, user: Account
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(500, 400)
    path = await create(http, user, alert_id, len(content))
    sent = 300_000
    assert len(content) > sent + 100_000
    host = urlsplit(media_api.base_url)
    reader, writer = await asyncio.open_connection(host.hostname, host.port)
    head = (
        f"PATCH {path} HTTP/1.1\r\nHost: {host.netloc}\r\n"
        f"Authorization: {user.headers['Authorization']}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\n"
        "Content-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(content)}\r\n\r\n"
    )
    writer.write(head.encode())
    for i in range(0, sent, 10_000):
        writer.write(content[i : i + 10_000])
        await writer.drain()
    # Let the server read what was sent before the connection drops.
    await asyncio.sleep(1.0)
    writer.transport.abort()
    reader.feed_eof()

    kept = 0
    async with asyncio.timeout(30):
        while kept == 0:
            await asyncio.sleep(0.1)
            kept = await head_offset(http, user, path)
    assert 0 < kept <= sent
    # The offset is final: a chunk from anywhere else is refused.
    stale = await patch(http, user, path, kept + 1, content[kept + 1 :])
    assert_problem(stale, 409)
    assert stale.headers["upload-offset"] == str(kept)
    done = await patch(http, user, path, kept, content[kept:])
    assert done.status_code == 204, done.text
    assert done.headers["upload-offset"] == str(len(content))
    assert done.headers["tus-resumable"] == "1.0.0"
    media_id = done.headers["media-id"]
    assert media_id == path.rsplit("/", 1)[-1]
    await assert_reads_back(http, user, media_id, content)


async def test_a_wrong_offset_is_409_and_bytes_past_the_length_413(
    http: httpx.AsyncClient, user: Account
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(100, 100)
    path = await create(http, user, alert_id, len(content))
    assert_problem(await patch(http, user, path, 5, content[5:100]), 409)
    first = await patch(http, user, path, 0, content[:1000])
    assert first.status_code == 204, first.text
    assert first.headers["upload-offset"] == "1000"
    assert "media-id" not in first.headers
    assert_problem(await patch(http, user, path, 0, content[:1000]), 409)
    assert_problem(await patch(http, user, path, 1000, content[1000:] + b"extra"), 413)
    assert await head_offset(http, user, path) == 1000
    wrong_type = await patch(
        http, user, path, 1000, content[1000:], **{"Content-Type": "image/png"}
    )
    assert_problem(wrong_type, 415)
    done = await patch(http, user, path, 1000, content[1000:])
    assert done.status_code == 204, done.text
    await assert_reads_back(http, user, done.headers["media-id"], content)


async def test_only_the_uploader_sees_an_upload(
    http: httpx.AsyncClient,
    media_api: Gateway,
    user: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(64, 64)
    path = await create(http, user, alert_id, len(content))
    stranger = await make_account(api_pool, api_settings, Role.USER)
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    for other in (stranger, admin):
        await assert_no_upload(http, other, path)
        assert_problem(await patch(http, other, path, 0, content), 404)
        assert_problem(await http.delete(path, headers={**other.headers, **TUS}), 404)
    # ... nor may a stranger start one on the alert (tuspy sees the refusal).
    refused = uploader(media_api, stranger, content, alert_id=alert_id)
    with pytest.raises((TusCommunicationError, TusUploadFailed)):
        await asyncio.to_thread(refused.upload)
    assert await head_offset(http, user, path) == 0
    done = await patch(http, user, path, 0, content)
    assert done.status_code == 204, done.text


@pytest.mark.parametrize("first", [len(b"\x7fELF"), 100_000])
async def test_a_renamed_executable_is_415_and_leaves_nothing(
    http: httpx.AsyncClient, user: Account, media_root: Path, first: int
) -> None:
    alert_id = await raise_alert(http, user)
    elf = b"\x7fELF\x02\x01\x01\x00" + os.urandom(200_000)
    before = entries(media_root)
    path = await create(http, user, alert_id, len(elf))
    if first < 64:  # too few bytes to judge: kept until the rest comes
        assert (await patch(http, user, path, 0, elf[:first])).status_code == 204
    at = await head_offset(http, user, path)
    refused = await patch(http, user, path, at, elf[at:])
    problem = assert_problem(refused, 415)
    assert "content" in problem["detail"]
    assert refused.headers["tus-resumable"] == "1.0.0"
    await assert_no_upload(http, user, path)
    assert entries(media_root) <= before | {media_root / path.rsplit("/", 1)[-1]}
    assert stored_files(media_root, path.rsplit("/", 1)[-1]) == []
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert listing.json()["items"] == []


async def test_termination_removes_the_stored_bytes(
    http: httpx.AsyncClient, media_api: Gateway, user: Account, media_root: Path
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(300, 260)
    assert len(content) > 3 * CHUNK
    sender = uploader(media_api, user, content, alert_id=alert_id)
    await asyncio.to_thread(sender.upload, 3 * CHUNK)
    assert sender.url is not None
    path, media_id = urlsplit(sender.url).path, media_id_of(sender.url)
    assert stored_files(media_root, media_id)
    ended = await http.delete(path, headers={**user.headers, **TUS})
    assert ended.status_code == 204, ended.text
    assert ended.headers["tus-resumable"] == "1.0.0"
    assert stored_files(media_root, media_id) == []
    await assert_no_upload(http, user, path)
    assert_problem(await patch(http, user, path, 3 * CHUNK, content[3 * CHUNK :]), 404)
    assert_problem(await http.delete(path, headers={**user.headers, **TUS}), 404)


async def test_expired_uploads_are_404_and_cleaned_up(
    http: httpx.AsyncClient,
    user: Account,
    media_root: Path,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(200, 200)
    old = await create(http, user, alert_id, len(content))
    young = await create(http, user, alert_id, len(content))
    for path in (old, young):
        assert (await patch(http, user, path, 0, content[:100_000])).status_code == 204
    old_id, young_id = old.rsplit("/", 1)[-1], young.rsplit("/", 1)[-1]
    await api_pool.execute(
        "UPDATE media_uploads SET expires_at = now() - interval '1 second' WHERE id = $1",
        old_id,
    )
    await assert_no_upload(http, user, old)
    assert_problem(await patch(http, user, old, 100_000, content[100_000:]), 404)
    assert stored_files(media_root, old_id)

    settings = media_settings(api_settings, media_root)
    uploads = PostgresMediaUploads(api_pool, source=settings.kafka.source)
    objects = object_store(settings.media, settings.data_dir)
    assert await expire_uploads(uploads, objects, datetime.now(UTC)) >= 1
    assert stored_files(media_root, old_id) == []
    assert await api_pool.fetchval("SELECT count(*) FROM media_uploads WHERE id = $1", old_id) == 0
    # The young one is untouched and completes.
    assert await head_offset(http, user, young) == 100_000
    done = await patch(http, user, young, 100_000, content[100_000:])
    assert done.status_code == 204, done.text
    await assert_reads_back(http, user, young_id, content)


async def test_bad_tus_requests_are_4xx_problems(http: httpx.AsyncClient, user: Account) -> None:
    alert_id = await raise_alert(http, user)
    path = await create(http, user, alert_id, 1000)
    no_tus = [
        await http.post(
            "/media/uploads",
            headers={**user.headers, "Upload-Length": "10", "Upload-Metadata": metadata(alert_id)},
        ),
        await http.head(path, headers=user.headers),
        await http.patch(
            path,
            content=b"x",
            headers={
                **user.headers,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        ),
        await http.delete(path, headers=user.headers),
        await http.post(
            "/media/uploads",
            headers={**user.headers, "Tus-Resumable": "0.2.2", "Upload-Length": "10"},
        ),
    ]
    for response in no_tus:
        assert response.status_code == 412, response.text
        assert response.headers["tus-version"] == "1.0.0"
        assert response.headers["tus-resumable"] == "1.0.0"

    def creation(**headers: str) -> dict[str, str]:
        return {**user.headers, **TUS, **headers}

    cases = [
        (creation(**{"Upload-Metadata": metadata(alert_id)}), 400),  # no length
        (creation(**{"Upload-Length": "-1", "Upload-Metadata": metadata(alert_id)}), 400),
        (creation(**{"Upload-Length": "10", "Upload-Defer-Length": "1"}), 400),
        (creation(**{"Upload-Length": "10"}), 400),  # no alert
        (creation(**{"Upload-Length": "10", "Upload-Metadata": "alert_id !!"}), 400),
        (creation(**{"Upload-Length": "10", "Upload-Metadata": metadata("nope")}), 400),
        (
            creation(**{"Upload-Length": str(MAX_FILE + 1), "Upload-Metadata": metadata(alert_id)}),
            413,
        ),
        (
            creation(
                **{"Upload-Length": "99999999999999999999", "Upload-Metadata": metadata(alert_id)}
            ),
            400,
        ),
        (creation(**{"Upload-Length": "0", "Upload-Metadata": metadata(alert_id)}), 415),
        (
            creation(**{"Upload-Length": "10", "Upload-Metadata": metadata(os.urandom(16).hex())}),
            404,
        ),
    ]
    for headers, status in cases:
        response = await http.post("/media/uploads", headers=headers)
        assert_problem(response, status)
        assert response.headers["tus-resumable"] == "1.0.0"
    missing_offset = await http.patch(
        path,
        content=b"x",
        headers={**user.headers, **TUS, "Content-Type": "application/offset+octet-stream"},
    )
    assert_problem(missing_offset, 400)
    unauthenticated = await http.head(path, headers=TUS)
    assert unauthenticated.status_code == 401
    malformed = await http.head("/media/uploads/not-a-uuid", headers={**user.headers, **TUS})
    assert malformed.status_code == 422


async def test_of_two_racing_chunks_one_wins_and_the_other_leaves_nothing(
    http: httpx.AsyncClient, user: Account, media_root: Path, api_pool: asyncpg.Pool
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(300, 260)
    path = await create(http, user, alert_id, len(content))
    upload_id = path.rsplit("/", 1)[-1]
    first = await patch(http, user, path, 0, content[:70_000])  # a part and a tail
    assert first.status_code == 204, first.text
    answers = await asyncio.gather(
        patch(http, user, path, 70_000, content[70_000:150_000]),
        patch(http, user, path, 70_000, content[70_000:200_000]),
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [204, 409], [a.text for a in answers]
    won = next(a for a in answers if a.status_code == 204)
    offset = int(won.headers["upload-offset"])
    assert offset in (150_000, 200_000)
    row = await api_pool.fetchrow(
        'SELECT "offset", parts, tail FROM media_uploads WHERE id = $1', upload_id
    )
    assert row is not None
    assert row["offset"] == offset
    names = {name for name, _segments in row["parts"]} | {row["tail"]}
    assert {p.name for p in stored_files(media_root, upload_id)} == names
    done = await patch(http, user, path, offset, content[offset:])
    assert done.status_code == 204, done.text
    await assert_reads_back(http, user, upload_id, content)
