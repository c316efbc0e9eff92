"""Administrators' second factor (/auth/totp and the login's ``totp_code``) over
real HTTP against a live gateway on the real services."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cluster.client import EntityClient
from config.settings import LoginThrottleSettings, Settings, TotpSettings
from gateway.auth.passwords import PasswordHasher
from gateway.auth.totp import code_at, step_of
from tests.integration.api.authkit import PASSWORD, ROOMY, isolated
from tests.integration.api.conftest import Gateway, serving

pytestmark = pytest.mark.integration

AUDIT = "audit-logs"
PROBLEM = "urn:panic-alert:problem:"


@asynccontextmanager
async def totp_gateway(
    settings: Settings,
    entities: EntityClient,
    *,
    required: bool,
    throttle: LoginThrottleSettings | None = None,
) -> AsyncIterator[Gateway]:
    """A gateway whose administrators must (``required``) or may have a second factor."""
    base = isolated(settings, throttle, **ROOMY)
    rule = TotpSettings(required_for_admins=required)
    async with serving(base.model_copy(update={"totp": rule}), entities) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def optional_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with totp_gateway(api_settings, api_entities, required=False) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def required_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with totp_gateway(api_settings, api_entities, required=True) as gateway:
        yield gateway


@pytest.fixture
async def http(optional_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=optional_gateway.base_url, timeout=20) as client:
        yield client


async def new_admin(pool: asyncpg.Pool, settings: Settings) -> tuple[uuid.UUID, str]:
    """An administrator with a real password (as ``panic-alert create-admin`` makes one)."""
    email = f"admin-{uuid.uuid4().hex}@example.org"
    account_id: uuid.UUID = await pool.fetchval(
        "INSERT INTO users (email, password_hash, full_name, role) "
        "VALUES ($1, $2, 'Admin', 'admin') RETURNING id",
        email,
        PasswordHasher(settings.auth).hash(PASSWORD),
    )
    return account_id, email


async def log_in(http: httpx.AsyncClient, email: str, **second: str) -> httpx.Response:
    return await http.post(
        "/auth/login/user", json={"email": email, "password": PASSWORD, **second}
    )


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _drain(ws: ClientConnection) -> None:
    """Read until the server closes (ConnectionClosed), for at most 10 s."""
    async with asyncio.timeout(10):
        while True:
            await ws.recv()


def problem_of(response: httpx.Response, status: int, slug: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == PROBLEM + slug


async def enrol(http: httpx.AsyncClient, headers: dict[str, str]) -> tuple[str, list[str], int]:
    """Enrol and confirm; the secret, the recovery codes and the step confirmed with."""
    started = await http.post("/auth/totp/enrolment", json={"password": PASSWORD}, headers=headers)
    assert started.status_code == 201, started.text
    secret = started.json()["secret"]
    step = step_of(datetime.now(UTC))
    confirmed = await http.post(
        "/auth/totp/enrolment/confirm",
        json={"totp_code": code_at(secret, step)},
        headers=headers,
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"], step


async def audit_types(pool: asyncpg.Pool, account_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT type, data FROM outbox WHERE topic = $1 AND key = $2 ORDER BY id",
        AUDIT,
        str(account_id),
    )
    for row in rows:
        assert "secret" not in str(row["data"]).lower()
    return [row["type"] for row in rows]


# ---------------------------------------------------------------- the finding


async def test_finding_admins_have_one_factor(
    required_gateway: Gateway, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    """Where a second factor is required (the ``prod`` rule), an administrator's
    password alone opens a session that reaches nothing but the enrolment; once
    enrolled, the password alone does not log in at all."""
    _, email = await new_admin(api_pool, api_settings)
    async with httpx.AsyncClient(base_url=required_gateway.base_url, timeout=20) as http:
        first = await log_in(http, email)
        assert first.status_code == 200, first.text
        limited = bearer(first.json())
        problem_of(await http.get("/admin/agents", headers=limited), 403, "totp-enrolment-required")
        problem_of(await http.get("/alerts", headers=limited), 403, "totp-enrolment-required")
        assert (await http.get("/auth/me", headers=limited)).status_code == 200
        async with connect(required_gateway.ws_url, proxy=None, open_timeout=10) as ws:
            await ws.send(
                json.dumps({"type": "auth", "data": {"token": first.json()["access_token"]}})
            )
            with pytest.raises(ConnectionClosed) as closed:
                await _drain(ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4401
        status = (await http.get("/auth/totp", headers=limited)).json()
        assert status == {"enrolled": False, "required": True, "recovery_codes_left": 0}

        secret, _, step = await enrol(http, limited)
        # The next refresh lifts the limit: the factor was just shown.
        refreshed = await http.post(
            "/auth/refresh", json={"refresh_token": first.json()["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert (
            await http.get("/admin/agents", headers=bearer(refreshed.json()))
        ).status_code == 200

        problem_of(await log_in(http, email), 401, "totp-required")
        full = await log_in(http, email, totp_code=code_at(secret, step + 1))
        assert full.status_code == 200, full.text
        assert (await http.get("/admin/agents", headers=bearer(full.json()))).status_code == 200


# ---------------------------------------------------------------- enrolment and login


async def test_enrolment_shows_the_secret_once_and_stores_it_encrypted(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    account_id, email = await new_admin(api_pool, api_settings)
    tokens = (await log_in(http, email)).json()
    headers = bearer(tokens)
    problem_of(
        await http.post("/auth/totp/enrolment", json={"password": "not it!"}, headers=headers),
        403,
        "wrong-password",
    )
    started = await http.post("/auth/totp/enrolment", json={"password": PASSWORD}, headers=headers)
    assert started.status_code == 201, started.text
    assert started.headers["cache-control"] == "no-store"
    body = started.json()
    secret = body["secret"]
    uri = pyotp.parse_uri(body["otpauth_uri"])
    assert isinstance(uri, pyotp.TOTP)
    assert uri.secret == secret
    assert uri.issuer == api_settings.totp.issuer
    assert uri.name == email
    stored = await api_pool.fetchval(
        "SELECT secret_ciphertext FROM admin_totp WHERE account_id = $1", account_id
    )
    assert secret.encode() not in bytes(stored)
    # A wrong code does not confirm; the right one does, once.
    wrong = f"{(int(code_at(secret, step_of(datetime.now(UTC)))) + 1) % 1_000_000:06d}"
    confirm = "/auth/totp/enrolment/confirm"
    bad = await http.post(confirm, json={"totp_code": wrong}, headers=headers)
    assert bad.status_code == 422, bad.text
    good = await http.post(confirm, json={"totp_code": pyotp.TOTP(secret).now()}, headers=headers)
    assert good.status_code == 200, good.text
    assert good.headers["cache-control"] == "no-store"
    codes = good.json()["recovery_codes"]
    assert len(codes) == api_settings.totp.recovery_codes == len(set(codes))
    problem_of(
        await http.post(confirm, json={"totp_code": pyotp.TOTP(secret).now()}, headers=headers),
        409,
        "totp-state",
    )
    again = await http.post("/auth/totp/enrolment", json={"password": PASSWORD}, headers=headers)
    problem_of(again, 409, "totp-state")
    assert await audit_types(api_pool, account_id) == ["admin.totp_enrolled"]


async def test_an_enrolled_admin_needs_a_code_and_a_code_works_once(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    _, email = await new_admin(api_pool, api_settings)
    secret, _, step = await enrol(http, bearer((await log_in(http, email)).json()))
    problem_of(await log_in(http, email), 401, "totp-required")
    # The code that confirmed the enrolment is spent.
    problem_of(await log_in(http, email, totp_code=code_at(secret, step)), 401, "totp-invalid")
    later = code_at(secret, step + 1)
    assert (await log_in(http, email, totp_code=later)).status_code == 200
    problem_of(await log_in(http, email, totp_code=later), 401, "totp-invalid")
    # A wrong password is the plain 401, whatever the code.
    wrong = await http.post(
        "/auth/login/user",
        json={"email": email, "password": "not it at all", "totp_code": "000000"},
    )
    assert wrong.status_code == 401
    assert wrong.json()["type"] == "about:blank"


async def test_recovery_codes_are_single_use_and_audited(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    account_id, email = await new_admin(api_pool, api_settings)
    _, codes, _ = await enrol(http, bearer((await log_in(http, email)).json()))
    typed = codes[0].lower().replace("-", " ")
    used = await log_in(http, email, recovery_code=typed)
    assert used.status_code == 200, used.text
    problem_of(await log_in(http, email, recovery_code=codes[0]), 401, "totp-invalid")
    status = (await http.get("/auth/totp", headers=bearer(used.json()))).json()
    assert status["recovery_codes_left"] == len(codes) - 1
    stored = await api_pool.fetch(
        "SELECT code_hash FROM admin_recovery_codes WHERE account_id = $1", account_id
    )
    assert all(codes[0].encode() not in bytes(row["code_hash"]) for row in stored)
    assert await audit_types(api_pool, account_id) == [
        "admin.totp_enrolled",
        "admin.totp_recovery_code_used",
    ]


async def test_disabling_needs_password_and_code_and_ends_every_session(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    account_id, email = await new_admin(api_pool, api_settings)
    headers = bearer((await log_in(http, email)).json())
    secret, _, step = await enrol(http, headers)
    disable = "/auth/totp/disable"
    problem_of(
        await http.post(
            disable,
            json={"password": "not it!", "totp_code": code_at(secret, step + 1)},
            headers=headers,
        ),
        403,
        "wrong-password",
    )
    missing = await http.post(disable, json={"password": PASSWORD}, headers=headers)
    assert missing.status_code == 422, missing.text
    done = await http.post(
        disable,
        json={"password": PASSWORD, "totp_code": code_at(secret, step + 1)},
        headers=headers,
    )
    assert done.status_code == 204, done.text
    assert (await http.get("/auth/me", headers=headers)).status_code == 401
    assert (await log_in(http, email)).status_code == 200
    assert await audit_types(api_pool, account_id) == [
        "admin.totp_enrolled",
        "admin.totp_disabled",
    ]


async def test_only_administrators_enrol_and_other_logins_ignore_the_code(
    http: httpx.AsyncClient,
) -> None:
    email = f"u-{uuid.uuid4().hex}@example.org"
    registered = await http.post(
        "/auth/register/user", json={"email": email, "password": PASSWORD, "full_name": "U"}
    )
    assert registered.status_code == 201, registered.text
    tokens = (await log_in(http, email, totp_code="123456")).json()
    response = await http.post(
        "/auth/totp/enrolment", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    assert response.status_code == 403


async def test_password_checks_of_the_second_factor_are_throttled_like_logins(
    api_settings: Settings, api_entities: EntityClient, api_pool: asyncpg.Pool
) -> None:
    """A stolen access token is no way around the login throttle: wrong passwords
    at ``/auth/totp/*`` are failures of the same email and address."""
    slow = LoginThrottleSettings(free_failures=2, base_delay_s=60, max_delay_s=600)
    _, email = await new_admin(api_pool, api_settings)
    async with (
        totp_gateway(api_settings, api_entities, required=False, throttle=slow) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http,
    ):
        headers = bearer((await log_in(http, email)).json())
        wrong = {"password": "not it!"}
        statuses = [
            (await http.post("/auth/totp/enrolment", json=wrong, headers=headers)).status_code
            for _ in range(3)
        ]
        assert statuses == [403, 403, 429]
        # ... and the login from that address waits too.
        assert (await log_in(http, email)).status_code == 429
