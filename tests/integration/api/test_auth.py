"""/auth over real HTTP against a live gateway on the real services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import jwt
import pytest

from cluster.client import EntityClient
from config.settings import LoginThrottleSettings, RateRule, Settings
from gateway.auth.passwords import PasswordHasher
from gateway.auth.principal import Role
from gateway.auth.tokens import issue_access_token
from tests.integration.api.authkit import (
    PASSWORD,
    ROOMY,
    client_from,
    gateway_with,
    login,
    register,
    signed_up,
    unique_email,
)
from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration

GENERIC_401 = "invalid email or password"


@pytest.fixture(scope="module")
async def auth_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(auth_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=auth_gateway.base_url, timeout=20) as client:
        yield client


def is_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


# ---------------------------------------------------------------- register


async def test_register_user_returns_the_account_and_lowercases_the_email(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool
) -> None:
    email = f"Mixed-{uuid.uuid4().hex}@Example.ORG"
    response = await http.post(
        "/auth/register/user",
        json={"email": email, "password": PASSWORD, "full_name": " Ada ", "phone": "+14155550100"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email.lower()
    assert body["role"] == "user"
    assert body["full_name"] == "Ada"
    row = await api_pool.fetchrow(
        "SELECT email::text, role, phone, password_hash FROM users WHERE id = $1",
        uuid.UUID(body["id"]),
    )
    assert row is not None
    assert (row["email"], row["role"], row["phone"]) == (email.lower(), "user", "+14155550100")
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]


async def test_register_agent_inserts_the_agents_row(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool
) -> None:
    badge = f"B-{uuid.uuid4().hex[:8]}"
    _, body = await register(http, "agent", badge_number=badge)
    assert body["role"] == "agent"
    row = await api_pool.fetchrow(
        "SELECT badge_number, status FROM agents WHERE id = $1", uuid.UUID(body["id"])
    )
    assert row is not None
    assert (row["badge_number"], row["status"]) == (badge, "offline")
    duplicate_badge = await http.post(
        "/auth/register/agent",
        json={
            "email": unique_email(),
            "password": PASSWORD,
            "full_name": "Other",
            "badge_number": badge,
        },
    )
    is_problem(duplicate_badge, 409)


async def test_duplicate_email_in_any_case_is_409(http: httpx.AsyncClient) -> None:
    email, _ = await register(http)
    again = await http.post(
        "/auth/register/agent",
        json={"email": email.upper(), "password": PASSWORD, "full_name": "Again"},
    )
    is_problem(again, 409)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "a" * 300 + "@example.org"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"full_name": "nul\u0000byte"}, "full_name"),
        ({"phone": "0123456"}, "phone"),
        ({"phone": "+1415555010012345"}, "phone"),
        ({"phone": "+\u0661\u0662\u0663\u0664"}, "phone"),
        ({"role": "admin"}, "role"),
        ({"email": 42}, "email"),
    ],
)
async def test_register_rejects_bad_input_with_422(
    http: httpx.AsyncClient, change: dict[str, object], field: str
) -> None:
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Val Idation", **change}
    response = await http.post("/auth/register/user", json=body)
    is_problem(response, 422)
    locs = [error["loc"] for error in response.json()["errors"]]
    assert any(field in loc for loc in locs), locs
    assert PASSWORD not in response.text


async def test_register_rejects_non_json_body_with_422(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/auth/register/user", content=b"{not json", headers={"content-type": "application/json"}
    )
    is_problem(response, 422)


# ---------------------------------------------------------------- login


async def test_login_returns_a_bearer_pair_that_me_accepts(http: httpx.AsyncClient) -> None:
    email, account = await register(http, phone="+442071838750")
    tokens = await login(http, email.upper())
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    assert len(tokens["refresh_token"]) >= 40
    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["id"] == account["id"]
    assert body["email"] == email
    assert body["role"] == "user"
    assert body["phone"] == "+442071838750"
    assert body["full_name"] == "Test Person"
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None


async def test_wrong_password_unknown_email_and_wrong_endpoint_look_the_same(
    http: httpx.AsyncClient,
) -> None:
    user_email, _ = await register(http, "user")
    agent_email, _ = await register(http, "agent")
    attempts = [
        ("/auth/login/user", user_email, "wrong password!!"),
        ("/auth/login/user", unique_email(), PASSWORD),
        ("/auth/login/agent", user_email, PASSWORD),
        ("/auth/login/user", agent_email, PASSWORD),
    ]
    for path, email, password in attempts:
        response = await http.post(path, json={"email": email, "password": password})
        is_problem(response, 401)
        assert response.json()["detail"] == GENERIC_401
        assert response.headers["www-authenticate"] == "Bearer"
    agent = await login(http, agent_email, "agent")
    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {agent['access_token']}"})
    assert me.json()["role"] == "agent"


async def test_admin_logs_in_through_the_user_endpoint_only(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    email = unique_email()
    password_hash = PasswordHasher(api_settings.auth).hash(PASSWORD)
    await api_pool.execute(
        "INSERT INTO users (email, password_hash, full_name, role) VALUES ($1, $2, 'Adm', 'admin')",
        email,
        password_hash,
    )
    tokens = await login(http, email, "user")
    me = await http.get("/auth/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["role"] == "admin"
    refused = await http.post("/auth/login/agent", json={"email": email, "password": PASSWORD})
    is_problem(refused, 401)


async def test_disabled_account_cannot_log_in(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool
) -> None:
    email, _ = await register(http)
    await api_pool.execute("UPDATE users SET disabled = true WHERE email = $1", email)
    response = await http.post("/auth/login/user", json={"email": email, "password": PASSWORD})
    is_problem(response, 401)
    assert response.json()["detail"] == GENERIC_401


async def test_login_upgrades_a_hash_made_with_old_parameters(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    weak = api_settings.auth.model_copy(
        update={"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1}
    )
    email = unique_email()
    old_hash = PasswordHasher(weak).hash(PASSWORD)
    await api_pool.execute(
        "INSERT INTO users (email, password_hash, full_name) VALUES ($1, $2, 'Old')",
        email,
        old_hash,
    )
    await login(http, email)
    new_hash = await api_pool.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert new_hash != old_hash
    assert not PasswordHasher(api_settings.auth).needs_rehash(new_hash)
    await login(http, email)  # the upgraded hash still verifies


# ---------------------------------------------------------------- refresh


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    http: httpx.AsyncClient,
) -> None:
    session = await signed_up(http)
    first = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    assert first.status_code == 200, first.text
    rotated = first.json()
    assert rotated["refresh_token"] != session.refresh_token
    assert rotated["access_token"] != session.access_token
    new_headers = {"Authorization": f"Bearer {rotated['access_token']}"}
    assert (await http.get("/auth/me", headers=new_headers)).status_code == 200
    # The same session: the old access token still works until the reuse.
    assert (await http.get("/auth/me", headers=session.headers)).status_code == 200

    reused = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    is_problem(reused, 401)

    # Reuse ended the family: the successor and both access tokens are dead.
    successor = await http.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    is_problem(successor, 401)
    is_problem(await http.get("/auth/me", headers=new_headers), 401)
    is_problem(await http.get("/auth/me", headers=session.headers), 401)


async def test_reuse_revokes_only_that_family(http: httpx.AsyncClient) -> None:
    session = await signed_up(http)
    other = await login(http, session.email)
    assert (
        await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    ).is_success
    await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert (await http.get("/auth/me", headers=other_headers)).status_code == 200
    again = await http.post("/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert again.status_code == 200, again.text


async def test_concurrent_use_of_one_refresh_token_lets_at_most_one_win(
    http: httpx.AsyncClient,
) -> None:
    session = await signed_up(http)
    body = {"refresh_token": session.refresh_token}
    first, second = await asyncio.gather(
        http.post("/auth/refresh", json=body), http.post("/auth/refresh", json=body)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 401]
    winner = first if first.status_code == 200 else second
    # The loser presented a spent token: the family, winner included, is revoked.
    again = await http.post("/auth/refresh", json={"refresh_token": winner.json()["refresh_token"]})
    is_problem(again, 401)
    headers = {"Authorization": f"Bearer {winner.json()['access_token']}"}
    is_problem(await http.get("/auth/me", headers=headers), 401)


async def test_refresh_token_chain_keeps_working(http: httpx.AsyncClient) -> None:
    session = await signed_up(http)
    token = session.refresh_token
    for _ in range(3):
        response = await http.post("/auth/refresh", json={"refresh_token": token})
        assert response.status_code == 200, response.text
        token = response.json()["refresh_token"]


@pytest.mark.parametrize("token", ["", "x" * 257, "never-issued-token", None, 12])
async def test_bad_refresh_tokens_are_401_or_422(http: httpx.AsyncClient, token: object) -> None:
    response = await http.post("/auth/refresh", json={"refresh_token": token})
    assert response.status_code in (401, 422), response.text
    expected = 401 if token == "never-issued-token" else 422
    is_problem(response, expected)


async def test_expired_refresh_token_is_refused(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool
) -> None:
    session = await signed_up(http)
    await api_pool.execute(
        "UPDATE refresh_tokens SET issued_at = now() - interval '2 days', "
        "expires_at = now() - interval '1 day' WHERE user_id = $1",
        uuid.UUID(session.account_id),
    )
    response = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    is_problem(response, 401)


# ---------------------------------------------------------------- logout


async def test_logout_stops_the_access_and_refresh_tokens_at_once(
    http: httpx.AsyncClient,
) -> None:
    session = await signed_up(http)
    other = await login(http, session.email)
    out = await http.post(
        "/auth/logout", headers=session.headers, json={"refresh_token": session.refresh_token}
    )
    assert out.status_code == 204, out.text
    assert out.content == b""
    is_problem(await http.get("/auth/me", headers=session.headers), 401)
    refresh = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    is_problem(refresh, 401)
    # Another device's session of the same account is untouched.
    other_headers = {"Authorization": f"Bearer {other['access_token']}"}
    assert (await http.get("/auth/me", headers=other_headers)).status_code == 200


async def test_logout_without_a_body_also_revokes_the_refresh_family(
    http: httpx.AsyncClient,
) -> None:
    session = await signed_up(http)
    assert (await http.post("/auth/logout", headers=session.headers)).status_code == 204
    refresh = await http.post("/auth/refresh", json={"refresh_token": session.refresh_token})
    is_problem(refresh, 401)
    is_problem(await http.post("/auth/logout", headers=session.headers), 401)


async def test_a_refresh_racing_the_logout_does_not_bring_the_session_back(
    http: httpx.AsyncClient,
) -> None:
    """A client refreshing while it signs out (the console does, when the
    logout's 4401 reaches its socket first) must not undo the logout: not by
    re-listing the session, and not with a successor token the revocation missed."""
    for _ in range(12):
        session = await signed_up(http)
        out, refreshed = await asyncio.gather(
            http.post(
                "/auth/logout",
                headers=session.headers,
                json={"refresh_token": session.refresh_token},
            ),
            http.post("/auth/refresh", json={"refresh_token": session.refresh_token}),
        )
        assert out.status_code == 204, out.text
        assert refreshed.status_code in (200, 401), refreshed.text
        is_problem(await http.get("/auth/me", headers=session.headers), 401)
        if refreshed.status_code == 200:
            pair = refreshed.json()
            headers = {"Authorization": f"Bearer {pair['access_token']}"}
            is_problem(await http.get("/auth/me", headers=headers), 401)
            again = await http.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
            is_problem(again, 401)


async def test_logout_cannot_revoke_another_accounts_family(http: httpx.AsyncClient) -> None:
    victim = await signed_up(http)
    attacker = await signed_up(http)
    out = await http.post(
        "/auth/logout", headers=attacker.headers, json={"refresh_token": victim.refresh_token}
    )
    assert out.status_code == 204
    assert (await http.get("/auth/me", headers=victim.headers)).status_code == 200
    refresh = await http.post("/auth/refresh", json={"refresh_token": victim.refresh_token})
    assert refresh.status_code == 200, refresh.text


# ---------------------------------------------------------------- forged tokens


def _claims(session_id: str, account_id: str, settings: Settings) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "sub": account_id,
        "role": "admin",
        "sid": session_id,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "iss": settings.auth.issuer,
        "aud": settings.auth.audience,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
    }


async def test_forged_and_expired_tokens_are_refused(
    http: httpx.AsyncClient, api_settings: Settings
) -> None:
    session = await signed_up(http)
    sid = jwt.decode(session.access_token, options={"verify_signature": False})["sid"]
    claims = _claims(sid, session.account_id, api_settings)
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    other_secret = jwt.encode(claims, "another-secret-" + "x" * 40, algorithm="HS256")
    expired, _ = issue_access_token(
        api_settings.auth,
        account_id=uuid.UUID(session.account_id),
        role=Role.USER,
        session_id=sid,
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    tampered = session.access_token[:-4] + (
        "AAAA" if not session.access_token.endswith("AAAA") else "BBBB"
    )
    for token in (unsigned, other_secret, expired, tampered, "garbage", "a.b.c"):
        response = await http.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
        is_problem(response, 401)
    is_problem(await http.get("/auth/me"), 401)
    is_problem(await http.get("/auth/me", headers={"Authorization": session.access_token}), 401)
    assert (await http.get("/auth/me", headers=session.headers)).status_code == 200


# ---------------------------------------------------------------- rate limits


WRONG = "wrong password!"
#: Small enough to reach in a test, long enough that no wait ends during one.
SLOW = LoginThrottleSettings(free_failures=2, base_delay_s=60, max_delay_s=600)


async def _try(http: httpx.AsyncClient, email: str, password: str = WRONG) -> httpx.Response:
    return await http.post("/auth/login/user", json={"email": email, "password": password})


async def test_finding_anyone_can_lock_anyone_out(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    """Ten wrong passwords on someone's email, from a stranger's address, do not
    keep the owner (at the default settings) from logging in from their own."""
    async with (
        gateway_with(api_settings, api_entities, login_per_ip=ROOMY["login_per_ip"]) as gateway,
        client_from(gateway, "127.0.0.1") as owner,
        client_from(gateway, "127.0.0.2") as stranger,
    ):
        email, _ = await register(owner)
        statuses = [(await _try(stranger, email)).status_code for _ in range(10)]
        assert set(statuses) <= {401, 429}, statuses
        assert statuses[0] == 401
        response = await _try(owner, email, PASSWORD)
        assert response.status_code == 200, response.text
        assert response.json()["access_token"]


async def test_failures_from_one_address_are_answered_429_after_the_free_ones(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    async with (
        gateway_with(api_settings, api_entities, SLOW, **ROOMY) as gateway,
        client_from(gateway, "127.0.0.3") as http,
    ):
        email, _ = await register(http)
        # Successes are not counted: many of them cost nothing.
        for _ in range(4):
            await login(http, email)
        assert [(await _try(http, email)).status_code for _ in range(2)] == [401, 401]
        response = await _try(http, email)
        is_problem(response, 429)
        assert 1 <= int(response.headers["retry-after"]) <= 60
        # Inside the wait the right password is not even checked ...
        is_problem(await _try(http, email, PASSWORD), 429)
        # ... while another email from the same address may still log in.
        other, _ = await register(http)
        await login(http, other)


async def test_a_successful_login_resets_the_failure_count(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    async with (
        gateway_with(api_settings, api_entities, SLOW, **ROOMY) as gateway,
        client_from(gateway, "127.0.0.4") as http,
    ):
        email, _ = await register(http)
        assert (await _try(http, email)).status_code == 401
        await login(http, email)
        # Counted from zero again: two free failures, then the wait.
        assert [(await _try(http, email)).status_code for _ in range(3)] == [401, 401, 429]


async def test_the_per_email_ceiling_stops_a_guesser_spread_over_addresses(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    throttle = LoginThrottleSettings(per_email_ceiling=RateRule(limit=3, window_s=600))
    async with gateway_with(api_settings, api_entities, throttle, **ROOMY) as gateway:
        async with client_from(gateway, "127.0.0.5") as http:
            email, _ = await register(http)
        for last_octet in (6, 7, 8):
            async with client_from(gateway, f"127.0.0.{last_octet}") as guesser:
                assert (await _try(guesser, email)).status_code == 401
        async with client_from(gateway, "127.0.0.9") as fresh:
            response = await _try(fresh, email, PASSWORD)
            is_problem(response, 429)
            assert 1 <= int(response.headers["retry-after"]) <= 600
            other, _ = await register(fresh)
            await login(fresh, other)


async def test_registration_is_limited_per_client_address(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    rule = RateRule(limit=2, window_s=60)
    async with (
        gateway_with(api_settings, api_entities, register_per_ip=rule) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http,
    ):
        await register(http)
        await register(http)
        response = await http.post(
            "/auth/register/user",
            json={"email": unique_email(), "password": PASSWORD, "full_name": "Third"},
        )
        is_problem(response, 429)
        assert 1 <= int(response.headers["retry-after"]) <= 60
