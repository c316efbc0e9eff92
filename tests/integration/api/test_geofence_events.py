"""``GET /geofencing/events`` over real HTTP against the live gateway and FerretDB.

The events are stored directly with the real ``EventStore`` in the gateway's
MongoDB database, exactly as the outbox relay stores them
(``CloudEvent.to_document``); every test uses fresh subject and zone ids, so
the events of other tests and runs never match its filters. The module
deletes what it inserted when it ends.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from config.settings import Settings
from gateway.auth.principal import Role
from persistence.drivers.mongo import EventStore
from persistence.outbox.events import GEOFENCE_EVENTS, CloudEvent, normalize_time
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway, serving
from tests.local import free_port

pytestmark = pytest.mark.integration

MakeAccount = Callable[[Role], Awaitable[Account]]
ITEM_KEYS = {
    "id",
    "zone_id",
    "subject_id",
    "event",
    "at",
    "latitude",
    "longitude",
    "accuracy_m",
    "zone_kind",
    "subject_role",
}


class StoredEvents:
    """Inserts geofence events as the relay does, and remembers them for clean-up."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.ids: list[str] = []

    async def add(self, *events: CloudEvent) -> list[CloudEvent]:
        await self.store.insert_events([("geofence-events", e) for e in events])
        self.ids.extend(e.id for e in events)
        return list(events)


def fence_event(
    subject: Account | UUID,
    zone_id: UUID,
    at: datetime,
    *,
    event: str = "enter",
    event_id: UUID | None = None,
) -> CloudEvent:
    subject_id, role = (
        (subject.id, subject.role.value) if isinstance(subject, Account) else (subject, "user")
    )
    return CloudEvent(
        id=str(event_id or uuid.uuid4()),
        source="/tests/geofence-events",
        type=f"geofence.{event}",
        subject=str(subject_id),
        partitionkey=str(subject_id),
        time=at,
        data={
            "zone_id": str(zone_id),
            "zone_kind": "danger",
            "subject_id": str(subject_id),
            "subject_role": role,
            "event": event,
            "at": at.isoformat(),
            "latitude": 52.52,
            "longitude": 13.405,
            "accuracy_m": 8.0,
        },
    )


@pytest.fixture(scope="module")
async def stored(api_settings: Settings) -> AsyncIterator[StoredEvents]:
    store = EventStore(api_settings.mongo)
    events = StoredEvents(store)
    try:
        yield events
    finally:
        if events.ids:
            await store._db[GEOFENCE_EVENTS].delete_many({"_id": {"$in": events.ids}})
        await store.close()


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
def account(api_pool: asyncpg.Pool, api_settings: Settings) -> MakeAccount:
    async def make(role: Role) -> Account:
        return await make_account(api_pool, api_settings, role)

    return make


@pytest.fixture(scope="module")
async def user(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    """One user for the tests that only need a caller."""
    return await make_account(api_pool, api_settings, Role.USER)


def base_time() -> datetime:
    """A millisecond time (as BSON stores it) in the recent past."""
    return normalize_time(datetime.now(UTC) - timedelta(hours=1))


def ids_of(events: list[CloudEvent]) -> list[str]:
    return [e.id for e in sorted(events, key=lambda e: (e.time, e.id))]


async def listed(
    http: httpx.AsyncClient, who: Account, **params: Any
) -> tuple[list[dict[str, Any]], str | None]:
    response = await http.get("/geofencing/events", params=params, headers=who.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert set(page) == {"items", "next_cursor"}
    return page["items"], page["next_cursor"]


async def listed_ids(http: httpx.AsyncClient, who: Account, **params: Any) -> list[str]:
    items, _ = await listed(http, who, **params)
    return [item["id"] for item in items]


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# --- visibility ---------------------------------------------------------------------


async def test_users_and_agents_see_their_own_events_and_admins_see_all(
    http: httpx.AsyncClient, account: MakeAccount, stored: StoredEvents
) -> None:
    alice, bob = await account(Role.USER), await account(Role.USER)
    agent, admin = await account(Role.AGENT), await account(Role.ADMIN)
    zone, t0 = uuid.uuid4(), base_time()
    alices = await stored.add(
        fence_event(alice, zone, t0),
        fence_event(alice, zone, t0 + timedelta(minutes=5), event="exit"),
    )
    bobs = await stored.add(fence_event(bob, zone, t0 + timedelta(seconds=1)))
    agents = await stored.add(fence_event(agent, zone, t0 + timedelta(seconds=2), event="dwell"))

    assert await listed_ids(http, alice) == ids_of(alices)
    assert await listed_ids(http, alice, zone_id=str(zone)) == ids_of(alices)
    assert await listed_ids(http, alice, subject_id=str(alice.id)) == ids_of(alices)
    assert await listed_ids(http, agent) == ids_of(agents)
    assert await listed_ids(http, admin, zone_id=str(zone)) == ids_of(alices + bobs + agents)
    assert await listed_ids(http, admin, subject_id=str(bob.id)) == ids_of(bobs)
    assert await listed_ids(http, admin, subject_id=str(uuid.uuid4())) == []

    # Someone else's subject id is 404 for users and agents, existing or not.
    for caller, other in ((alice, bob.id), (agent, alice.id), (bob, uuid.uuid4())):
        response = await http.get(
            "/geofencing/events", params={"subject_id": str(other)}, headers=caller.headers
        )
        assert_problem(response, 404)

    items, next_cursor = await listed(http, agent)
    assert next_cursor is None
    [item] = items
    assert set(item) == ITEM_KEYS
    expected = agents[0]
    assert item == {
        "id": expected.id,
        "zone_id": str(zone),
        "subject_id": str(agent.id),
        "event": "dwell",
        "at": item["at"],
        "latitude": 52.52,
        "longitude": 13.405,
        "accuracy_m": 8.0,
        "zone_kind": "danger",
        "subject_role": "agent",
    }
    assert datetime.fromisoformat(item["at"]) == expected.time


# --- filters ------------------------------------------------------------------------


async def test_filters_by_zone_and_by_time_since_inclusive_until_exclusive(
    http: httpx.AsyncClient, account: MakeAccount, stored: StoredEvents
) -> None:
    user = await account(Role.USER)
    park, mall, t0 = uuid.uuid4(), uuid.uuid4(), base_time()
    t1, t2 = t0 + timedelta(seconds=1), t0 + timedelta(seconds=2)
    e0, e1, e2 = await stored.add(
        fence_event(user, park, t0),
        fence_event(user, park, t1, event="exit"),
        fence_event(user, park, t2),
    )
    [m1] = await stored.add(fence_event(user, mall, t1))

    async def ids(**params: Any) -> list[str]:
        return await listed_ids(http, user, **params)

    assert await ids(zone_id=str(park)) == [e0.id, e1.id, e2.id]
    assert await ids(zone_id=str(mall)) == [m1.id]
    assert await ids(zone_id=str(uuid.uuid4())) == []
    assert await ids(since=t1.isoformat()) == ids_of([e1, m1, e2])
    assert await ids(until=t1.isoformat()) == [e0.id]
    assert await ids(since=t1.isoformat(), until=t2.isoformat()) == ids_of([e1, m1])
    assert await ids(since=t1.isoformat(), until=t1.isoformat()) == []
    assert await ids(zone_id=str(park), since=t1.isoformat(), until=t2.isoformat()) == [e1.id]
    # Bounds finer than BSON's milliseconds are compared exactly, not truncated.
    half_ms = timedelta(microseconds=500)
    assert await ids(since=(t0 + half_ms).isoformat()) == ids_of([e1, m1, e2])
    assert await ids(until=(t0 + half_ms).isoformat()) == [e0.id]
    # Any time zone names the same instant.
    plus_two = timezone(timedelta(hours=2))
    assert await ids(since=t2.astimezone(plus_two).isoformat()) == [e2.id]

    response = await http.get(
        "/geofencing/events",
        params={"since": t2.isoformat(), "until": t1.isoformat()},
        headers=user.headers,
    )
    assert_problem(response, 422)


# --- pagination ---------------------------------------------------------------------


async def test_pagination_walks_every_event_once_oldest_first(
    http: httpx.AsyncClient, account: MakeAccount, stored: StoredEvents
) -> None:
    user = await account(Role.USER)
    zone, t0 = uuid.uuid4(), base_time()
    # Three events per millisecond: ties are ordered by id, and a page may end inside one.
    events = await stored.add(
        *(fence_event(user, zone, t0 + timedelta(milliseconds=i // 3)) for i in range(45))
    )

    seen: list[dict[str, Any]] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 20}
        if cursor is not None:
            params["cursor"] = cursor
        items, cursor = await listed(http, user, **params)
        sizes.append(len(items))
        seen.extend(items)
        if cursor is None:
            break

    assert sizes == [20, 20, 5]
    assert [item["id"] for item in seen] == ids_of(events)  # no duplicate, no gap, in order
    # A page size that divides the total exactly ends without an empty page.
    first, cursor = await listed(http, user, limit=15)
    second, cursor = await listed(http, user, limit=15, cursor=cursor)
    third, cursor = await listed(http, user, limit=15, cursor=cursor)
    assert cursor is None
    assert [item["id"] for item in first + second + third] == ids_of(events)
    # The default page is 20.
    assert len((await listed(http, user))[0]) == 20


async def test_a_tampered_or_foreign_cursor_is_422(
    http: httpx.AsyncClient, account: MakeAccount, stored: StoredEvents
) -> None:
    user = await account(Role.USER)
    zone, t0 = uuid.uuid4(), base_time()
    await stored.add(*(fence_event(user, zone, t0 + timedelta(seconds=i)) for i in range(2)))
    _, cursor = await listed(http, user, limit=1)
    assert cursor
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    # The shape of an /alerts cursor: base64url of [time, id].
    alerts_like = json.dumps([t0.isoformat(), str(uuid.uuid4())], separators=(",", ":"))
    foreign = base64.urlsafe_b64encode(alerts_like.encode()).decode().rstrip("=")
    for bad in (tampered, foreign):
        response = await http.get(
            "/geofencing/events", params={"cursor": bad}, headers=user.headers
        )
        assert_problem(response, 422)


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"zone_id": "not-a-uuid"},
        {"subject_id": "12345"},
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"since": "yesterday"},
        {"since": "2026-01-01T00:00:00"},  # no time zone
        {"until": "2026-01-01T00:00:00"},
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4IiwieSJd"},  # base64url of ["x","y"]
        {"cursor": "A" * 500},
    ],
)
async def test_bad_parameters_are_422(
    http: httpx.AsyncClient, user: Account, params: dict[str, str]
) -> None:
    response = await http.get("/geofencing/events", params=params, headers=user.headers)
    body = assert_problem(response, 422)
    assert body["errors"]


async def test_without_a_token_is_401(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/geofencing/events"), 401)
    response = await http.get("/geofencing/events", headers={"Authorization": "Bearer not-a-token"})
    assert_problem(response, 401)


async def test_with_the_event_store_down_it_is_503(
    api_settings: Settings, api_entities: Any, user: Account
) -> None:
    # A gateway whose MongoDB is a closed port (nothing listens on a fresh free port).
    mongo = api_settings.mongo.model_copy(
        update={"port": free_port(), "server_selection_timeout_ms": 100}
    )
    settings = api_settings.model_copy(update={"mongo": mongo})
    async with (
        serving(settings, api_entities) as down,
        httpx.AsyncClient(base_url=down.base_url, timeout=20) as client,
    ):
        response = await client.get("/geofencing/events", headers=user.headers)
    assert_problem(response, 503)
    assert response.headers["retry-after"]


# --- floods (issue 16) -----------------------------------------------------------------------


async def test_finding_geofence_event_reads_have_no_rate_limit(
    http: httpx.AsyncClient, account: MakeAccount, api_settings: Settings
) -> None:
    reader = await account(Role.USER)
    rule = api_settings.rate_limit.geofence_read_per_principal
    codes = [
        (await http.get("/geofencing/events", headers=reader.headers)).status_code
        for _ in range(rule.limit + 1)
    ]
    assert codes == [200] * rule.limit + [429]
    refused = await http.get("/geofencing/events", headers=reader.headers)
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= rule.window_s
    other = await account(Role.USER)
    assert (await http.get("/geofencing/events", headers=other.headers)).status_code == 200
