"""Text hygiene over real HTTP: every name, relationship, note, reason and
description the API stores refuses control and format characters with a 422
problem (``gateway.fields.PLAIN_TEXT``), and takes the same body without them.

Finding (issue 16): ``full_name`` accepted CR/LF, which later broke the
contact email's headers and stopped the notifier (``test_notifications.py``
shows the notifier side).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import PASSWORD, ROOMY, gateway_with, unique_email
from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def text_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(text_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=text_gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
async def accounts(api_pool: asyncpg.Pool, api_settings: Settings) -> dict[Role, Account]:
    return {role: await make_account(api_pool, api_settings, role) for role in Role}


@dataclass(frozen=True)
class Case:
    """A request whose ``field`` (a member of the JSON body) carries the text."""

    method: str
    path: str
    role: Role | None
    body: Callable[[str], dict[str, Any]]
    field: str


def square() -> dict[str, Any]:
    ring = [[13.40, 52.50], [13.41, 52.50], [13.41, 52.51], [13.40, 52.51], [13.40, 52.50]]
    return {"type": "Polygon", "coordinates": [ring]}


SOMEONE = str(uuid.uuid4())  # an id nobody has: a clean body answers 404, not 422
CONTACT = {"phone": "+14155550123", "notify_via": ["sms"]}
PLACE = {"latitude": 52.5, "longitude": 13.4}

CASES = {
    "register user full_name": Case(
        "POST",
        "/auth/register/user",
        None,
        lambda t: {"email": unique_email(), "password": PASSWORD, "full_name": t},
        "full_name",
    ),
    "register agent badge_number": Case(
        "POST",
        "/auth/register/agent",
        None,
        lambda t: {
            "email": unique_email(),
            "password": PASSWORD,
            "full_name": "Agent",
            "badge_number": f"B-7{t}",
        },
        "badge_number",
    ),
    "profile full_name": Case(
        "PUT", "/users/profile", Role.USER, lambda t: {"full_name": t}, "full_name"
    ),
    "contact name": Case(
        "POST", "/users/emergency-contacts", Role.USER, lambda t: {"name": t, **CONTACT}, "name"
    ),
    "contact relationship": Case(
        "PUT",
        f"/users/emergency-contacts/{SOMEONE}",
        Role.USER,
        lambda t: {"name": "Mum", "relationship": f"mother{t}", **CONTACT},
        "relationship",
    ),
    "alert description": Case(
        "POST",
        "/alerts",
        Role.USER,
        lambda t: {"alert_type": "medical", "description": f"fell{t}", **PLACE},
        "description",
    ),
    "alert status note": Case(
        "PUT",
        f"/alerts/{SOMEONE}/status",
        Role.USER,
        lambda t: {"status": "cancelled", "note": f"ok now{t}"},
        "note",
    ),
    "check-in note": Case(
        "POST",
        "/checkins",
        Role.USER,
        lambda t: {"due_in_s": 3600, "note": f"walking home{t}", **PLACE},
        "note",
    ),
    "agent approval reason": Case(
        "POST",
        f"/admin/agents/{SOMEONE}/approve",
        Role.ADMIN,
        lambda t: {"reason": f"checked{t}"},
        "reason",
    ),
    "agent suspension reason": Case(
        "POST",
        f"/admin/agents/{SOMEONE}/suspend",
        Role.ADMIN,
        lambda t: {"reason": f"complaint{t}"},
        "reason",
    ),
    "zone name": Case(
        "POST",
        "/geofencing/zones",
        Role.ADMIN,
        lambda t: {
            "name": f"Harbour{t}",
            "kind": "danger",
            "geometry": square(),
            "rules": {"notify_admins": True},
        },
        "name",
    ),
}


async def send(
    http: httpx.AsyncClient, accounts: dict[Role, Account], case: Case, text: str
) -> httpx.Response:
    headers = {} if case.role is None else accounts[case.role].headers
    return await http.request(case.method, case.path, json=case.body(text), headers=headers)


@pytest.mark.parametrize("name", list(CASES))
async def test_finding_full_name_accepts_cr_lf_every_text_field_refuses_it_with_422(
    http: httpx.AsyncClient, accounts: dict[Role, Account], name: str
) -> None:
    case = CASES[name]
    clean = await send(http, accounts, case, " Ok")
    assert clean.status_code < 500, clean.text
    assert clean.status_code != 422, clean.text

    refused = await send(http, accounts, case, "\r\nBcc: everyone@example.org")

    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["status"] == 422
    (error,) = problem["errors"]
    assert error["loc"][-1] == case.field
    assert "must not contain control" in error["msg"]


@pytest.mark.parametrize(
    "text",
    [
        "Alex\n",  # trailing: refused, not stripped away
        "\rAlex",
        "Al\tex",
        "Alex\x1b[31m",  # ESC: terminal colours in a log or console
        "Alex\x85",  # NEL (C1)
        "Alex\u2028Doe",  # LINE SEPARATOR (Zl): str.splitlines breaks there
        "Alex\u2029",  # PARAGRAPH SEPARATOR (Zp)
        "\u202eAlex",  # RIGHT-TO-LEFT OVERRIDE: a spoofed name
        "Al\u200bex",  # ZERO WIDTH SPACE
        "\ufeffAlex",  # BOM
        "Alex\U000e0041",  # a tag character (outside the BMP)
    ],
)
async def test_control_and_format_characters_are_refused_in_a_name(
    http: httpx.AsyncClient, accounts: dict[Role, Account], text: str
) -> None:
    response = await http.put(
        "/users/profile", json={"full_name": text}, headers=accounts[Role.USER].headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"][-1] == "full_name"


async def test_names_in_any_script_and_with_emoji_are_still_taken(
    http: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    for text in ("Zoë Ødegård", "李小龙", "Ана-Мария", "Alex 🚲"):
        response = await http.put(
            "/users/profile", json={"full_name": text}, headers=accounts[Role.USER].headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["full_name"] == text
