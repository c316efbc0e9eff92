"""Processing of evidence end to end, against the real services: the upload's
event goes through the outbox relay to Kafka, the media worker consumes it,
renders in a Ray task with Pillow and ffmpeg, stores the sealed renditions,
and the alert's timeline, ``media_events`` and the responders' sockets say so."""

from __future__ import annotations

import asyncio
import io
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from PIL import Image

from cluster.client import EntityClient
from cluster.media_worker import ray_render
from cluster.notifier import alert_teller
from config.settings import Settings
from gateway.auth.principal import Role
from panic_alert.media_root import renderer, run_media_worker
from panic_alert.relay_root import run_relay
from persistence.drivers.mongo import EventStore
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway, serving
from tests.integration.api.mediakit import media_settings, stored_bytes, stored_files, upload
from tests.integration.api.test_alerts import alert_body, eventually
from tests.integration.api.test_ws import session
from tests.scratch import drop_mongo_database, scratch_name
from tests.tasks import stop

pytestmark = pytest.mark.integration

GPS_IFD = 0x8825


def jpeg_with_location() -> bytes:
    """A photo whose EXIF says where it was taken (and that it is turned)."""
    image = Image.new("RGB", (800, 600), (200, 40, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotated
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    data = out.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(GPS_IFD)
    return data


def ffmpeg_clip(folder: Path, name: str, *args: str) -> bytes:
    out = folder / name
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args, str(out)],
        check=True,
        timeout=120,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-processing")


@pytest.fixture(scope="module")
def worker_settings(api_settings: Settings, media_root: Path) -> Settings:
    mongo = api_settings.mongo.model_copy(update={"database": scratch_name("pa_media_events")})
    return media_settings(api_settings, media_root).model_copy(update={"mongo": mongo})


@pytest.fixture(scope="module")
async def media_api(
    worker_settings: Settings, api_entities: EntityClient, api_pool: asyncpg.Pool
) -> AsyncIterator[Gateway]:
    """A gateway, the outbox relay and a media worker of this module's own."""
    # Only this module's events: what earlier tests left in the outbox stays unsent.
    await api_pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
    ready = asyncio.Event()
    worker = asyncio.create_task(
        run_media_worker(
            worker_settings,
            alert_teller(api_entities),
            ray_render(renderer(worker_settings), num_cpus=1, timeout_s=300),
            offset_reset="latest",
            group_suffix=f"-test-{uuid4().hex[:8]}",
            ready=ready,
        )
    )
    tasks = [worker]
    try:
        await asyncio.wait_for(ready.wait(), 60)
        tasks.append(asyncio.create_task(run_relay(worker_settings)))
        async with serving(worker_settings, api_entities) as gateway:
            yield gateway
    finally:
        try:
            await stop(*tasks)
        finally:
            await drop_mongo_database(worker_settings, worker_settings.mongo.database)


@pytest.fixture
async def http(media_api: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=media_api.base_url, timeout=30) as client:
        yield client


async def _alert_with_assignee(
    http: httpx.AsyncClient, user: Account, admin: Account, agent: Account
) -> str:
    created = await http.post("/alerts", json=alert_body(), headers=user.headers)
    assert created.status_code == 201, created.text
    alert_id: str = created.json()["id"]
    assigned = await http.post(
        f"/alerts/{alert_id}/assign", json={"agent_id": str(agent.id)}, headers=admin.headers
    )
    assert assigned.status_code == 200, assigned.text
    return alert_id


async def _processed(http: httpx.AsyncClient, who: Account, media_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        meta = (await http.get(f"/media/{media_id}/meta", headers=who.headers)).json()
        return meta if meta["processing"] in ("done", "failed") else None

    return await eventually(done, timeout_s=240)


async def _timeline(http: httpx.AsyncClient, who: Account, alert_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/alerts/{alert_id}/timeline", headers=who.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_photo_gets_a_thumbnail_and_a_copy_without_its_location(
    http: httpx.AsyncClient,
    media_api: Gateway,
    media_root: Path,
    worker_settings: Settings,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    alert_id = await _alert_with_assignee(http, user, admin, agent)
    photo = jpeg_with_location()
    async with (
        session(media_api, agent) as (agent_ws, _),
        session(media_api, admin) as (
            admin_ws,
            _,
        ),
    ):
        created = await upload(http, user, alert_id, photo, filename="plate.jpg")
        assert created.status_code == 201, created.text
        media_id = created.json()["id"]
        for ws in (agent_ws, admin_ws):
            added = await ws.expect("media.added", wait_s=60, media_id=media_id, status="stored")
            assert added["data"]["alert_id"] == alert_id
            assert added["data"]["kind"] == "image"
        done = await agent_ws.expect("media.added", wait_s=240, media_id=media_id, status="done")
        assert sorted(done["data"]["renditions"]) == ["shared", "thumbnail"]

    meta = await _processed(http, user, media_id)
    assert meta["processing"] == "done"
    renditions = {r["rendition"]: r for r in meta["renditions"]}
    assert set(renditions) == {"thumbnail", "shared"}
    thumb = await http.get(f"/media/{renditions['thumbnail']['id']}", headers=user.headers)
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    small = Image.open(io.BytesIO(thumb.content))
    assert max(small.size) == 320
    assert small.size[1] > small.size[0]  # turned upright: the EXIF said rotated
    shared = await http.get(f"/media/{renditions['shared']['id']}", headers=agent.headers)
    assert not Image.open(io.BytesIO(shared.content)).getexif().get_ifd(GPS_IFD)
    # The original keeps its location, sealed; the renditions are sealed too.
    original = await http.get(f"/media/{media_id}", headers=admin.headers)
    assert original.content == photo
    for rendition in renditions.values():
        assert b"JFIF" not in stored_bytes(media_root, rendition["id"])

    # The worker stores the renditions, then tells the alert: the entry follows.
    async def told() -> list[tuple[str, Any]]:
        timeline = await _timeline(http, admin, alert_id)
        steps = [(e["type"], e["data"].get("status")) for e in timeline]
        return steps if ("media_processed", "done") in steps else []

    steps = await eventually(told, timeout_s=30)
    assert ("media_added", "stored") in steps
    assert not [e for e in await _timeline(http, user, alert_id) if e["type"].startswith("media")]

    store = EventStore(worker_settings.mongo)
    try:

        async def recorded() -> list[str]:
            events = await store.find_events("media_events", subject=media_id)
            types = [e.type for e in events]
            return types if "media.processed" in types else []

        types = await eventually(recorded, timeout_s=60)
    finally:
        await store.close()
    assert types[:3] == ["media.uploaded", "media.processing_queued", "media.processing_started"]


async def test_a_video_gets_a_poster_and_an_mp4_and_a_recording_an_opus(
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    tmp_path: Path,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    alert_id = await _alert_with_assignee(http, user, admin, agent)
    video = await asyncio.to_thread(
        ffmpeg_clip, tmp_path, "clip.webm",
        "-f", "lavfi", "-i", "testsrc=size=640x360:rate=15", "-f", "lavfi",
        "-i", "sine=frequency=440", "-t", "2", "-c:v", "libvpx", "-c:a", "libopus",
    )  # fmt: skip
    audio = await asyncio.to_thread(
        ffmpeg_clip, tmp_path, "voice.wav", "-f", "lavfi", "-i", "sine=frequency=300", "-t", "2"
    )
    video_id = (await upload(http, user, alert_id, video, content_type="video/webm")).json()["id"]
    audio_id = (await upload(http, agent, alert_id, audio, content_type="audio/wav")).json()["id"]

    video_meta = await _processed(http, admin, video_id)
    assert video_meta["processing"] == "done", video_meta
    made = {r["rendition"]: r["content_type"] for r in video_meta["renditions"]}
    assert made == {"poster": "image/jpeg", "mp4": "video/mp4"}
    audio_meta = await _processed(http, admin, audio_id)
    assert audio_meta["processing"] == "done", audio_meta
    assert [r["rendition"] for r in audio_meta["renditions"]] == ["opus"]
    mp4 = next(r for r in video_meta["renditions"] if r["rendition"] == "mp4")
    head = await http.get(f"/media/{mp4['id']}", headers={**user.headers, "Range": "bytes=0-11"})
    assert head.status_code == 206
    assert head.content[4:8] == b"ftyp"


async def test_a_file_that_cannot_be_rendered_fails_and_the_timeline_says_so(
    http: httpx.AsyncClient, user: Account, admin: Account
) -> None:
    created = await http.post("/alerts", json=alert_body(), headers=user.headers)
    alert_id = created.json()["id"]
    broken = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00" + bytes(range(256)) * 64
    media_id = (await upload(http, user, alert_id, broken, content_type="video/mp4")).json()["id"]
    meta = await _processed(http, admin, media_id)
    assert meta["processing"] == "failed"
    assert meta["processing_error"]

    # The worker marks the file failed, then tells the alert: the entry follows.
    async def entered() -> list[dict[str, Any]]:
        return [
            e
            for e in await _timeline(http, admin, alert_id)
            if e["type"] == "media_processed" and e["data"]["media_id"] == media_id
        ]

    failed = await eventually(entered, timeout_s=30)
    assert failed[0]["data"]["status"] == "failed"


async def test_processing_again_replaces_the_renditions(
    http: httpx.AsyncClient, user: Account, media_root: Path
) -> None:
    created = await http.post("/alerts", json=alert_body(), headers=user.headers)
    alert_id = created.json()["id"]
    media_id = (await upload(http, user, alert_id, jpeg_with_location())).json()["id"]
    first = await _processed(http, user, media_id)
    old = {r["id"] for r in first["renditions"]}
    again = await http.post(f"/media/{media_id}/process", headers=user.headers)
    assert again.status_code == 202, again.text
    assert again.json()["processing"] == "queued"

    # The new renditions are committed first and the old objects removed after
    # (never a row naming removed bytes), so the removal may trail the "done".
    async def replaced() -> dict[str, Any] | None:
        meta = (await http.get(f"/media/{media_id}/meta", headers=user.headers)).json()
        fresh = {r["id"] for r in meta["renditions"]}
        swapped = meta["processing"] == "done" and fresh and not fresh & old
        removed = not any(stored_files(media_root, gone) for gone in old)
        return meta if swapped and removed else None

    meta = await eventually(replaced, timeout_s=240)
    assert len(meta["renditions"]) == 2
    for gone in old:
        assert not stored_bytes(media_root, gone)
        assert (await http.get(f"/media/{gone}", headers=user.headers)).status_code == 404


async def test_a_voice_memo_in_an_mp4_is_rendered_as_a_recording(
    http: httpx.AsyncClient, user: Account, admin: Account, tmp_path: Path
) -> None:
    """Sound alone in an MP4 container sniffs as video (the container says
    nothing more); it gets the recording's rendition, not a failure."""
    created = await http.post("/alerts", json=alert_body(), headers=user.headers)
    alert_id = created.json()["id"]
    memo = await asyncio.to_thread(
        ffmpeg_clip, tmp_path, "memo.mp4",
        "-f", "lavfi", "-i", "sine=frequency=500", "-t", "2", "-c:a", "aac",
    )  # fmt: skip
    stored = await upload(http, user, alert_id, memo, content_type="video/mp4")
    assert stored.json()["kind"] == "video"
    meta = await _processed(http, admin, stored.json()["id"])
    assert meta["processing"] == "done", meta
    assert [(r["rendition"], r["content_type"]) for r in meta["renditions"]] == [
        ("opus", "audio/ogg")
    ]
