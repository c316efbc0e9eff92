"""``/alerts`` over real HTTP against the live gateway, real shards and database.

Each test makes its own accounts, and raises its alerts at random points of
the globe so the nearest-agent dispatch of one test never meets the agents of
another.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import httpx
import pytest

from actors.alert_messages import DeclineOffer
from actors.effects import EntityKind
from actors.region import QueryNearest
from cluster.client import EntityClient
from config.settings import RateRule, Settings
from gateway.alert_press import ALREADY_OPEN_HEADER
from gateway.auth.passwords import PasswordHasher
from gateway.auth.principal import Role
from gateway.routes.alerts import alert_id_for
from geo.cells import cell_center, cell_of, haversine_m, ring
from tests.geodesy import destination
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import gateway_with
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_ws import Client, session

pytestmark = pytest.mark.integration

T = TypeVar("T")
MakeAccount = Callable[[Role], Awaitable[Account]]


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
def account(api_pool: asyncpg.Pool, api_settings: Settings) -> MakeAccount:
    async def make(role: Role) -> Account:
        return await make_account(api_pool, api_settings, role)

    return make


def random_point() -> tuple[float, float]:
    """A random point away from the poles and the antimeridian."""
    return round(random.uniform(-60, 60), 6), round(random.uniform(-170, 170), 6)


def alert_body(**overrides: Any) -> dict[str, Any]:
    latitude, longitude = random_point()
    body: dict[str, Any] = {
        "latitude": latitude,
        "longitude": longitude,
        "accuracy_m": 12.5,
        "alert_type": "panic",
        "description": "help",
    }
    body.update(overrides)
    return body


async def create(
    http: httpx.AsyncClient, who: Account, body: dict[str, Any] | None = None, **headers: str
) -> dict[str, Any]:
    response = await http.post(
        "/alerts", json=body or alert_body(), headers={**who.headers, **headers}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def create_closed(http: httpx.AsyncClient, who: Account) -> dict[str, Any]:
    """An alert raised and cancelled: a user has one open alert at a time (a press
    while one is open answers with it), so tests that need several close each."""
    created = await create(http, who)
    cancelled = await http.put(
        f"/alerts/{created['id']}/status", json={"status": "cancelled"}, headers=who.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    return created


async def eventually(probe: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T:
    """The first truthy answer of ``probe``, polled every 0.1 s (fails after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- create -------------------------------------------------------------------------


async def test_create_answers_201_after_the_alert_is_committed(
    http: httpx.AsyncClient, account: MakeAccount, api_pool: asyncpg.Pool
) -> None:
    user = await account(Role.USER)
    body = alert_body(alert_type="medical", silent=True)
    response = await http.post("/alerts", json=body, headers=user.headers)

    assert response.status_code == 201, response.text
    alert = response.json()
    assert alert["status"] == "dispatching"
    assert alert["alert_type"] == "medical"
    assert alert["user_id"] == str(user.id)
    assert alert["latitude"] == body["latitude"]
    assert alert["longitude"] == body["longitude"]
    assert alert["assigned_agent_id"] is None
    assert alert["silent"] is True
    assert alert["created_at"]
    assert response.headers["location"] == f"/alerts/{alert['id']}"
    assert "idempotent-replayed" not in response.headers
    # Committed before the answer: both the snapshot and its projection, at once.
    row = await api_pool.fetchrow(
        "SELECT user_id, status, alert_type FROM alerts WHERE id = $1", UUID(alert["id"])
    )
    assert row is not None
    assert (row["user_id"], row["status"], row["alert_type"]) == (
        user.id,
        "dispatching",
        "medical",
    )
    snapshot = await api_pool.fetchval(
        "SELECT state FROM entity_snapshots WHERE kind = 'alert' AND entity_id = $1",
        alert["id"],
    )
    assert snapshot is not None
    assert snapshot["status"] == "dispatching"


async def test_idempotency_key_replays_the_same_alert_and_refuses_another_body(
    http: httpx.AsyncClient, account: MakeAccount, api_pool: asyncpg.Pool
) -> None:
    user = await account(Role.USER)
    other = await account(Role.USER)
    key = f"retry-{uuid.uuid4().hex}"
    body = alert_body()

    first = await http.post("/alerts", json=body, headers={**user.headers, "Idempotency-Key": key})
    again = await http.post("/alerts", json=body, headers={**user.headers, "Idempotency-Key": key})
    changed = await http.post(
        "/alerts",
        json={**body, "alert_type": "fire"},
        headers={**user.headers, "Idempotency-Key": key},
    )
    elsewhere = await http.post(
        "/alerts", json=body, headers={**other.headers, "Idempotency-Key": key}
    )

    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"] == str(alert_id_for(user.id, key))
    problem = assert_problem(changed, 409)
    assert "Idempotency-Key" in problem["detail"]
    # Keys are per user: the same key from someone else is another alert.
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json()["id"] != first.json()["id"]
    rows = await api_pool.fetch(
        "SELECT alert_type, idempotency_key FROM alerts WHERE user_id = $1", user.id
    )
    assert [(r["alert_type"], r["idempotency_key"]) for r in rows] == [("panic", key)]


@pytest.mark.parametrize(
    "body",
    [
        alert_body(latitude=91),
        alert_body(longitude=-180.5),
        alert_body(alert_type="earthquake"),
        alert_body(extra="field"),
        alert_body(latitude="12.5"),
        alert_body(silent="yes"),
        alert_body(accuracy_m=-1),
        alert_body(accuracy_m=1e308),
        alert_body(description="x" * 2001),
        alert_body(description="help\x00me"),  # PostgreSQL text cannot hold NUL (was a 500)
        {"latitude": 1.0, "longitude": 2.0},
        [],
    ],
    ids=[
        "latitude-91",
        "longitude-out-of-range",
        "unknown-type",
        "extra-field",
        "latitude-as-string",
        "silent-as-string",
        "negative-accuracy",
        "huge-accuracy",
        "long-description",
        "nul-in-description",
        "missing-type",
        "not-an-object",
    ],
)
async def test_invalid_alert_bodies_are_422(
    http: httpx.AsyncClient, account: MakeAccount, body: Any
) -> None:
    user = await account(Role.USER)
    response = await http.post("/alerts", json=body, headers=user.headers)
    problem = assert_problem(response, 422)
    assert problem["errors"]


@pytest.mark.parametrize("key", ["has space", "x" * 129, "ключ", ""])
async def test_a_malformed_idempotency_key_is_422(
    http: httpx.AsyncClient, account: MakeAccount, key: str
) -> None:
    user = await account(Role.USER)
    response = await http.post(
        "/alerts",
        json=alert_body(),
        headers={**user.headers, "Idempotency-Key": key.encode()},
    )
    assert_problem(response, 422)


async def test_only_users_raise_alerts(http: httpx.AsyncClient, account: MakeAccount) -> None:
    agent = await account(Role.AGENT)
    assert_problem(await http.post("/alerts", json=alert_body(), headers=agent.headers), 403)
    assert_problem(await http.post("/alerts", json=alert_body()), 401)


# --- list ---------------------------------------------------------------------------


async def test_a_user_lists_only_their_own_alerts(
    http: httpx.AsyncClient, account: MakeAccount
) -> None:
    alice = await account(Role.USER)
    bob = await account(Role.USER)
    mine = {(await create_closed(http, alice))["id"] for _ in range(2)}
    theirs = (await create(http, bob))["id"]

    response = await http.get("/alerts", headers=alice.headers)

    assert response.status_code == 200, response.text
    page = response.json()
    assert {a["id"] for a in page["items"]} == mine
    assert theirs not in {a["id"] for a in page["items"]}
    assert page["next_cursor"] is None


async def test_pagination_walks_every_alert_once_newest_first(
    http: httpx.AsyncClient, account: MakeAccount
) -> None:
    user = await account(Role.USER)
    created = [(await create_closed(http, user))["id"] for _ in range(7)]

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        response = await http.get("/alerts", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    ids = [a["id"] for a in seen]
    assert pages == 3
    assert len(ids) == len(set(ids)) == 7
    assert ids == list(reversed(created))  # newest first, no gaps
    keys = [(a["created_at"], a["id"]) for a in seen]
    assert keys == sorted(keys, reverse=True)


async def test_list_filters_by_status_type_and_time(
    http: httpx.AsyncClient, account: MakeAccount
) -> None:
    user = await account(Role.USER)
    medical = await create(http, user, alert_body(alert_type="medical"))
    cancelled = await http.put(
        f"/alerts/{medical['id']}/status", json={"status": "cancelled"}, headers=user.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    fire = await create(http, user, alert_body(alert_type="fire"))

    async def ids(**params: str) -> list[str]:
        response = await http.get("/alerts", params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        return [a["id"] for a in response.json()["items"]]

    assert await ids(alert_type="fire") == [fire["id"]]
    assert await ids(status="cancelled") == [medical["id"]]
    assert await ids(status="dispatching") == [fire["id"]]
    assert await ids(since=fire["created_at"]) == [fire["id"]]
    assert await ids(until=fire["created_at"]) == [medical["id"]]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "1e30"},
        {"status": "lost"},
        {"alert_type": "flood"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no time zone
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4IiwieSJd"},  # base64url of ["x","y"]
        {"cursor": "A" * 500},
    ],
)
async def test_bad_list_parameters_are_422(
    http: httpx.AsyncClient, account: MakeAccount, params: dict[str, str]
) -> None:
    user = await account(Role.USER)
    response = await http.get("/alerts", params=params, headers=user.headers)
    assert_problem(response, 422)


async def test_a_tampered_cursor_is_422(http: httpx.AsyncClient, account: MakeAccount) -> None:
    user = await account(Role.USER)
    for _ in range(2):
        await create_closed(http, user)
    first = await http.get("/alerts", params={"limit": 1}, headers=user.headers)
    cursor = first.json()["next_cursor"]
    assert cursor
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    response = await http.get("/alerts", params={"cursor": tampered}, headers=user.headers)
    assert_problem(response, 422)


# --- one alert, its status and timeline ------------------------------------------------


async def test_another_users_alert_is_404_everywhere(
    http: httpx.AsyncClient, account: MakeAccount
) -> None:
    owner = await account(Role.USER)
    stranger = await account(Role.USER)
    agent = await account(Role.AGENT)
    alert = await create(http, owner)
    path = f"/alerts/{alert['id']}"

    assert (await http.get(path, headers=owner.headers)).json()["id"] == alert["id"]
    for who in (stranger, agent):
        assert_problem(await http.get(path, headers=who.headers), 404)
        assert_problem(await http.get(f"{path}/timeline", headers=who.headers), 404)
        put = await http.put(f"{path}/status", json={"status": "cancelled"}, headers=who.headers)
        assert_problem(put, 404)
    # A missing alert answers exactly the same.
    assert_problem(await http.get(f"/alerts/{uuid.uuid4()}", headers=owner.headers), 404)
    assert_problem(await http.get("/alerts/not-a-uuid", headers=owner.headers), 422)
    # Untouched by the attempts.
    assert (await http.get(path, headers=owner.headers)).json()["status"] == "dispatching"


async def test_assign_is_for_admins_and_the_timeline_lists_every_step(
    http: httpx.AsyncClient, account: MakeAccount
) -> None:
    user = await account(Role.USER)
    agent = await account(Role.AGENT)
    other_agent = await account(Role.AGENT)
    admin = await account(Role.ADMIN)
    alert = await create(http, user)
    path = f"/alerts/{alert['id']}"

    refused = await http.post(
        f"{path}/assign", json={"agent_id": str(agent.id)}, headers=user.headers
    )
    assert_problem(refused, 403)
    not_an_agent = await http.post(
        f"{path}/assign", json={"agent_id": str(user.id)}, headers=admin.headers
    )
    assert assert_problem(not_an_agent, 404)["detail"] == "agent not found"
    # The user may not claim progress that only the agent reports.
    assert_problem(
        await http.put(f"{path}/status", json={"status": "en_route"}, headers=user.headers), 403
    )

    assigned = await http.post(
        f"{path}/assign", json={"agent_id": str(agent.id)}, headers=admin.headers
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "assigned"
    assert assigned.json()["assigned_agent_id"] == str(agent.id)
    # The assigned agent now sees it; another agent does not, nor may touch it.
    assert (await http.get(path, headers=agent.headers)).status_code == 200
    listed = await http.get("/alerts", headers=agent.headers)
    assert alert["id"] in {a["id"] for a in listed.json()["items"]}
    assert_problem(await http.get(path, headers=other_agent.headers), 404)

    for status in ("en_route", "on_scene", "resolved"):
        moved = await http.put(
            f"{path}/status",
            json={"status": status, "note": f"now {status}"},
            headers=agent.headers,
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["status"] == status

    late = await http.put(
        f"{path}/status", json={"status": "cancelled", "pin": "1234"}, headers=user.headers
    )
    problem = assert_problem(late, 409)
    assert "'resolved'" in problem["detail"]
    assert "'cancelled'" in problem["detail"]

    timeline = await http.get(f"{path}/timeline", headers=user.headers)
    assert timeline.status_code == 200, timeline.text
    items = timeline.json()["items"]
    steps = [(i["type"], i["data"].get("status")) for i in items if i["type"] != "offered"]
    assert steps == [
        ("created", "dispatching"),
        ("assigned", "assigned"),
        ("status_changed", "en_route"),
        ("status_changed", "on_scene"),
        ("status_changed", "resolved"),
    ]
    assert [i["at"] for i in items] == sorted(i["at"] for i in items)
    assert items[0]["actor_id"] == str(user.id)
    assert items[-1]["actor_id"] == str(agent.id)
    assert items[-1]["data"]["note"] == "now resolved"
    # Admins see every alert.
    assert (await http.get(path, headers=admin.headers)).json()["status"] == "resolved"


async def test_invalid_transition_is_409_with_from_and_to(
    http: httpx.AsyncClient, account: MakeAccount
) -> None:
    user = await account(Role.USER)
    admin = await account(Role.ADMIN)
    alert = await create(http, user)
    path = f"/alerts/{alert['id']}/status"

    skipped = await http.put(path, json={"status": "on_scene"}, headers=admin.headers)
    problem = assert_problem(skipped, 409)
    assert problem["detail"] == "cannot move alert from 'dispatching' to 'on_scene'"
    assert problem["type"].endswith("invalid-transition")

    cancelled = await http.put(path, json={"status": "cancelled"}, headers=user.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    again = await http.put(path, json={"status": "cancelled"}, headers=user.headers)
    assert "from 'cancelled' to 'cancelled'" in assert_problem(again, 409)["detail"]
    bad = await http.put(path, json={"status": "gone"}, headers=user.headers)
    assert_problem(bad, 422)
    extra = await http.put(path, json={"status": "cancelled", "x": 1}, headers=user.headers)
    assert_problem(extra, 422)


# --- dispatch -------------------------------------------------------------------------


def three_agents_layout(resolution: int) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """An alert point and agents at ~300 m, ~900 m and ~2 km from it, where the
    nearest is in a neighbouring cell and the second in the alert's own cell,
    so only a search that widens and merges finds the truly nearest."""
    rng = random.Random()
    for _ in range(2000):
        alert = random_point()
        home = cell_of(*alert, resolution)
        bearings = list(range(0, 360, 15))
        near = [
            p for b in bearings if cell_of(*(p := destination(*alert, 300, b)), resolution) != home
        ]
        middle = [
            p for b in bearings if cell_of(*(p := destination(*alert, 900, b)), resolution) == home
        ]
        if near and middle:
            far = destination(*alert, 2000, rng.choice(bearings))
            return alert, [near[0], middle[0], far]
    raise AssertionError("no layout found")


async def is_listed(
    entities: EntityClient, resolution: int, agent_id: UUID, at: tuple[float, float]
) -> bool:
    """Whether the region index dispatch ranks from lists ``agent_id`` at ``at``
    (presence reaches the region cells asynchronously)."""
    found = await entities.ask(EntityKind.REGION, cell_of(*at, resolution), QueryNearest(*at, k=50))
    assert isinstance(found, tuple)
    return agent_id in {c.agent_id for c in found}


async def make_available(
    gateway: Gateway, sockets: AsyncExitStack, agent: Account, at: tuple[float, float]
) -> Client:
    """The agent's app: a live socket, available, at ``at`` (only agents with a
    live socket are offered alerts)."""
    client, _ = await sockets.enter_async_context(session(gateway, agent))
    await client.send("agent.status", {"status": "available"}, id="on")
    await client.expect("ack", ref="on", status="available")
    await client.send("location", {"latitude": at[0], "longitude": at[1]})
    await client.ping()
    return client


async def test_the_nearest_of_three_gets_the_offer_and_a_decline_passes_it_on(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    account: MakeAccount,
    api_entities: EntityClient,
    api_settings: Settings,
) -> None:
    resolution = api_settings.actors.region_resolution
    where, spots = three_agents_layout(resolution)
    user = await account(Role.USER)
    agents = [await account(Role.AGENT) for _ in spots]
    for agent, spot in zip(agents, spots, strict=True):
        await make_available(gateway, sockets, agent, spot)

    async def all_listed() -> bool:
        for agent, spot in zip(agents, spots, strict=True):
            if not await is_listed(api_entities, resolution, agent.id, spot):
                return False
        return True

    assert await eventually(all_listed)
    distances = [haversine_m(*where, *spot) for spot in spots]
    assert distances == sorted(distances)

    alert = await create(http, user, alert_body(latitude=where[0], longitude=where[1]))

    async def offers() -> list[dict[str, Any]]:
        timeline = await http.get(f"/alerts/{alert['id']}/timeline", headers=user.headers)
        assert timeline.status_code == 200, timeline.text
        return [i for i in timeline.json()["items"] if i["type"] == "offered"]

    offered = await eventually(offers)
    assert [o["data"]["agent_id"] for o in offered] == [str(agents[0].id)]
    assert offered[0]["data"]["distance_m"] == pytest.approx(distances[0], abs=1.0)
    # The offered agent now sees the alert; the others do not.
    nearest, second, _ = agents
    assert (await http.get(f"/alerts/{alert['id']}", headers=nearest.headers)).status_code == 200
    listed = await http.get("/alerts", headers=nearest.headers)
    assert [a["id"] for a in listed.json()["items"]] == [alert["id"]]
    assert_problem(await http.get(f"/alerts/{alert['id']}", headers=second.headers), 404)

    # A decline passes it to the next nearest, and that one's to the last.
    for decliner, successor in ((nearest, second), (second, agents[2])):
        message = DeclineOffer(decliner.id, reason="too far")
        await api_entities.ask(EntityKind.ALERT, alert["id"], message)

        async def passed_on(successor: Account = successor) -> bool:
            return str(successor.id) in [o["data"]["agent_id"] for o in await offers()]

        assert await eventually(passed_on)
    timeline = await http.get(f"/alerts/{alert['id']}/timeline", headers=user.headers)
    steps = [(i["type"], i["data"].get("agent_id")) for i in timeline.json()["items"]]
    # Each app's socket had its offer written (the gateway's receipt): left out here.
    steps = [s for s in steps if s[0] != "offer_received"]
    ids = [str(a.id) for a in agents]
    assert steps[1:] == [
        ("offered", ids[0]),
        ("declined", ids[0]),
        ("offered", ids[1]),
        ("declined", ids[1]),
        ("offered", ids[2]),
    ]


async def test_with_no_answer_the_escalation_steps_fire_at_their_configured_times(
    gateway: Gateway,
    sockets: AsyncExitStack,
    http: httpx.AsyncClient,
    account: MakeAccount,
    api_entities: EntityClient,
    api_settings: Settings,
    api_pool: asyncpg.Pool,
) -> None:
    # FAST_ESCALATION: "security" widens to 6 rings at 1.5 s and escalates at 3 s.
    resolution = api_settings.actors.region_resolution
    centre = cell_of(*random_point(), resolution)
    where = cell_center(centre)
    # Beyond the first search (2 rings, widened at once up to search_max_rings 4).
    far_agent = cell_center(ring(centre, 6)[0])
    user, agent = await account(Role.USER), await account(Role.AGENT)
    await make_available(gateway, sockets, agent, far_agent)

    async def listed() -> bool:
        return await is_listed(api_entities, resolution, agent.id, far_agent)

    assert await eventually(listed)
    body = alert_body(latitude=where[0], longitude=where[1], alert_type="security")
    alert = await create(http, user, body)

    async def escalated() -> list[dict[str, Any]] | None:
        response = await http.get(f"/alerts/{alert['id']}/timeline", headers=user.headers)
        items: list[dict[str, Any]] = response.json()["items"]
        return items if items[-1]["type"] == "escalated" else None

    timeline = await eventually(escalated, timeout_s=20)
    # offer_received: the gateway wrote the offer to the agent's socket.
    assert [i["type"] for i in timeline] == [
        "created",
        "escalation_step",
        "offered",
        "offer_received",
        "escalated",
    ]
    created_at = datetime.fromisoformat(timeline[0]["at"])

    def after(item: dict[str, Any]) -> float:
        return (datetime.fromisoformat(item["at"]) - created_at).total_seconds()

    step, offered, final = timeline[1], timeline[2], timeline[4]
    assert step["data"] == {"step": 1, "rings": 6, "offer_to": None, "escalate": False}
    assert 1.5 <= after(step) < 3.0
    # Only the widened search reached the agent six rings out.
    assert offered["data"]["agent_id"] == str(agent.id)
    assert after(offered) >= after(step)
    assert final["data"]["status"] == "escalated"
    assert 3.0 <= after(final) < 5.0
    got = await http.get(f"/alerts/{alert['id']}", headers=user.headers)
    assert got.json()["status"] == "escalated"
    # Each step is an event on its topic, through the outbox.
    events = await api_pool.fetch(
        "SELECT topic, type FROM outbox WHERE key = $1 ORDER BY id", alert["id"]
    )
    assert [(e["topic"], e["type"]) for e in events] == [
        ("panic-alerts", "alert.created"),
        ("alert-responses", "alert.escalation_step"),
        ("alert-responses", "alert.offered"),
        ("alert-responses", "alert.offer_received"),
        ("alert-status-updates", "alert.status_changed"),
    ]


# --- floods (issue 16): rate limits, one open alert per user ------------------------------


async def with_pins(
    pool: asyncpg.Pool, settings: Settings, user: Account, *, cancel: str, duress: str | None
) -> None:
    """Give ``user`` PINs directly in the database (how they are set is not under test)."""
    hasher = PasswordHasher(settings.auth)
    status = await pool.execute(
        "UPDATE users SET cancel_pin_hash = $2, duress_pin_hash = $3 WHERE id = $1",
        user.id,
        hasher.hash(cancel),
        None if duress is None else hasher.hash(duress),
    )
    assert status == "UPDATE 1"


async def test_finding_alerts_has_no_rate_limit(
    http: httpx.AsyncClient,
    account: MakeAccount,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    # The review guessed a cancel PIN 131 times in 36.6 s without a 429.
    user = await account(Role.USER)
    await with_pins(api_pool, api_settings, user, cancel="8514", duress=None)
    alert = await create(http, user)
    path = f"/alerts/{alert['id']}/status"
    rule = api_settings.rate_limit.alerts_status_per_principal
    answers = []
    for guess in range(rule.limit + 1):
        wrong = {"status": "cancelled", "pin": f"{guess:04d}9"}
        answers.append(await http.put(path, json=wrong, headers=user.headers))

    assert [a.status_code for a in answers[:-1]] == [403] * rule.limit
    problem = assert_problem(answers[-1], 429)
    assert "Retry-After" in problem["detail"]
    assert 1 <= int(answers[-1].headers["retry-after"]) <= rule.window_s
    # Refused before any PIN was checked: even the right one waits for the window.
    right = await http.put(path, json={"status": "cancelled", "pin": "8514"}, headers=user.headers)
    assert_problem(right, 429)
    got = await http.get(f"/alerts/{alert['id']}", headers=user.headers)
    assert got.json()["status"] == "dispatching"


async def test_finding_alerts_reads_have_no_rate_limit(
    account: MakeAccount, api_settings: Settings, api_entities: EntityClient
) -> None:
    user = await account(Role.USER)
    rules = {"alerts_read_per_principal": RateRule(limit=3, window_s=60)}
    async with (
        gateway_with(api_settings, api_entities, **rules) as gw,
        httpx.AsyncClient(base_url=gw.base_url, timeout=20) as http,
    ):
        alert = await create(http, user)
        one = f"/alerts/{alert['id']}"
        codes = [(await http.get(one, headers=user.headers)).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        # Each read endpoint has its own budget; another caller is not affected.
        assert (await http.get(f"{one}/timeline", headers=user.headers)).status_code == 200
        assert (await http.get("/alerts", headers=user.headers)).status_code == 200
        other = await account(Role.ADMIN)
        assert (await http.get(one, headers=other.headers)).status_code == 200


async def test_a_second_press_while_an_alert_is_open_returns_the_open_alert(
    http: httpx.AsyncClient, account: MakeAccount, api_pool: asyncpg.Pool
) -> None:
    user = await account(Role.USER)
    first = await create(http, user, alert_body(alert_type="medical"))

    again = await http.post("/alerts", json=alert_body(alert_type="fire"), headers=user.headers)

    assert again.status_code == 201, again.text
    assert again.headers[ALREADY_OPEN_HEADER.lower()] == "true"
    assert again.headers["location"] == f"/alerts/{first['id']}"
    shown = again.json()
    assert shown["id"] == first["id"]
    assert (shown["alert_type"], shown["status"]) == ("medical", "dispatching")
    count = await api_pool.fetchval("SELECT count(*) FROM alerts WHERE user_id = $1", user.id)
    assert count == 1
    # Once it is closed, the next press raises a new alert.
    cancelled = await http.put(
        f"/alerts/{first['id']}/status", json={"status": "cancelled"}, headers=user.headers
    )
    assert cancelled.status_code == 200, cancelled.text
    fresh = await http.post("/alerts", json=alert_body(), headers=user.headers)
    assert fresh.status_code == 201, fresh.text
    assert ALREADY_OPEN_HEADER.lower() not in fresh.headers
    assert fresh.json()["id"] != first["id"]


async def test_presses_at_once_raise_one_alert(
    http: httpx.AsyncClient, account: MakeAccount, api_pool: asyncpg.Pool
) -> None:
    # A double (or quintuple) tap: the presses arrive together.
    user = await account(Role.USER)
    presses = await asyncio.gather(
        *(http.post("/alerts", json=alert_body(), headers=user.headers) for _ in range(5))
    )
    assert [p.status_code for p in presses] == [201] * 5
    assert len({p.json()["id"] for p in presses}) == 1
    assert sum(ALREADY_OPEN_HEADER.lower() in p.headers for p in presses) == 4
    count = await api_pool.fetchval("SELECT count(*) FROM alerts WHERE user_id = $1", user.id)
    assert count == 1


async def test_presses_at_once_on_two_gateway_processes_raise_one_alert(
    start_gateway: Callable[[], Awaitable[Gateway]],
    account: MakeAccount,
    api_pool: asyncpg.Pool,
) -> None:
    # serve's gateway processes (or replicas) each have their own in-process
    # locks: a double tap whose presses were accepted by two of them must still
    # find one alert (the lock per user in Redis).
    first, second = await start_gateway(), await start_gateway()
    user = await account(Role.USER)
    async with (
        httpx.AsyncClient(base_url=first.base_url, timeout=30) as one,
        httpx.AsyncClient(base_url=second.base_url, timeout=30) as other,
    ):
        presses = await asyncio.gather(
            *(
                client.post("/alerts", json=alert_body(), headers=user.headers)
                for client in (one, other, one, other, one, other)
            )
        )
    assert [p.status_code for p in presses] == [201] * 6
    assert len({p.json()["id"] for p in presses}) == 1
    assert sum(ALREADY_OPEN_HEADER.lower() in p.headers for p in presses) == 5
    count = await api_pool.fetchval("SELECT count(*) FROM alerts WHERE user_id = $1", user.id)
    assert count == 1


async def test_a_press_is_never_refused_while_an_alert_is_open(
    account: MakeAccount, api_settings: Settings, api_entities: EntityClient
) -> None:
    user = await account(Role.USER)
    rules = {"alerts_create_per_principal": RateRule(limit=2, window_s=60)}
    async with (
        gateway_with(api_settings, api_entities, **rules) as gw,
        httpx.AsyncClient(base_url=gw.base_url, timeout=20) as http,
    ):
        await create_closed(http, user)
        key = f"press-{uuid.uuid4().hex}"
        body = alert_body()
        open_one = await create(http, user, body, **{"Idempotency-Key": key})  # limit reached
        for _ in range(5):
            press = await http.post("/alerts", json=alert_body(), headers=user.headers)
            assert press.status_code == 201, press.text
            assert press.json()["id"] == open_one["id"]
        # The app retrying its own press (same key) is a replay, never refused either.
        retry = await http.post(
            "/alerts", json=body, headers={**user.headers, "Idempotency-Key": key}
        )
        assert retry.status_code == 201, retry.text
        assert retry.headers["idempotent-replayed"] == "true"
        assert retry.json()["id"] == open_one["id"]
        cancelled = await http.put(
            f"/alerts/{open_one['id']}/status", json={"status": "cancelled"}, headers=user.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        # Nothing open and over the limit: only now may a create be refused.
        refused = await http.post("/alerts", json=alert_body(), headers=user.headers)
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60


async def test_an_alert_cancelled_under_duress_is_not_returned_to_a_second_press(
    http: httpx.AsyncClient,
    account: MakeAccount,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    # Answering the press with it would show whoever holds the phone that the
    # "cancel" did not end the alert.
    user = await account(Role.USER)
    await with_pins(api_pool, api_settings, user, cancel="8514", duress="7392")
    first = await create(http, user)
    duress = await http.put(
        f"/alerts/{first['id']}/status",
        json={"status": "cancelled", "pin": "7392"},
        headers=user.headers,
    )
    assert duress.status_code == 200, duress.text
    assert duress.json()["status"] == "cancelled"

    press = await http.post("/alerts", json=alert_body(), headers=user.headers)

    assert press.status_code == 201, press.text
    assert ALREADY_OPEN_HEADER.lower() not in press.headers
    assert press.json()["id"] != first["id"]
    assert press.json()["status"] == "dispatching"
