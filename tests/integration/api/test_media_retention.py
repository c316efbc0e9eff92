"""Deleting evidence, holding it, purging it, and rotating the master key,
against PostgreSQL, the filesystem store and the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from media.retention import purge_due
from persistence.media.objects import object_store
from persistence.stores.media import PostgresMediaRecords
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.mediakit import (
    http,
    media_api,
    media_gateway,
    media_root,
    media_settings,
    noise_png,
    stored_bytes,
    upload,
)
from tests.integration.api.test_alerts import alert_body, assert_problem, with_pins
from tests.integration.test_cli import run_cli
from tests.local import cli_env

pytestmark = pytest.mark.integration

__all__ = ["http", "media_api", "media_root"]  # the module's gateway (mediakit)

NEW_KEY = "media-rotation-test-Zq8s7d6f5g4h3j2k0123456789"


async def purge(settings: Settings, pool: asyncpg.Pool, root: Path) -> int:
    records = PostgresMediaRecords(pool, source=settings.kafka.source)
    objects = object_store(media_settings(settings, root).media, root)
    return await purge_due(records, objects, datetime.now(UTC), limit=1000)


async def alert_and_file(http: httpx.AsyncClient, user: Account) -> tuple[str, str]:
    created = await http.post("/alerts", json=alert_body(), headers=user.headers)
    assert created.status_code == 201, created.text
    alert_id = created.json()["id"]
    stored = await upload(http, user, alert_id, noise_png(40, 40))
    assert stored.status_code == 201, stored.text
    return alert_id, stored.json()["id"]


async def test_a_soft_delete_is_purged_after_its_retention(
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    media_root: Path,
) -> None:
    alert_id, media_id = await alert_and_file(http, user)
    assert (await http.delete(f"/media/{media_id}", headers=user.headers)).status_code == 204
    assert_problem(await http.get(f"/media/{media_id}", headers=user.headers), 404)
    listing = await http.get(f"/media/alert/{alert_id}", headers=user.headers)
    assert listing.json()["items"] == []
    assert_problem(await http.delete(f"/media/{media_id}", headers=user.headers), 404)
    # Until the purge, an admin still reads it (and sees it deleted).
    meta = await http.get(f"/media/{media_id}/meta", headers=admin.headers)
    assert meta.json()["deleted_at"] is not None
    assert stored_bytes(media_root, media_id)

    assert await purge(api_settings, api_pool, media_root) >= 1
    assert not stored_bytes(media_root, media_id)
    assert_problem(await http.get(f"/media/{media_id}", headers=admin.headers), 404)
    purged_at = await api_pool.fetchval("SELECT purged_at FROM media WHERE id = $1", media_id)
    assert purged_at is not None


async def test_a_legal_hold_blocks_deletion_and_the_purge(
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    media_root: Path,
) -> None:
    _alert_id, media_id = await alert_and_file(http, user)
    hold = {"held": True, "reason": "court order 17/2026"}
    assert_problem(await http.put(f"/media/{media_id}/hold", json=hold, headers=user.headers), 403)
    held = await http.put(f"/media/{media_id}/hold", json=hold, headers=admin.headers)
    assert held.status_code == 200, held.text
    assert held.json()["legal_hold"] is True
    # The user is not told of the hold, only refused.
    assert (await http.get(f"/media/{media_id}/meta", headers=user.headers)).json().get(
        "legal_hold"
    ) is None
    assert_problem(await http.delete(f"/media/{media_id}", headers=user.headers), 409)
    assert_problem(await http.delete(f"/media/{media_id}", headers=admin.headers), 409)
    await purge(api_settings, api_pool, media_root)
    assert (await http.get(f"/media/{media_id}", headers=user.headers)).status_code == 200

    # Deleted before the hold: kept while held, purged once released.
    _alert_id, other = await alert_and_file(http, user)
    assert (await http.delete(f"/media/{other}", headers=user.headers)).status_code == 204
    assert (
        await http.put(f"/media/{other}/hold", json=hold, headers=admin.headers)
    ).status_code == 200
    await purge(api_settings, api_pool, media_root)
    assert stored_bytes(media_root, other)
    release = {"held": False}
    assert (
        await http.put(f"/media/{other}/hold", json=release, headers=admin.headers)
    ).status_code == 200
    await purge(api_settings, api_pool, media_root)
    assert not stored_bytes(media_root, other)


async def test_only_the_uploader_or_an_admin_deletes(
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    alert_id, _ = await alert_and_file(http, user)
    assign = {"agent_id": str(agent.id)}
    await http.post(f"/alerts/{alert_id}/assign", json=assign, headers=admin.headers)
    by_agent = (await upload(http, agent, alert_id, noise_png(20, 20))).json()["id"]
    assert_problem(await http.delete(f"/media/{by_agent}", headers=user.headers), 403)
    assert (await http.delete(f"/media/{by_agent}", headers=admin.headers)).status_code == 204


async def test_a_delete_under_duress_hides_the_file_from_the_phone_and_keeps_it(
    http: httpx.AsyncClient,
    user: Account,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    media_root: Path,
) -> None:
    """The person holding the phone may be the abuser deleting the evidence: they
    are answered as for any delete, and the file stays for responders."""
    await with_pins(api_pool, api_settings, user, cancel="8514", duress="7392")
    alert_id, media_id = await alert_and_file(http, user)
    cancelled = await http.put(
        f"/alerts/{alert_id}/status",
        json={"status": "cancelled", "pin": "7392"},
        headers=user.headers,
    )
    assert cancelled.json()["status"] == "cancelled"
    deleted = await http.delete(f"/media/{media_id}", headers=user.headers)
    assert deleted.status_code == 204
    assert_problem(await http.get(f"/media/{media_id}", headers=user.headers), 404)
    assert (await http.get(f"/media/alert/{alert_id}", headers=user.headers)).json()["items"] == []
    await purge(api_settings, api_pool, media_root)
    kept = await http.get(f"/media/{media_id}", headers=admin.headers)
    assert kept.status_code == 200
    assert stored_bytes(media_root, media_id)


async def test_key_rotation_keeps_every_file_readable(
    http: httpx.AsyncClient,
    user: Account,
    api_settings: Settings,
    api_entities: EntityClient,
    api_pool: asyncpg.Pool,
    media_root: Path,
) -> None:
    files = {}
    for size in (10, 300, 700):
        alert_id = (await http.post("/alerts", json=alert_body(), headers=user.headers)).json()[
            "id"
        ]
        content = noise_png(size, size)
        files[(await upload(http, user, alert_id, content)).json()["id"]] = content
    before = {media_id: stored_bytes(media_root, media_id) for media_id in files}
    old = {
        key_id: secret.get_secret_value()
        for key_id, secret in api_settings.media.master_keys.items()
    }
    env = cli_env(
        PANIC_POSTGRES__DATABASE=api_settings.postgres.database,
        PANIC_MEDIA__MASTER_KEYS=json.dumps({**old, "k2": NEW_KEY}),
        PANIC_MEDIA__ACTIVE_KEY_ID="k2",
    )
    result = await asyncio.to_thread(run_cli, "media", "rotate-key", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["active_key_id"] == "k2"
    assert report["rewrapped"] >= len(files)
    assert report["failed"] == 0
    again = await asyncio.to_thread(run_cli, "media", "rotate-key", env=env)
    assert json.loads(again.stdout)["rewrapped"] == 0

    # The content was not rewritten; a gateway knowing only the new key reads it all.
    assert {media_id: stored_bytes(media_root, media_id) for media_id in files} == before
    only_new = {"master_keys": {"k2": SecretStr(NEW_KEY)}, "active_key_id": "k2"}
    async with (
        media_gateway(api_settings, api_entities, media_root, **only_new) as rotated,
        httpx.AsyncClient(base_url=rotated.base_url, timeout=30) as client,
    ):
        for media_id, content in files.items():
            read = await client.get(f"/media/{media_id}", headers=user.headers)
            assert read.status_code == 200, read.text
            assert read.content == content
    key_ids = await api_pool.fetch("SELECT DISTINCT key_id FROM media WHERE purged_at IS NULL")
    assert [r["key_id"] for r in key_ids] == ["k2"]


async def test_the_purge_command_purges_what_is_due(
    http: httpx.AsyncClient, user: Account, api_settings: Settings, media_root: Path
) -> None:
    _alert_id, media_id = await alert_and_file(http, user)
    assert (await http.delete(f"/media/{media_id}", headers=user.headers)).status_code == 204
    env = cli_env(
        PANIC_POSTGRES__DATABASE=api_settings.postgres.database,
        PANIC_MEDIA__ROOT=str(media_root),
    )
    result = await asyncio.to_thread(run_cli, "media", "purge", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["purged"] >= 1
    assert "expired_uploads" in report
    assert not stored_bytes(media_root, media_id)
