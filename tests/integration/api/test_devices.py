"""Push registration over the live gateway and real PostgreSQL: users and
agents register, list and delete their devices; the same token again is the
same device; another account's device is 404; the cap evicts the device seen
least recently; a bad token is a 422 problem; the VAPID key is stable."""

from __future__ import annotations

import base64
import json
from typing import Any

import asyncpg
import httpx
import pytest

from config.settings import Settings
from gateway.auth.principal import Role
from tests.fakes.webpush import FakeBrowser
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.test_alerts import assert_problem

pytestmark = pytest.mark.integration


def endpoint(name: str) -> str:
    return f"https://push.example.org/send/{name}"


async def register(
    http: httpx.AsyncClient, account: Account, token: str, platform: str = "web"
) -> httpx.Response:
    return await http.post(
        "/users/devices",
        json={"platform": platform, "push_token": token},
        headers=account.headers,
    )


async def listed(http: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await http.get("/users/devices", headers=account.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@pytest.mark.parametrize("role", [Role.USER, Role.AGENT])
async def test_register_again_list_and_delete(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings, role: Role
) -> None:
    account = await make_account(api_pool, api_settings, role)
    browser = FakeBrowser()
    first = await register(http, account, browser.token(endpoint("a")))
    assert first.status_code == 201, first.text
    device = first.json()
    assert set(device) == {"id", "platform", "created_at", "last_seen_at"}
    assert device["platform"] == "web"

    # The same subscription, its JSON spelled otherwise: the same device, seen again.
    sub = browser.subscription(endpoint("a"))
    again = await register(http, account, json.dumps({"keys": sub["keys"], **sub}, indent=1))
    assert again.status_code == 200, again.text
    assert again.json()["id"] == device["id"]
    assert again.json()["created_at"] == device["created_at"]
    assert again.json()["last_seen_at"] > device["last_seen_at"]

    native = await register(http, account, "fcm-token:" + "x" * 40, platform="android")
    assert native.status_code == 201, native.text
    assert [d["id"] for d in await listed(http, account)] == [native.json()["id"], device["id"]]

    gone = await http.delete(f"/users/devices/{device['id']}", headers=account.headers)
    assert gone.status_code == 204
    assert [d["id"] for d in await listed(http, account)] == [native.json()["id"]]
    again_gone = await http.delete(f"/users/devices/{device['id']}", headers=account.headers)
    assert_problem(again_gone, 404)


async def test_another_accounts_device_is_not_found(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings, user: Account
) -> None:
    other = await make_account(api_pool, api_settings, Role.AGENT)
    mine = await register(http, user, FakeBrowser().token(endpoint("mine")))
    assert mine.status_code == 201
    stolen = await http.delete(f"/users/devices/{mine.json()['id']}", headers=other.headers)
    assert_problem(stolen, 404)
    assert [d["id"] for d in await listed(http, user)] == [mine.json()["id"]]
    assert await listed(http, other) == []


async def test_a_token_registered_by_another_account_moves_to_it(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings, user: Account
) -> None:
    token = FakeBrowser().token(endpoint("shared"))
    first = await register(http, user, token)
    assert first.status_code == 201
    other = await make_account(api_pool, api_settings, Role.USER)
    moved = await register(http, other, token)
    assert moved.status_code == 201
    assert await listed(http, user) == []
    assert [d["id"] for d in await listed(http, other)] == [moved.json()["id"]]


async def test_past_the_cap_the_device_seen_least_recently_is_evicted(
    http: httpx.AsyncClient, user: Account, api_settings: Settings
) -> None:
    cap = api_settings.notify.max_devices_per_account
    browsers = [FakeBrowser() for _ in range(cap + 1)]
    ids = []
    for n, browser in enumerate(browsers[:cap]):
        response = await register(http, user, browser.token(endpoint(f"cap-{n}")))
        assert response.status_code == 201
        ids.append(response.json()["id"])
    # The first is seen again: the second is now the one seen least recently.
    seen = await register(http, user, browsers[0].token(endpoint("cap-0")))
    assert seen.status_code == 200
    extra = await register(http, user, browsers[cap].token(endpoint(f"cap-{cap}")))
    assert extra.status_code == 201
    kept = {d["id"] for d in await listed(http, user)}
    assert len(kept) == cap
    assert ids[1] not in kept
    assert {ids[0], extra.json()["id"]} <= kept


@pytest.mark.parametrize(
    "body",
    [
        {"platform": "web", "push_token": "not json"},
        {"platform": "web", "push_token": json.dumps({"endpoint": "https://x.example/1"})},
        {"platform": "web", "push_token": "LOOPBACK"},
        {"platform": "web", "push_token": "INTERNAL"},
        {"platform": "pager", "push_token": "abcdefgh"},
        {"platform": "ios", "push_token": "has spaces in it"},
        {"platform": "web"},
        {"platform": "web", "push_token": "x" * 2049},
    ],
)
async def test_bad_registrations_are_422_problems(
    http: httpx.AsyncClient, user: Account, body: dict[str, str]
) -> None:
    browser = FakeBrowser()
    if body.get("push_token") == "LOOPBACK":  # http on loopback: not allowed by default
        body = {**body, "push_token": browser.token("http://127.0.0.1:9/push")}
    if body.get("push_token") == "INTERNAL":
        body = {**body, "push_token": browser.token("https://10.0.0.7/push")}
    problem = assert_problem(
        await http.post("/users/devices", json=body, headers=user.headers), 422
    )
    assert problem["errors"]
    assert await listed(http, user) == []


async def test_devices_need_a_signed_in_account(http: httpx.AsyncClient) -> None:
    token = FakeBrowser().token(endpoint("anon"))
    response = await http.post("/users/devices", json={"platform": "web", "push_token": token})
    assert_problem(response, 401)
    assert_problem(await http.get("/users/devices/vapid-public-key"), 401)


async def test_the_vapid_key_is_one_p256_point_for_every_account(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings, user: Account
) -> None:
    agent = await make_account(api_pool, api_settings, Role.AGENT)
    keys = []
    for account in (user, agent):
        response = await http.get("/users/devices/vapid-public-key", headers=account.headers)
        assert response.status_code == 200, response.text
        keys.append(response.json()["public_key"])
    assert keys[0] == keys[1]
    raw = base64.urlsafe_b64decode(keys[0] + "=" * (-len(keys[0]) % 4))
    assert len(raw) == 65
    assert raw[0] == 4
    # Kept in the database, so a restart (or another replica) serves the same key.
    stored = await api_pool.fetchval(
        "SELECT value->>'private_key' FROM system_config WHERE key = 'webpush.vapid'"
    )
    assert stored
    assert keys[0] not in str(stored)
