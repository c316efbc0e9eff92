"""``/media`` over real HTTP, against PostgreSQL, Redis, Ray and the filesystem
object store: uploads are streamed and sealed, read back whole and by range,
and shown only to those who may read the alert."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from actors.alert_messages import OfferMade, OfferReceived
from actors.effects import EntityKind
from cluster.client import EntityClient
from config.settings import MediaBackend, RateRule, Settings
from gateway.auth.principal import Role
from persistence.media.objects import ObstoreObjects
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.integration.api.mediakit import (
    MAX_ALERT,
    MAX_FILE,
    entries,
    http,
    media_api,
    media_gateway,
    media_root,
    noise_png,
    stored_bytes,
    upload,
)
from tests.integration.api.test_alerts import alert_body, assert_problem
from tests.integration.api.test_ws import session
from tests.integration.reachable import agents_reachable

pytestmark = pytest.mark.integration

__all__ = ["http", "media_api", "media_root"]  # the module's gateway (mediakit)


async def raise_alert(http: httpx.AsyncClient, user: Account, **overrides: Any) -> str:
    response = await http.post("/alerts", json=alert_body(**overrides), headers=user.headers)
    assert response.status_code == 201, response.text
    alert_id: str = response.json()["id"]
    return alert_id


async def new(api_pool: asyncpg.Pool, api_settings: Settings, role: Role) -> Account:
    return await make_account(api_pool, api_settings, role)


async def test_an_upload_reads_back_byte_identical_whole_and_by_range(
    http: httpx.AsyncClient, user: Account
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png()
    created = await upload(http, user, alert_id, content)
    assert created.status_code == 201, created.text
    meta = created.json()
    assert meta["alert_id"] == alert_id
    assert meta["content_type"] == "image/png"
    assert meta["kind"] == "image"
    assert meta["size"] == len(content)
    assert meta["sha256"] == hashlib.sha256(content).hexdigest()
    assert created.headers["location"] == f"/media/{meta['id']}"
    assert "legal_hold" not in meta or meta["legal_hold"] is None

    whole = await http.get(f"/media/{meta['id']}", headers=user.headers)
    assert whole.status_code == 200
    assert whole.content == content
    assert whole.headers["content-type"] == "image/png"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["cache-control"] == "private, no-store"

    size = len(content)
    for start, end in [(0, 0), (100, 70_000), (65_530, 65_545), (size - 10, size - 1)]:
        part = await http.get(
            f"/media/{meta['id']}", headers={**user.headers, "Range": f"bytes={start}-{end}"}
        )
        assert part.status_code == 206, part.text
        assert part.content == content[start : end + 1]
        assert part.headers["content-range"] == f"bytes {start}-{end}/{size}"
    suffix = await http.get(
        f"/media/{meta['id']}", headers={**user.headers, "Range": "bytes=-1000"}
    )
    assert suffix.content == content[-1000:]
    past = await http.get(
        f"/media/{meta['id']}", headers={**user.headers, "Range": f"bytes={size}-"}
    )
    assert_problem(past, 416)
    assert past.headers["content-range"] == f"bytes */{size}"

    assert (await http.get(f"/media/{meta['id']}/meta", headers=user.headers)).json() == meta
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert [item["id"] for item in listing.json()["items"]] == [meta["id"]]


async def test_a_raw_body_upload_with_the_alert_in_the_query(
    http: httpx.AsyncClient, user: Account
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(64, 64)
    created = await http.post(
        f"/media/upload?alert_id={alert_id}",
        content=content,
        headers={**user.headers, "Content-Type": "application/octet-stream"},
    )
    assert created.status_code == 201, created.text
    read = await http.get(f"/media/{created.json()['id']}", headers=user.headers)
    assert read.content == content


async def test_the_alert_id_may_follow_the_file_in_the_form(
    http: httpx.AsyncClient, user: Account, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(32, 32)
    boundary = "b0undary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + content
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="alert_id"\r\n\r\n'
            f"{alert_id}\r\n--{boundary}--\r\n"
        ).encode()
    )
    headers = {**user.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    created = await http.post("/media/upload", content=body, headers=headers)
    assert created.status_code == 201, created.text
    # ... and someone else naming that alert after their file stores nothing.
    other = await new(api_pool, api_settings, Role.USER)
    refused = await http.post("/media/upload", content=body, headers={**headers, **other.headers})
    assert_problem(refused, 404)
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert len(listing.json()["items"]) == 1


async def test_another_user_and_a_declined_responder_are_told_404(
    http: httpx.AsyncClient,
    media_api: Gateway,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    alert_id = await raise_alert(http, user)
    media_id = (await upload(http, user, alert_id, noise_png(80, 80))).json()["id"]
    stranger = await new(api_pool, api_settings, Role.USER)
    declined = await new(api_pool, api_settings, Role.AGENT)
    assignee = await new(api_pool, api_settings, Role.AGENT)

    async with agents_reachable(api_settings):
        await api_entities.ask(EntityKind.ALERT, alert_id, OfferMade(declined.id, distance_m=300.0))
        await api_entities.ask(EntityKind.ALERT, alert_id, OfferReceived(declined.id))
    # Holding only the offer is not enough to see the evidence.
    assert_problem(await http.get(f"/media/{media_id}", headers=declined.headers), 404)
    async with session(media_api, declined) as (ws, _):
        await ws.send("offer.decline", {"alert_id": alert_id}, id="no")
        await ws.expect("ack", ref="no")

    for outsider in (stranger, declined):
        for path in (f"/media/{media_id}", f"/media/{media_id}/meta", f"/media/alert/{alert_id}"):
            assert_problem(await http.get(path, headers=outsider.headers), 404)
        assert_problem(await http.delete(f"/media/{media_id}", headers=outsider.headers), 404)
        assert_problem(
            await upload(http, outsider, alert_id, noise_png(8, 8)), 404
        )  # nor add to it

    assign = await http.post(
        f"/alerts/{alert_id}/assign", json={"agent_id": str(assignee.id)}, headers=admin.headers
    )
    assert assign.status_code == 200, assign.text
    for reader in (assignee, admin):
        read = await http.get(f"/media/{media_id}", headers=reader.headers)
        assert read.status_code == 200, read.text
    # The assignee may add evidence too, and the user reads it.
    added = await upload(http, assignee, alert_id, noise_png(16, 16))
    assert added.status_code == 201, added.text
    assert (await http.get(f"/media/{added.json()['id']}", headers=user.headers)).status_code == 200


@pytest.mark.parametrize(
    ("content", "filename", "content_type"),
    [
        (b"\x7fELF\x02\x01\x01\x00" + os.urandom(4000), "photo.jpg", "image/jpeg"),
        (b"MZ\x90\x00\x03\x00" + os.urandom(4000), "licence-plate.png", "image/png"),
        (
            b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
            "a.svg",
            "image/svg+xml",
        ),
        (b"", "empty.png", "image/png"),
    ],
)
async def test_a_renamed_executable_is_refused_as_an_image_and_nothing_is_kept(
    http: httpx.AsyncClient,
    user: Account,
    media_root: Path,
    content: bytes,
    filename: str,
    content_type: str,
) -> None:
    alert_id = await raise_alert(http, user)
    before = entries(media_root)
    refused = await upload(
        http, user, alert_id, content, filename=filename, content_type=content_type
    )
    problem = assert_problem(refused, 415)
    assert "content" in problem["detail"]
    assert entries(media_root) == before
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert listing.json()["items"] == []


async def test_the_files_on_disk_hold_no_plaintext(
    http: httpx.AsyncClient, user: Account, media_root: Path
) -> None:
    alert_id = await raise_alert(http, user)
    content = noise_png(500, 400)
    media_id = (await upload(http, user, alert_id, content)).json()["id"]
    stored = stored_bytes(media_root, media_id)
    assert len(stored) > len(content), "the upload stored less than the file"
    assert b"IHDR" not in stored
    assert b"\x89PNG" not in stored
    for offset in range(0, len(content) - 32, len(content) // 50):
        assert content[offset : offset + 32] not in stored


async def test_size_limits_per_file_and_per_alert(
    http: httpx.AsyncClient, user: Account, media_root: Path
) -> None:
    alert_id = await raise_alert(http, user)
    big = noise_png(1100, 1000)  # ~3.3 MB: over the file limit
    assert len(big) > MAX_FILE
    before = entries(media_root)
    assert_problem(await upload(http, user, alert_id, big), 413)

    # Streamed without a length: refused as the limit passes, nothing kept.
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 100_000):
            yield big[i : i + 100_000]

    streamed = await http.post(
        f"/media/upload?alert_id={alert_id}",
        content=chunks(),
        headers={**user.headers, "Content-Type": "image/png"},
    )
    assert_problem(streamed, 413)
    assert entries(media_root) == before

    fits = noise_png(900, 800)  # ~2.2 MB: two fit under the alert's 5 MB, three do not
    assert 2 * len(fits) <= MAX_ALERT < 3 * len(fits)
    for _ in range(2):
        assert (await upload(http, user, alert_id, fits)).status_code == 201
    assert_problem(await upload(http, user, alert_id, fits), 413)
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert len(listing.json()["items"]) == 2


async def test_bad_requests_are_4xx_problems(http: httpx.AsyncClient, user: Account) -> None:
    alert_id = await raise_alert(http, user)
    cases = [
        await http.post(
            "/media/upload", content=b"x", headers={**user.headers, "Content-Type": "text/plain"}
        ),
        await http.post(
            "/media/upload",
            content=b"--x\r\nnot a form",
            headers={**user.headers, "Content-Type": "multipart/form-data; boundary=x"},
        ),
        await http.post(
            "/media/upload",
            files={"other": ("a", b"a")},
            data={"alert_id": alert_id},
            headers=user.headers,
        ),
        await http.post(
            "/media/upload",
            files={"file": ("a.png", noise_png(8, 8))},
            data={"alert_id": "not-a-uuid"},
            headers=user.headers,
        ),
        await http.post(
            "/media/upload",
            content=noise_png(8, 8),
            headers={**user.headers, "Content-Type": "image/png"},
        ),
        await http.get("/media/not-a-uuid", headers=user.headers),
        await http.get(f"/media/{alert_id}", headers=user.headers),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_flood_of_uploads_is_refused_with_429(
    api_settings: Settings, api_entities: EntityClient, user: Account, tmp_path: Path
) -> None:
    tight = {"media_upload_per_principal": RateRule(limit=2, window_s=3600)}
    settings = api_settings.model_copy(
        update={"rate_limit": api_settings.rate_limit.model_copy(update=tight)}
    )
    async with (
        media_gateway(settings, api_entities, tmp_path) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as client,
    ):
        alert_id = await raise_alert(client, user)
        for _ in range(2):
            assert (await upload(client, user, alert_id, noise_png(8, 8))).status_code == 201
        flooded = await upload(client, user, alert_id, noise_png(8, 8))
        assert_problem(flooded, 429)
        assert int(flooded.headers["retry-after"]) > 0
        listing = await client.get(f"/media/alert/{alert_id}", headers=user.headers)
        assert len(listing.json()["items"]) == 2


async def test_on_the_s3_backend_the_bucket_holds_no_plaintext(
    api_settings: Settings, api_entities: EntityClient, user: Account, tmp_path: Path
) -> None:
    """The same API on SeaweedFS's S3 (``scripts/services``): byte-identical reads,
    and the objects in the bucket are sealed."""
    async with (
        media_gateway(api_settings, api_entities, tmp_path, backend=MediaBackend.S3) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=30) as client,
    ):
        alert_id = await raise_alert(client, user)
        content = noise_png(400, 300)
        created = await upload(client, user, alert_id, content)
        assert created.status_code == 201, created.text
        media_id = created.json()["id"]
        read = await client.get(f"/media/{media_id}", headers=user.headers)
        assert read.content == content
        ranged = await client.get(
            f"/media/{media_id}", headers={**user.headers, "Range": "bytes=70000-70099"}
        )
        assert ranged.content == content[70_000:70_100]
    assert not entries(tmp_path)  # nothing went to the local folder
    bucket = ObstoreObjects.s3(api_settings.media.s3)
    keys = [key async for key in bucket.list(f"{media_id}/")]
    assert keys
    stored = b"".join([await bucket.get_range(key, 0, 1 << 30) for key in keys])
    assert len(stored) > len(content)
    assert b"IHDR" not in stored
    for offset in range(0, len(content) - 32, len(content) // 50):
        assert content[offset : offset + 32] not in stored


async def test_an_agent_reassigned_away_no_longer_reads_the_evidence(
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    first = await new(api_pool, api_settings, Role.AGENT)
    second = await new(api_pool, api_settings, Role.AGENT)
    alert_id = await raise_alert(http, user)
    media_id = (await upload(http, user, alert_id, noise_png(24, 24))).json()["id"]
    for agent in (first, second):
        assign = {"agent_id": str(agent.id)}
        moved = await http.post(f"/alerts/{alert_id}/assign", json=assign, headers=admin.headers)
        assert moved.status_code == 200, moved.text
    # The first still reads the alert's history, but not the evidence any more.
    assert (await http.get(f"/alerts/{alert_id}", headers=first.headers)).status_code == 200
    assert_problem(await http.get(f"/media/{media_id}", headers=first.headers), 404)
    assert_problem(await http.get(f"/media/alert/{alert_id}", headers=first.headers), 404)
    assert_problem(await upload(http, first, alert_id, noise_png(8, 8)), 404)
    assert (await http.get(f"/media/{media_id}", headers=second.headers)).status_code == 200
    # Once the alert is over, its last assignee keeps reading it.
    for status in ("en_route", "on_scene", "resolved"):
        step = await http.put(
            f"/alerts/{alert_id}/status", json={"status": status}, headers=second.headers
        )
        assert step.status_code == 200, step.text
    assert (await http.get(f"/media/{media_id}", headers=second.headers)).status_code == 200
