"""/users over real HTTP against a live gateway on the real services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from cluster.client import EntityClient
from config.settings import RateRule, Settings
from gateway.auth.principal import Role
from tests.integration.api.accounts import make_account
from tests.integration.api.authkit import PASSWORD, ROOMY, Session, gateway_with, signed_up
from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration

CONTACT: dict[str, Any] = {
    "name": "Grace Hopper",
    "phone": "+14155550123",
    "email": "grace@example.org",
    "relationship": "friend",
    "notify_via": ["sms", "email"],
}


@pytest.fixture(scope="module")
async def users_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(users_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=users_gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> Session:
    return await signed_up(http)


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# ---------------------------------------------------------------- profile


async def test_profile_get_and_put(http: httpx.AsyncClient, user: Session) -> None:
    got = await http.get("/users/profile", headers=user.headers)
    assert got.status_code == 200, got.text
    assert got.json()["email"] == user.email
    assert got.json()["phone"] is None

    put = await http.put(
        "/users/profile",
        headers=user.headers,
        json={"full_name": "  Renamed Person ", "phone": "+33142685300"},
    )
    assert put.status_code == 200, put.text
    assert put.json()["full_name"] == "Renamed Person"
    assert put.json()["phone"] == "+33142685300"
    me = (await http.get("/auth/me", headers=user.headers)).json()
    assert (me["full_name"], me["phone"]) == ("Renamed Person", "+33142685300")

    cleared = await http.put("/users/profile", headers=user.headers, json={"full_name": "R"})
    assert cleared.json()["phone"] is None


# ---------------------------------------------------------------- PINs (issue 16)

PINS = {"cancel_pin": "2468", "duress_pin": "1357"}


async def put_profile(http: httpx.AsyncClient, user: Session, **fields: Any) -> httpx.Response:
    return await http.put(
        "/users/profile", headers=user.headers, json={"full_name": "Pin User", **fields}
    )


async def test_finding_setting_changing_or_clearing_pins_needs_the_account_password(
    http: httpx.AsyncClient, user: Session
) -> None:
    is_problem(await put_profile(http, user, **PINS), 422)
    is_problem(await put_profile(http, user, **PINS, password="not the password"), 403)
    assert (await http.get("/users/profile", headers=user.headers)).json()[
        "has_cancel_pin"
    ] is False
    done = await put_profile(http, user, **PINS, password=PASSWORD)
    assert done.status_code == 200, done.text
    assert done.json()["has_cancel_pin"] is True
    assert "2468" not in done.text
    assert "1357" not in done.text
    # A profile edit that leaves the PINs out needs no password and keeps them.
    kept = await put_profile(http, user, phone="+14155550100")
    assert kept.json()["has_cancel_pin"] is True
    cleared = {"cancel_pin": None, "duress_pin": None}
    is_problem(await put_profile(http, user, **cleared), 422)
    is_problem(await put_profile(http, user, **cleared, password="not the password"), 403)
    gone = await put_profile(http, user, **cleared, password=PASSWORD)
    assert gone.json()["has_cancel_pin"] is False


async def test_the_pin_password_check_is_throttled_like_a_login(
    http: httpx.AsyncClient, user: Session
) -> None:
    """Whoever holds the phone (a bearer token) cannot guess the password here
    faster than at the login: failures count against the same throttle."""
    for _ in range(5):
        is_problem(await put_profile(http, user, **PINS, password="not the password"), 403)
    held = await put_profile(http, user, **PINS, password=PASSWORD)
    is_problem(held, 429)
    assert int(held.headers["Retry-After"]) >= 1
    assert (await http.get("/users/profile", headers=user.headers)).json()[
        "has_cancel_pin"
    ] is False


async def test_finding_the_pins_must_differ_answer_does_not_tell_a_guess_from_the_stored_pins(
    http: httpx.AsyncClient, user: Session
) -> None:
    assert (await put_profile(http, user, **PINS, password=PASSWORD)).status_code == 200
    # One PIN alone is refused the same way whether or not it equals the stored other one.
    answers = [
        is_problem(await put_profile(http, user, duress_pin=pin, password=PASSWORD), 422)
        for pin in ("2468", "8642")
    ]
    assert [a["errors"] for a in answers] == [answers[0]["errors"]] * 2
    answers = [
        is_problem(await put_profile(http, user, cancel_pin=pin, password=PASSWORD), 422)
        for pin in ("1357", "7531")
    ]
    assert [a["errors"] for a in answers] == [answers[0]["errors"]] * 2
    # Both given: only the two given are compared.
    same = {"cancel_pin": "8642", "duress_pin": "8642"}
    is_problem(await put_profile(http, user, **same, password=PASSWORD), 422)
    mixed = {"cancel_pin": "8642", "duress_pin": None}
    is_problem(await put_profile(http, user, **mixed, password=PASSWORD), 422)


@pytest.mark.parametrize("pin", ["0000", "1234", "4321", "7890", "1212", "55555555"])
async def test_finding_trivial_pins_are_refused_with_422(
    http: httpx.AsyncClient, user: Session, pin: str
) -> None:
    for pins in (
        {"cancel_pin": pin, "duress_pin": "2468"},
        {"cancel_pin": "2468", "duress_pin": pin},
    ):
        is_problem(await put_profile(http, user, **pins, password=PASSWORD), 422)


async def test_finding_the_profile_does_not_report_a_duress_pin(
    http: httpx.AsyncClient, user: Session
) -> None:
    assert (await put_profile(http, user, **PINS, password=PASSWORD)).status_code == 200
    for path in ("/users/profile", "/auth/me"):
        shown = await http.get(path, headers=user.headers)
        assert shown.status_code == 200, shown.text
        assert "duress" not in shown.text
        assert shown.json()["has_cancel_pin"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"full_name": "X", "phone": "4155550100"},
        {"full_name": "X", "phone": "+0123"},
        {"full_name": "X", "phone": 14155550100},
        {"full_name": ""},
        {"full_name": "X" * 5000},
        {"full_name": "X", "email": "new@example.org"},
        {"full_name": "X", "role": "admin"},
        {},
    ],
)
async def test_profile_put_validation(
    http: httpx.AsyncClient, user: Session, body: dict[str, Any]
) -> None:
    is_problem(await http.put("/users/profile", headers=user.headers, json=body), 422)


async def test_agents_and_admins_are_refused_and_anonymous_is_401(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, users_gateway: Gateway
) -> None:
    agent = await signed_up(http, "agent")
    admin = await make_account(api_pool, users_gateway.settings, Role.ADMIN)
    for headers in (agent.headers, admin.headers):
        is_problem(await http.get("/users/profile", headers=headers), 403)
        is_problem(await http.get("/users/emergency-contacts", headers=headers), 403)
        is_problem(await http.post("/users/emergency-contacts", headers=headers, json=CONTACT), 403)
    is_problem(await http.get("/users/profile"), 401)
    is_problem(await http.get("/users/emergency-contacts"), 401)


# ---------------------------------------------------------------- contacts


async def test_contact_crud(http: httpx.AsyncClient, user: Session) -> None:
    created = await http.post("/users/emergency-contacts", headers=user.headers, json=CONTACT)
    assert created.status_code == 201, created.text
    contact = created.json()
    uuid.UUID(contact["id"])
    assert {k: contact[k] for k in CONTACT} == CONTACT

    push_only = {"name": "App Friend", "email": "app@example.org", "notify_via": ["push"]}
    second = await http.post("/users/emergency-contacts", headers=user.headers, json=push_only)
    assert second.status_code == 201, second.text
    assert second.json()["phone"] is None
    assert second.json()["relationship"] is None

    listed = await http.get("/users/emergency-contacts", headers=user.headers)
    assert [item["id"] for item in listed.json()["items"]] == [contact["id"], second.json()["id"]]

    path = f"/users/emergency-contacts/{contact['id']}"
    replaced = {**CONTACT, "name": "Grace B. Hopper", "email": None, "notify_via": ["sms"]}
    put = await http.put(path, headers=user.headers, json=replaced)
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "Grace B. Hopper"
    assert put.json()["email"] is None
    assert put.json()["notify_via"] == ["sms"]
    got = await http.get(path, headers=user.headers)
    assert got.json() == put.json()

    deleted = await http.delete(path, headers=user.headers)
    assert deleted.status_code == 204
    is_problem(await http.get(path, headers=user.headers), 404)
    is_problem(await http.delete(path, headers=user.headers), 404)
    listed = await http.get("/users/emergency-contacts", headers=user.headers)
    assert [item["id"] for item in listed.json()["items"]] == [second.json()["id"]]


async def test_another_users_contact_is_404_and_untouched(
    http: httpx.AsyncClient, user: Session
) -> None:
    owner = await signed_up(http)
    created = await http.post("/users/emergency-contacts", headers=owner.headers, json=CONTACT)
    path = f"/users/emergency-contacts/{created.json()['id']}"
    stranger = user.headers
    missing = is_problem(await http.get(path, headers=stranger), 404)
    unknown = is_problem(
        await http.get(f"/users/emergency-contacts/{uuid.uuid4()}", headers=stranger), 404
    )
    assert missing["detail"] == unknown["detail"]
    is_problem(await http.put(path, headers=stranger, json={**CONTACT, "name": "Evil"}), 404)
    is_problem(await http.delete(path, headers=stranger), 404)
    assert (await http.get("/users/emergency-contacts", headers=stranger)).json()["items"] == []
    still = await http.get(path, headers=owner.headers)
    assert still.status_code == 200
    assert still.json()["name"] == CONTACT["name"]


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"phone": "555-0100"}, "bad phone"),
        ({"phone": "+1 415 555 0100"}, "phone with spaces"),
        ({"email": "not an email"}, "bad email"),
        ({"notify_via": ["pigeon"]}, "unknown channel"),
        ({"notify_via": []}, "no channel"),
        ({"notify_via": ["sms", "sms"]}, "repeated channel"),
        ({"notify_via": "sms"}, "not a list"),
        ({"phone": None, "notify_via": ["sms"]}, "sms without phone"),
        ({"email": None, "notify_via": ["email"]}, "email without email"),
        ({"phone": None, "email": None, "notify_via": ["push"]}, "unreachable"),
        ({"name": ""}, "empty name"),
        ({"name": "n" * 201}, "long name"),
        ({"relationship": "r" * 101}, "long relationship"),
        ({"relationship": "bad\u0000nul"}, "NUL"),
        ({"id": str(uuid.uuid4())}, "unknown member"),
    ],
)
async def test_contact_validation(
    http: httpx.AsyncClient, user: Session, change: dict[str, Any], why: str
) -> None:
    body = {**CONTACT, **change}
    response = await http.post("/users/emergency-contacts", headers=user.headers, json=body)
    problem = is_problem(response, 422)
    assert problem["errors"], why


async def test_invalid_contact_id_in_path_is_422(http: httpx.AsyncClient, user: Session) -> None:
    for method in ("GET", "PUT", "DELETE"):
        response = await http.request(
            method, "/users/emergency-contacts/not-a-uuid", headers=user.headers, json=CONTACT
        )
        is_problem(response, 422)


async def test_contacts_are_bounded_per_user(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    small = api_settings.model_copy(
        update={"users": api_settings.users.model_copy(update={"max_emergency_contacts": 3})}
    )
    async with (
        gateway_with(small, api_entities, **ROOMY) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http,
    ):
        user = await signed_up(http)
        for _ in range(3):
            ok = await http.post("/users/emergency-contacts", headers=user.headers, json=CONTACT)
            assert ok.status_code == 201, ok.text
        over = await http.post("/users/emergency-contacts", headers=user.headers, json=CONTACT)
        problem = is_problem(over, 409)
        assert "3" in problem["detail"]
        listed = await http.get("/users/emergency-contacts", headers=user.headers)
        assert len(listed.json()["items"]) == 3


async def test_per_principal_limit_answers_429_with_retry_after(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    async with (
        gateway_with(
            api_settings, api_entities, per_principal=RateRule(limit=3, window_s=30), **ROOMY
        ) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http,
    ):
        user = await signed_up(http)
        other = await signed_up(http)
        responses = [await http.get("/users/profile", headers=user.headers) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        response = responses[-1]
        assert 1 <= int(response.headers["retry-after"]) <= 30
        is_problem(response, 429)
        # Per endpoint: the same user's other endpoints have their own budget.
        listed = await http.get("/users/emergency-contacts", headers=user.headers)
        assert listed.status_code == 200, listed.text
        assert (await http.get("/users/profile", headers=other.headers)).status_code == 200
