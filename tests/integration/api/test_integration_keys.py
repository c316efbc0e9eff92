"""Integration keys over real HTTP, WebSocket, PostgreSQL and Redis (issue 20).

An administrator issues, lists and revokes the bulk location feed's keys
(``/admin/integrations``); each creation and revocation is an ``audit-logs``
event. A key authenticates only through ``gateway.deps.authenticate_integration``
(the feed's dependency): every other route of the API refuses it with 401,
and ``/ws`` closes 4401.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
from fastapi import HTTPException

from actors.store_errors import PersistenceError, ServiceUnavailable
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.integration_keys import (
    MAX_ACTIVE_KEYS,
    Integration,
    digest,
    new_key,
    parse_key,
    revocation_session,
)
from gateway.auth.principal import Role
from gateway.deps import authenticate_integration
from gateway.errors import status_for
from persistence.drivers.postgres import create_pool
from persistence.drivers.redis import create_redis
from persistence.stores.integration_keys import PostgresIntegrationKeys
from persistence.stores.sessions import RedisSessions
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import ROOMY, gateway_with
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_ws import close_code, socket

pytestmark = pytest.mark.integration

AUDIT = "audit-logs"

#: Operations that answer without credentials. The key must change nothing there:
#: each answers it exactly as it answers no credentials at all.
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("POST", "/auth/register/user"),
    ("POST", "/auth/register/agent"),
    ("POST", "/auth/login/user"),
    ("POST", "/auth/login/agent"),
    ("POST", "/auth/refresh"),
    ("OPTIONS", "/media/uploads"),  # tus discovery
}

#: The one path a key may use (the bulk feed: tests/integration/api/test_bulk_feed.py).
FEED_PATHS = {"/geofencing/locations"}

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


@pytest.fixture(scope="module")
async def keys_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(keys_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=keys_gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
def store(api_pool: asyncpg.Pool, api_settings: Settings) -> PostgresIntegrationKeys:
    return PostgresIntegrationKeys(api_pool, source=api_settings.kafka.source)


@pytest.fixture
async def agent(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.AGENT)


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def create(http: httpx.AsyncClient, admin: Account, name: str) -> dict[str, Any]:
    response = await http.post("/admin/integrations", json={"name": name}, headers=admin.headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def listed(http: httpx.AsyncClient, admin: Account) -> list[dict[str, Any]]:
    response = await http.get("/admin/integrations", headers=admin.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def audit_rows(pool: asyncpg.Pool, key_id: UUID | str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT type, key, data FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id",
        AUDIT,
        str(key_id),
    )
    return rows


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# --- administration ------------------------------------------------------------------


async def test_an_admin_creates_lists_and_revokes_a_key(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool
) -> None:
    made = await create(http, admin, "  Fleet North  ")
    assert set(made) == {"id", "name", "key", "created_at"}
    assert made["name"] == "Fleet North"  # stripped
    parsed = parse_key(made["key"])
    assert parsed is not None
    assert parsed[0] == UUID(made["id"])
    stored = await api_pool.fetchrow(
        "SELECT name, secret_sha256, created_by, revoked_at FROM integration_keys WHERE id = $1",
        UUID(made["id"]),
    )
    assert stored is not None
    assert stored["name"] == "Fleet North"
    assert bytes(stored["secret_sha256"]) == digest(parsed[1])  # only the hash is kept
    assert stored["created_by"] == admin.id
    assert stored["revoked_at"] is None

    items = await listed(http, admin)
    [item] = [i for i in items if i["id"] == made["id"]]
    assert item == {
        "id": made["id"],
        "name": "Fleet North",
        "created_at": made["created_at"],
        "revoked_at": None,
        "last_used_at": None,
    }
    listing = json.dumps(items)
    assert parsed[1] not in listing
    assert made["key"] not in listing

    gone = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
    assert gone.status_code == 204, gone.text
    assert gone.content == b""
    [item] = [i for i in await listed(http, admin) if i["id"] == made["id"]]
    assert item["revoked_at"] is not None

    again = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
    assert again.status_code == 204, again.text  # idempotent
    [item_again] = [i for i in await listed(http, admin) if i["id"] == made["id"]]
    assert item_again["revoked_at"] == item["revoked_at"]  # the first revocation stays


async def test_the_listing_is_newest_first(http: httpx.AsyncClient, admin: Account) -> None:
    first = await create(http, admin, "older")
    second = await create(http, admin, "newer")
    ids = [i["id"] for i in await listed(http, admin)]
    assert ids.index(second["id"]) < ids.index(first["id"])
    for made in (first, second):
        gone = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
        assert gone.status_code == 204


async def test_revoking_an_unknown_key_is_a_404_problem(
    http: httpx.AsyncClient, admin: Account
) -> None:
    response = await http.delete(f"/admin/integrations/{uuid.uuid4()}", headers=admin.headers)
    is_problem(response, 404)
    is_problem(await http.delete("/admin/integrations/not-a-uuid", headers=admin.headers), 422)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "line\nbreak"},
        {"name": "tab\there"},
        {"name": "bidi\u202eoverride"},
        {"name": 42},
        {"name": "ok", "extra": True},
    ],
)
async def test_a_bad_name_is_a_422_problem_and_creates_nothing(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool, body: dict[str, Any]
) -> None:
    before = await api_pool.fetchval("SELECT count(*) FROM integration_keys")
    response = await http.post("/admin/integrations", json=body, headers=admin.headers)
    problem = is_problem(response, 422)
    assert problem["errors"]
    assert await api_pool.fetchval("SELECT count(*) FROM integration_keys") == before


async def test_a_name_of_100_characters_is_accepted(
    http: httpx.AsyncClient, admin: Account
) -> None:
    made = await create(http, admin, "é" * 100)
    assert made["name"] == "é" * 100
    gone = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
    assert gone.status_code == 204


async def test_only_admins_manage_keys(
    http: httpx.AsyncClient, admin: Account, user: Account, agent: Account
) -> None:
    made = await create(http, admin, "Fleet South")
    try:
        for caller in (user, agent):
            is_problem(
                await http.post(
                    "/admin/integrations", json={"name": "mine"}, headers=caller.headers
                ),
                403,
            )
            is_problem(await http.get("/admin/integrations", headers=caller.headers), 403)
            is_problem(
                await http.delete(f"/admin/integrations/{made['id']}", headers=caller.headers),
                403,
            )
        for headers in ({}, bearer(made["key"])):  # nobody, or a key managing keys
            is_problem(await http.get("/admin/integrations", headers=headers), 401)
            is_problem(
                await http.post("/admin/integrations", json={"name": "x"}, headers=headers), 401
            )
            is_problem(await http.delete(f"/admin/integrations/{made['id']}", headers=headers), 401)
        [item] = [i for i in await listed(http, admin) if i["id"] == made["id"]]
        assert item["revoked_at"] is None
    finally:
        await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)


async def test_at_most_100_keys_are_active(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool
) -> None:
    active = await api_pool.fetchval(
        "SELECT count(*) FROM integration_keys WHERE revoked_at IS NULL"
    )
    made: list[str] = []
    try:
        for n in range(MAX_ACTIVE_KEYS - active - 2):
            made.append((await create(http, admin, f"cap {n}"))["id"])
        # Six racing creations for the last two places: the store counts under a lock.
        racing = await asyncio.gather(
            *(
                http.post("/admin/integrations", json={"name": "race"}, headers=admin.headers)
                for _ in range(6)
            )
        )
        made.extend(r.json()["id"] for r in racing if r.status_code == 201)
        assert sorted(r.status_code for r in racing) == [201, 201, 409, 409, 409, 409]
        before = await api_pool.fetchval("SELECT count(*) FROM integration_keys")
        over = await http.post(
            "/admin/integrations", json={"name": "one too many"}, headers=admin.headers
        )
        body = is_problem(over, 409)
        assert "100" in body["detail"]
        assert await api_pool.fetchval("SELECT count(*) FROM integration_keys") == before

        gone = await http.delete(f"/admin/integrations/{made.pop()}", headers=admin.headers)
        assert gone.status_code == 204
        made.append((await create(http, admin, "room again"))["id"])  # a revoked key frees one
        assert (
            await api_pool.fetchval(
                "SELECT count(*) FROM integration_keys WHERE revoked_at IS NULL"
            )
            == MAX_ACTIVE_KEYS
        )
    finally:
        for key_id in made:
            await http.delete(f"/admin/integrations/{key_id}", headers=admin.headers)


async def test_creation_and_revocation_are_audited_without_the_secret(
    http: httpx.AsyncClient, admin: Account, api_pool: asyncpg.Pool
) -> None:
    made = await create(http, admin, "Audited fleet")
    for _ in range(2):  # a repeated revocation records nothing more
        gone = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
        assert gone.status_code == 204
    rows = await audit_rows(api_pool, made["id"])
    assert [r["type"] for r in rows] == ["integration.key_created", "integration.key_revoked"]
    for row in rows:
        assert row["data"]["key_id"] == made["id"]
        assert row["data"]["name"] == "Audited fleet"
        assert row["data"]["admin_id"] == str(admin.id)
        assert row["data"]["at"]
        secret = parse_key(made["key"])
        assert secret is not None
        text = json.dumps(row["data"])
        assert secret[1] not in text
        assert digest(secret[1]).hex() not in text


async def test_revocation_is_announced_on_the_keys_revocation_channel(
    http: httpx.AsyncClient, admin: Account, api_settings: Settings
) -> None:
    """Where the feed's socket listens:
    ``Sessions.revocation_channel(revocation_session(id))``."""
    made = await create(http, admin, "Socket fleet")
    redis = create_redis(api_settings.redis)
    channel = RedisSessions(redis).revocation_channel(revocation_session(UUID(made["id"])))
    pubsub = redis.pubsub()
    try:
        await pubsub.subscribe(channel)
        subscribed = await pubsub.get_message(timeout=5)
        assert subscribed is not None
        assert subscribed["type"] == "subscribe"
        for _ in range(2):  # announced on a repeat too: a retry finishes the job
            gone = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
            assert gone.status_code == 204
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None
            assert message["channel"] in (channel, channel.encode())
    finally:
        await pubsub.aclose()
        await redis.aclose()


# --- a key reaches nothing else ----------------------------------------------------


def operations(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, documented path, path with every parameter a random UUID)."""
    found: list[tuple[str, str, str]] = []
    for path, item in document["paths"].items():
        concrete = path
        while "{" in concrete:
            start = concrete.index("{")
            concrete = concrete[:start] + str(uuid.uuid4()) + concrete[concrete.index("}") + 1 :]
        found.extend((m.upper(), path, concrete) for m in METHODS if m in item)
    return found


#: Sent with every probe: the tus routes check their protocol header before the caller.
TUS = {"Tus-Resumable": "1.0.0"}


async def call(
    http: httpx.AsyncClient, method: str, path: str, credentials: dict[str, str]
) -> httpx.Response:
    headers = {**TUS, **credentials}
    if method in ("POST", "PUT", "PATCH"):
        return await http.request(method, path, headers=headers, json={})
    return await http.request(method, path, headers=headers)


async def test_a_key_can_read_or_write_nothing_but_the_feed(
    http: httpx.AsyncClient, admin: Account
) -> None:
    made = await create(http, admin, "Nosy fleet")
    document = (await http.get("/openapi.json")).json()
    ops = operations(document)
    assert len(ops) > 50  # the whole API, not an empty document
    assert {(m, p) for m, p, _ in ops} >= PUBLIC
    feed: list[tuple[str, str]] = []
    try:
        for method, path, concrete in ops:
            if path in FEED_PATHS:
                feed.append((method, concrete))  # last: see below
                continue
            with_key = await call(http, method, concrete, bearer(made["key"]))
            where = f"{method} {path}: {with_key.status_code} {with_key.text[:200]}"
            assert with_key.status_code < 500, where
            if (method, path) in PUBLIC:
                anonymous = await call(http, method, concrete, {})
                assert with_key.status_code == anonymous.status_code, where
                assert with_key.status_code != 401, where  # public: no credentials read
            else:
                assert with_key.status_code == 401, where
                assert with_key.headers["www-authenticate"] == "Bearer", where
                if method != "HEAD":
                    is_problem(with_key, 401)
        # Nothing was read as the key: it was never used.
        [item] = [i for i in await listed(http, admin) if i["id"] == made["id"]]
        assert item["last_used_at"] is None
        # The bulk feed, the one path a key may use, gets past authentication to the
        # body ({} is not a batch), and that use is recorded.
        assert feed == [("POST", "/geofencing/locations")]
        for method, concrete in feed:
            with_key = await call(http, method, concrete, bearer(made["key"]))
            assert with_key.status_code == 422, with_key.text
            assert (await call(http, method, concrete, {})).status_code == 401
        [item] = [i for i in await listed(http, admin) if i["id"] == made["id"]]
        assert item["last_used_at"] is not None
    finally:
        await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)


async def test_a_key_cannot_open_a_socket(
    keys_gateway: Gateway, http: httpx.AsyncClient, admin: Account
) -> None:
    made = await create(http, admin, "Socket probe")
    try:
        async with socket(keys_gateway) as ws:
            await ws.send(json.dumps({"type": "auth", "data": {"token": made["key"]}}))
            assert await close_code(ws) == 4401
    finally:
        await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)


# --- the feed's dependency, on the real store ----------------------------------------


async def refused(store: PostgresIntegrationKeys, token: str) -> HTTPException:
    with pytest.raises(HTTPException) as caught:
        await authenticate_integration(store, token)
    assert caught.value.status_code == 401
    assert caught.value.headers == {"WWW-Authenticate": "Bearer"}
    assert caught.value.detail == "invalid or revoked integration key"
    return caught.value


async def test_an_active_key_authenticates_as_its_integration_and_is_touched(
    http: httpx.AsyncClient, admin: Account, store: PostgresIntegrationKeys
) -> None:
    made = await create(http, admin, "Live fleet")
    integration = await authenticate_integration(store, made["key"])
    assert integration == Integration(UUID(made["id"]), "Live fleet")
    [item] = [i for i in await listed(http, admin) if i["id"] == made["id"]]
    assert item["last_used_at"] is not None
    touched = await store.find(UUID(made["id"]))
    assert touched is not None
    await authenticate_integration(store, made["key"])  # within the minute: not touched again
    assert await store.find(UUID(made["id"])) == touched
    await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)


async def test_revoked_malformed_unknown_and_wrong_secret_keys_are_refused(
    http: httpx.AsyncClient, admin: Account, store: PostgresIntegrationKeys
) -> None:
    made = await create(http, admin, "Soon revoked")
    assert (await authenticate_integration(store, made["key"])).id == UUID(made["id"])
    gone = await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
    assert gone.status_code == 204
    await refused(store, made["key"])  # revoked: refused at once

    other = await create(http, admin, "Still active")
    try:
        key_id, _ = parse_key(other["key"]) or (None, None)
        assert key_id is not None
        await refused(store, f"pak_{key_id.hex}_{new_key().secret}")  # wrong secret
        await refused(store, new_key().text)  # unknown id
        for malformed in ("", "pak_", other["key"][:-1], other["key"] + "x", "not-a-key"):
            await refused(store, malformed)
        assert (await authenticate_integration(store, other["key"])).name == "Still active"
    finally:
        await http.delete(f"/admin/integrations/{other['id']}", headers=admin.headers)


async def test_a_store_outage_is_a_persistence_error_not_a_crash(
    api_settings: Settings, http: httpx.AsyncClient, admin: Account
) -> None:
    made = await create(http, admin, "Outage")
    pool = await create_pool(api_settings.postgres)
    await pool.close()
    down = PostgresIntegrationKeys(pool, source=api_settings.kafka.source)
    try:
        with pytest.raises(PersistenceError) as caught:
            await authenticate_integration(down, made["key"])
        assert isinstance(caught.value, ServiceUnavailable)
        assert status_for(caught.value) == 503
        await refused(down, "pak_malformed")  # a malformed key never reaches the store
    finally:
        await http.delete(f"/admin/integrations/{made['id']}", headers=admin.headers)
