"""/checkins over the live gateway: start, complete, arrive in a safe zone, miss (one
alert, where the user was last seen), validation, roles (real shards and services).

The missed path runs on a gateway whose ``users.checkin_min_due_s`` is 1 (the
minimum is the route's to enforce, so the package's shared shards need nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from actors.checkins import missed_alert_id
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from tests.geodesy import destination
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import ROOMY, gateway_with
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import assert_problem, eventually, random_point

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def checkins_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture(scope="module")
async def quick_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    """Check-ins may be due after 1 s here (the default minimum is 60 s)."""
    users = api_settings.users.model_copy(update={"checkin_min_due_s": 1})
    quick = api_settings.model_copy(update={"users": users})
    async with gateway_with(quick, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(checkins_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=checkins_gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
async def quick(quick_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=quick_gateway.base_url, timeout=20) as client:
        yield client


def check_in_body(**overrides: Any) -> dict[str, Any]:
    latitude, longitude = random_point()
    body: dict[str, Any] = {
        "due_in_s": 60,
        "latitude": latitude,
        "longitude": longitude,
        "accuracy_m": 10.0,
        "note": "walking home",
    }
    body.update(overrides)
    return body


async def start(http: httpx.AsyncClient, user: Account, body: dict[str, Any]) -> dict[str, Any]:
    answer = await http.post("/checkins", json=body, headers=user.headers)
    assert answer.status_code == 201, answer.text
    started: dict[str, Any] = answer.json()
    return started


async def user_events(pool: asyncpg.Pool, user: Account) -> list[tuple[str, dict[str, Any]]]:
    rows = await pool.fetch(
        "SELECT type, data FROM outbox WHERE topic = 'user-events' AND key = $1 ORDER BY id",
        str(user.id),
    )
    return [(row["type"], dict(row["data"])) for row in rows]


async def fix(http: httpx.AsyncClient, user: Account, point: tuple[float, float]) -> None:
    body = {
        "latitude": point[0],
        "longitude": point[1],
        "accuracy_m": 5.0,
        "recorded_at": datetime.now(UTC).isoformat(),
    }
    answer = await http.post("/geofencing/location", json=body, headers=user.headers)
    assert answer.status_code == 202, answer.text


# --- start and complete --------------------------------------------------------------


async def test_start_then_complete_raises_no_alert(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    user = await make_account(api_pool, api_settings, Role.USER)
    body = check_in_body()
    before = datetime.now(UTC)
    check_in = await start(http, user, body)
    assert check_in["status"] == "running"
    assert check_in["note"] == "walking home"
    assert check_in["ended_at"] is None
    assert (check_in["latitude"], check_in["longitude"]) == (body["latitude"], body["longitude"])
    started_at = datetime.fromisoformat(check_in["started_at"])
    due_at = datetime.fromisoformat(check_in["due_at"])
    assert before - timedelta(seconds=1) <= started_at <= datetime.now(UTC)
    assert timedelta(seconds=59) <= due_at - started_at <= timedelta(seconds=61)

    current = await http.get("/checkins/current", headers=user.headers)
    assert current.status_code == 200, current.text
    assert current.json() == check_in
    second = await http.post("/checkins", json=check_in_body(), headers=user.headers)
    problem = assert_problem(second, 409)
    assert problem["type"].endswith("check-in-running")
    # The due timer is armed, durably.
    timers = await api_pool.fetchval(
        "SELECT count(*) FROM entity_timers WHERE kind = 'subject' AND entity_id = $1",
        f"user:{user.id}",
    )
    assert timers == 1

    done = await http.post(f"/checkins/{check_in['id']}/complete", headers=user.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert done.json()["id"] == check_in["id"]
    assert done.json()["ended_at"] is not None
    assert_problem(await http.get("/checkins/current", headers=user.headers), 404)
    again = await http.post(f"/checkins/{check_in['id']}/complete", headers=user.headers)
    assert "completed" in assert_problem(again, 409)["detail"]
    timers = await api_pool.fetchval(
        "SELECT count(*) FROM entity_timers WHERE kind = 'subject' AND entity_id = $1",
        f"user:{user.id}",
    )
    assert timers == 0  # cancelled with the complete
    alerts = await http.get("/alerts", headers=user.headers)
    assert alerts.json()["items"] == []
    events = await user_events(api_pool, user)
    assert [t for t, _ in events] == ["checkin.started", "checkin.completed"]
    assert {d["id"] for _, d in events} == {check_in["id"]}
    # A new one may start once the last one ended.
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    again_started = await start(http, user, check_in_body(due_in_s=None, due_at=later))
    assert datetime.fromisoformat(again_started["due_at"]) == datetime.fromisoformat(later)


async def test_another_users_check_in_is_not_found(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    owner = await make_account(api_pool, api_settings, Role.USER)
    stranger = await make_account(api_pool, api_settings, Role.USER)
    check_in = await start(http, owner, check_in_body())
    theirs = await http.post(f"/checkins/{check_in['id']}/complete", headers=stranger.headers)
    assert assert_problem(theirs, 404)["detail"] == "check-in not found"
    unknown = await http.post(f"/checkins/{uuid4()}/complete", headers=owner.headers)
    assert assert_problem(unknown, 404)["detail"] == "check-in not found"
    assert_problem(await http.get("/checkins/current", headers=stranger.headers), 404)
    mine = await http.get("/checkins/current", headers=owner.headers)
    assert mine.json()["status"] == "running"  # untouched
    bad = await http.post("/checkins/not-a-uuid/complete", headers=owner.headers)
    assert_problem(bad, 422)


async def test_only_users_have_check_ins(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    some_id = uuid4()
    calls = [
        ("POST", "/checkins", check_in_body()),
        ("GET", "/checkins/current", None),
        ("POST", f"/checkins/{some_id}/complete", None),
    ]
    for role in (Role.AGENT, Role.ADMIN):
        who = await make_account(api_pool, api_settings, role)
        for method, path, body in calls:
            answer = await http.request(method, path, json=body, headers=who.headers)
            assert_problem(answer, 403)
    for method, path, body in calls:
        assert_problem(await http.request(method, path, json=body), 401)
        garbage = {"Authorization": "Bearer not.a.token"}
        assert_problem(await http.request(method, path, json=body, headers=garbage), 401)


@pytest.mark.parametrize(
    "overrides",
    [
        {"due_in_s": 59},  # under the default minimum of 60 s
        {"due_in_s": 0},
        {"due_in_s": 86_401},
        {"due_in_s": "600"},
        {"due_in_s": 600.5},
        {"due_in_s": None},  # neither due time
        {"due_at": timedelta(hours=1)},  # both
        {"due_in_s": None, "due_at": timedelta(seconds=-60)},
        {"due_in_s": None, "due_at": timedelta(seconds=30)},
        {"due_in_s": None, "due_at": timedelta(hours=25)},
        {"due_in_s": None, "due_at": "2030-01-01T12:00:00"},  # no offset
        {"due_in_s": None, "due_at": "tomorrow"},
        {"due_in_s": None, "due_at": "0001-01-01T00:00:00+01:00"},
        {"latitude": 91},
        {"longitude": -180.5},
        {"latitude": "north"},
        {"latitude": None},  # missing
        {"accuracy_m": -1},
        {"note": "x" * 501},
        {"note": "nul\u0000"},
        {"note": 7},
        {"user_id": str(uuid4())},  # unknown field
    ],
)
async def test_bad_starts_are_422_problems(
    http: httpx.AsyncClient,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    overrides: dict[str, Any],
) -> None:
    """Due times are given as offsets from now (``timedelta``), turned into RFC 3339 here."""
    user = await make_account(api_pool, api_settings, Role.USER)
    now = datetime.now(UTC)
    body = {
        name: (now + value).isoformat() if isinstance(value, timedelta) else value
        for name, value in check_in_body(**overrides).items()
        if value is not None
    }
    answer = await http.post("/checkins", json=body, headers=user.headers)
    assert assert_problem(answer, 422)["errors"]
    assert_problem(await http.get("/checkins/current", headers=user.headers), 404)


async def test_a_body_that_is_not_an_object_is_422(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    user = await make_account(api_pool, api_settings, Role.USER)
    answer = await http.post("/checkins", json=[check_in_body()], headers=user.headers)
    assert_problem(answer, 422)


# --- arriving in a safe zone -----------------------------------------------------------


async def test_entering_a_safe_zone_that_ends_check_ins_ends_it_as_arrived(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    user = await make_account(api_pool, api_settings, Role.USER)
    home = random_point()
    zone = {
        "name": "home",
        "kind": "safe",
        "geometry": {"type": "Point", "coordinates": [home[1], home[0]]},
        "radius_m": 150,
        "rules": {"end_check_in": True},
    }
    made = await http.post("/geofencing/zones", json=zone, headers=admin.headers)
    assert made.status_code == 201, made.text
    zone_id = made.json()["id"]
    away = destination(*home, 2000, 90)
    check_in = await start(http, user, check_in_body(latitude=away[0], longitude=away[1]))
    await fix(http, user, away)  # recorded after the zone was made

    async def arrived() -> bool:
        # Inside again and again: the first fix the subject's shard takes with the
        # zone known to its zone book enters it.
        await fix(http, user, home)
        current = await http.get("/checkins/current", headers=user.headers)
        return current.status_code == 404

    assert await eventually(arrived, timeout_s=30)
    events = await user_events(api_pool, user)
    assert [t for t, _ in events] == ["checkin.started", "checkin.arrived"]
    _, ended = events[1]
    assert (ended["id"], ended["status"], ended["zone_id"]) == (check_in["id"], "arrived", zone_id)
    entered = await api_pool.fetchval(
        "SELECT count(*) FROM outbox WHERE type = 'geofence.enter' AND key = $1 "
        "AND data->>'zone_id' = $2",
        str(user.id),
        zone_id,
    )
    assert entered == 1
    late = await http.post(f"/checkins/{check_in['id']}/complete", headers=user.headers)
    assert "arrived" in assert_problem(late, 409)["detail"]
    timers = await api_pool.fetchval(
        "SELECT count(*) FROM entity_timers WHERE kind = 'subject' AND entity_id = $1",
        f"user:{user.id}",
    )
    assert timers == 0
    assert (await http.get("/alerts", headers=user.headers)).json()["items"] == []


async def test_a_safe_zone_without_the_rule_does_not_end_it(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    user = await make_account(api_pool, api_settings, Role.USER)
    park = random_point()
    zone = {
        "name": "park",
        "kind": "safe",
        "geometry": {"type": "Point", "coordinates": [park[1], park[0]]},
        "radius_m": 150,
    }
    made = await http.post("/geofencing/zones", json=zone, headers=admin.headers)
    assert made.status_code == 201, made.text
    away = destination(*park, 2000, 90)
    await start(http, user, check_in_body(latitude=away[0], longitude=away[1]))
    await fix(http, user, away)

    async def entered() -> bool:
        await fix(http, user, park)
        found = await api_pool.fetchval(
            "SELECT count(*) FROM outbox WHERE type = 'geofence.enter' AND key = $1",
            str(user.id),
        )
        return bool(found)

    assert await eventually(entered, timeout_s=30)
    current = await http.get("/checkins/current", headers=user.headers)
    assert current.status_code == 200
    assert current.json()["status"] == "running"


# --- missed ---------------------------------------------------------------------------


async def test_a_missed_check_in_raises_one_alert_where_the_user_was_last_seen(
    quick: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    user = await make_account(api_pool, api_settings, Role.USER)
    body = check_in_body(due_in_s=3, note="through the park")
    check_in = await start(quick, user, body)
    seen = destination(body["latitude"], body["longitude"], 800, 45)
    await fix(quick, user, seen)  # after the start: the alert goes here

    async def raised() -> list[dict[str, Any]]:
        answer = await quick.get("/alerts", headers=user.headers)
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    (alert,) = await eventually(raised, timeout_s=20)
    assert alert["id"] == str(missed_alert_id(UUID(check_in["id"])))
    assert alert["alert_type"] == "panic"
    assert alert["user_id"] == str(user.id)
    assert (alert["latitude"], alert["longitude"]) == pytest.approx(seen)
    assert "missed" in alert["description"]
    assert "through the park" in alert["description"]
    assert_problem(await quick.get("/checkins/current", headers=user.headers), 404)
    late = await quick.post(f"/checkins/{check_in['id']}/complete", headers=user.headers)
    assert "missed" in assert_problem(late, 409)["detail"]
    events = await user_events(api_pool, user)
    assert [t for t, _ in events] == ["checkin.started", "checkin.missed"]
    assert events[1][1]["alert_id"] == alert["id"]
    await asyncio.sleep(1.0)  # a second alert would show by now
    assert len(await raised()) == 1


async def test_without_a_later_fix_the_alert_is_raised_where_the_check_in_started(
    quick: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    user = await make_account(api_pool, api_settings, Role.USER)
    body = check_in_body(due_in_s=1)
    await start(quick, user, body)

    async def raised() -> list[dict[str, Any]]:
        answer = await quick.get("/alerts", headers=user.headers)
        items: list[dict[str, Any]] = answer.json()["items"]
        return items

    (alert,) = await eventually(raised, timeout_s=20)
    assert (alert["latitude"], alert["longitude"]) == (body["latitude"], body["longitude"])
    assert alert["accuracy_m"] == body["accuracy_m"]
