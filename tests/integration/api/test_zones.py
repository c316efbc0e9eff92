"""``/geofencing/zones`` over real HTTP against the live gateway, real shards and database.

Every test draws its zones at random places, so zones of one test never
share region cells with another's.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from actors.effects import EntityKind
from actors.region import QueryZones, RegionState
from cluster.client import EntityClient
from config.settings import Settings
from gateway.auth.principal import Role
from geo.cells import EARTH_RADIUS_M
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway

pytestmark = pytest.mark.integration

T = TypeVar("T")
ZONES = "/geofencing/zones"
M_LAT = 180 / math.pi / EARTH_RADIUS_M  # degrees per metre north


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture(scope="module")
async def admin(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.ADMIN)


@pytest.fixture(scope="module")
async def user(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.USER)


@pytest.fixture(scope="module")
async def agent(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.AGENT)


def somewhere() -> tuple[float, float]:
    """A random (lat, lon) away from the poles and the antimeridian."""
    return random.uniform(-60, 60), random.uniform(-170, 170)


def square(half_m: float = 300.0, at: tuple[float, float] | None = None) -> dict[str, Any]:
    lat, lon = at or somewhere()
    dlat, dlon = half_m * M_LAT, half_m * M_LAT / math.cos(math.radians(lat))
    ring = [
        [lon - dlon, lat - dlat],
        [lon + dlon, lat - dlat],
        [lon + dlon, lat + dlat],
        [lon - dlon, lat + dlat],
        [lon - dlon, lat - dlat],
    ]
    return {"type": "Polygon", "coordinates": [ring]}


def zone_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Harbour",
        "kind": "danger",
        "geometry": square(),
        "rules": {"notify_admins": True, "dwell_s": 300},
    }
    body.update(overrides)
    return body


async def create(http: httpx.AsyncClient, admin: Account, **overrides: Any) -> dict[str, Any]:
    response = await http.post(ZONES, json=zone_body(**overrides), headers=admin.headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def eventually(probe: Callable[[], Awaitable[T]], timeout_s: float = 15.0) -> T:
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            value = await probe()
            if value:
                return value
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


# --- CRUD ---------------------------------------------------------------------------


async def test_create_read_replace_delete(
    http: httpx.AsyncClient, admin: Account, user: Account, agent: Account
) -> None:
    body = zone_body()
    response = await http.post(ZONES, json=body, headers=admin.headers)
    assert response.status_code == 201, response.text
    zone = response.json()
    assert response.headers["location"] == f"{ZONES}/{zone['id']}"
    assert zone["name"] == "Harbour"
    assert zone["kind"] == "danger"
    assert zone["geometry"] == body["geometry"]
    assert zone["radius_m"] is None
    assert zone["active"] is True
    assert zone["rules"] == {
        "notify_subject": False,
        "notify_admins": True,
        "agent_ids": None,
        "end_check_in": False,
        "dwell_s": 300,
    }
    for reader in (user, agent, admin):  # any role reads zones
        got = await http.get(f"{ZONES}/{zone['id']}", headers=reader.headers)
        assert got.status_code == 200, got.text
        assert got.json() == zone

    point = {"type": "Point", "coordinates": [12.5, 41.9]}
    replaced = await http.put(
        f"{ZONES}/{zone['id']}",
        json={"name": "Home", "kind": "safe", "geometry": point, "radius_m": 150, "active": False},
        headers=admin.headers,
    )
    assert replaced.status_code == 200, replaced.text
    after = replaced.json()
    assert (after["id"], after["name"], after["kind"], after["active"]) == (
        zone["id"],
        "Home",
        "safe",
        False,
    )
    assert after["geometry"] == point  # a Point zone reads back as its Point
    assert after["radius_m"] == 150
    assert after["rules"]["dwell_s"] is None  # PUT replaces: omitted rules are the defaults
    assert after["revision"] > zone["revision"]
    assert after["created_at"] == zone["created_at"]

    deleted = await http.delete(f"{ZONES}/{zone['id']}", headers=admin.headers)
    assert deleted.status_code == 204
    assert deleted.content == b""
    for call in (
        http.get(f"{ZONES}/{zone['id']}", headers=user.headers),
        http.put(f"{ZONES}/{zone['id']}", json=zone_body(), headers=admin.headers),
        http.delete(f"{ZONES}/{zone['id']}", headers=admin.headers),
    ):
        assert_problem(await call, 404)


async def test_service_area_needs_its_agents(
    http: httpx.AsyncClient, admin: Account, agent: Account
) -> None:
    zone = await create(
        http, admin, kind="service_area", rules={"agent_ids": [str(agent.id)]}, name="Area"
    )
    assert zone["rules"]["agent_ids"] == [str(agent.id)]
    for rules in ({}, {"agent_ids": []}):
        response = await http.post(
            ZONES, json=zone_body(kind="service_area", rules=rules), headers=admin.headers
        )
        problem = assert_problem(response, 422)
        assert any(e["loc"][:2] == ["body", "rules"] for e in problem["errors"])


async def test_unknown_ids_and_bad_uuids(http: httpx.AsyncClient, admin: Account) -> None:
    missing = f"{ZONES}/{uuid4()}"
    assert_problem(await http.get(missing, headers=admin.headers), 404)
    assert_problem(await http.put(missing, json=zone_body(), headers=admin.headers), 404)
    assert_problem(await http.delete(missing, headers=admin.headers), 404)
    for call in (
        http.get(f"{ZONES}/not-a-uuid", headers=admin.headers),
        http.put(f"{ZONES}/not-a-uuid", json=zone_body(), headers=admin.headers),
        http.delete(f"{ZONES}/not-a-uuid", headers=admin.headers),
    ):
        problem = assert_problem(await call, 422)
        assert problem["errors"][0]["loc"] == ["path", "zone_id"]


async def test_writes_are_for_admins_only(
    http: httpx.AsyncClient, admin: Account, user: Account, agent: Account
) -> None:
    zone = await create(http, admin)
    path = f"{ZONES}/{zone['id']}"
    for who in (user, agent):
        assert_problem(await http.post(ZONES, json=zone_body(), headers=who.headers), 403)
        assert_problem(await http.put(path, json=zone_body(), headers=who.headers), 403)
        assert_problem(await http.delete(path, headers=who.headers), 403)
    assert_problem(await http.get(ZONES), 401)
    assert_problem(await http.post(ZONES, json=zone_body()), 401)
    assert (await http.get(path, headers=admin.headers)).json() == zone  # untouched


async def test_a_huge_body_is_413(http: httpx.AsyncClient, admin: Account) -> None:
    huge = zone_body(name="x" * (2 * 1024 * 1024))
    assert_problem(await http.post(ZONES, json=huge, headers=admin.headers), 413)


# --- validation ---------------------------------------------------------------------


def _ring(points: list[tuple[float, float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in points]]}


def _many_vertices(n: int) -> dict[str, Any]:
    lat, lon = 10.0, 10.0
    ring = [
        [lon + 0.05 * math.cos(2 * math.pi * k / n), lat + 0.05 * math.sin(2 * math.pi * k / n)]
        for k in range(n)
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


#: Geometries geo.fences refuses, and a piece of the reason it gives.
BAD_GEOMETRIES = {
    "open-ring": (_ring([(0, 0), (0, 0.01), (0.01, 0.01), (0.01, 0)]), "closed"),
    "bow-tie": (
        _ring([(0, 0), (0.01, 0.01), (0.01, 0), (0, 0.01), (0, 0)]),
        "Self-intersection",
    ),
    "too-many-vertices": (_many_vertices(10_001), "more than 10000 vertices"),
    "too-large": (_ring([(0, 0), (2, 0), (2, 2), (0, 2), (0, 0)]), "larger than 10000 km²"),
    "antimeridian": (
        _ring([(179.9, 0), (-179.9, 0), (-179.9, 0.1), (179.9, 0.1), (179.9, 0)]),
        "antimeridian",
    ),
    "polar": (_ring([(0, 86), (0.1, 86), (0.1, 86.1), (0, 86.1), (0, 86)]), "pole"),
    "point-without-radius": ({"type": "Point", "coordinates": [10, 10]}, "radius_m"),
    "line": (
        {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
        "Polygon, MultiPolygon or Point",
    ),
    "not-an-object": ("POLYGON((0 0, 1 1, 1 0, 0 0))", "Polygon, MultiPolygon or Point"),
    "out-of-range": (_ring([(0, 95), (0.1, 95), (0.1, 95.1), (0, 95)]), "out of range"),
}


@pytest.mark.parametrize(("geometry", "reason"), BAD_GEOMETRIES.values(), ids=BAD_GEOMETRIES)
async def test_a_bad_geometry_is_422_with_geos_reason(
    http: httpx.AsyncClient, admin: Account, geometry: Any, reason: str
) -> None:
    response = await http.post(ZONES, json=zone_body(geometry=geometry), headers=admin.headers)
    problem = assert_problem(response, 422)
    (error,) = problem["errors"]
    assert error["loc"] == ["body", "geometry"]
    assert reason in error["msg"]


async def test_a_radius_too_large_is_422(http: httpx.AsyncClient, admin: Account) -> None:
    point = {"type": "Point", "coordinates": [10, 10]}
    for radius in (50_001, 0, -5):
        response = await http.post(
            ZONES, json=zone_body(geometry=point, radius_m=radius), headers=admin.headers
        )
        (error,) = assert_problem(response, 422)["errors"]
        assert error["loc"] == ["body", "geometry"]
        assert "radius_m in (0, 50000]" in error["msg"]


#: Bodies wrong in shape or type: 422 from the schema, pointing at the field.
BAD_BODIES = {
    "string-coordinates": (
        {"geometry": {"type": "Point", "coordinates": ["10", "10"]}, "radius_m": 5},
        ["body", "geometry"],
    ),
    "altitude": (
        {"geometry": {"type": "Point", "coordinates": [10, 10, 3]}, "radius_m": 5},
        ["body", "geometry"],
    ),
    "name-not-a-string": ({"name": 42}, ["body", "name"]),
    "empty-name": ({"name": "  "}, ["body", "name"]),
    "unknown-kind": ({"kind": "pub"}, ["body", "kind"]),
    "active-not-a-bool": ({"active": "yes"}, ["body", "active"]),
    "unknown-member": ({"colour": "red"}, ["body", "colour"]),
    "unknown-rule": ({"rules": {"notify_police": True}}, ["body", "rules", "notify_police"]),
    "rules-not-an-object": ({"rules": [1]}, ["body", "rules"]),
    "dwell-too-long": ({"rules": {"dwell_s": 86_401}}, ["body", "rules", "dwell_s"]),
    "dwell-zero": ({"rules": {"dwell_s": 0}}, ["body", "rules", "dwell_s"]),
    "dwell-a-float": ({"rules": {"dwell_s": 1.5}}, ["body", "rules", "dwell_s"]),
    "bad-agent-id": (
        {"kind": "service_area", "rules": {"agent_ids": ["nope"]}},
        ["body", "rules", "agent_ids", 0],
    ),
    "radius-on-a-polygon": ({"radius_m": 10}, ["body", "radius_m"]),
    "rule-of-another-kind": ({"rules": {"end_check_in": True}}, ["body", "rules", "end_check_in"]),
    "agents-outside-a-service-area": (
        {"rules": {"agent_ids": [str(UUID(int=1))]}},
        ["body", "rules", "agent_ids"],
    ),
}


@pytest.mark.parametrize(("overrides", "loc"), BAD_BODIES.values(), ids=BAD_BODIES)
async def test_a_malformed_body_is_422(
    http: httpx.AsyncClient, admin: Account, overrides: dict[str, Any], loc: list[Any]
) -> None:
    response = await http.post(ZONES, json=zone_body(**overrides), headers=admin.headers)
    problem = assert_problem(response, 422)
    assert any(e["loc"][: len(loc)] == loc for e in problem["errors"]), problem["errors"]


async def test_a_body_that_is_not_json_is_422(http: httpx.AsyncClient, admin: Account) -> None:
    response = await http.post(
        ZONES, content=b"{not json", headers={**admin.headers, "content-type": "application/json"}
    )
    assert_problem(response, 422)


# --- listing ------------------------------------------------------------------------


async def test_listing_pages_newest_first_with_filters(
    http: httpx.AsyncClient, admin: Account, user: Account
) -> None:
    mine = [
        (await create(http, admin, kind="safe", rules={}, name=f"page-{n}", active=n != 2))["id"]
        for n in range(5)
    ]
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "kind": "safe"}
        if cursor:
            params["cursor"] = cursor
        response = await http.get(ZONES, params=params, headers=user.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    ids = [z["id"] for z in seen]
    assert len(ids) == len(set(ids))
    assert all(z["kind"] == "safe" for z in seen)
    assert [i for i in ids if i in mine] == mine[::-1]  # newest first
    keys = [(z["created_at"], z["id"]) for z in seen]
    assert keys == sorted(keys, reverse=True)

    inactive = await http.get(ZONES, params={"active": "false", "limit": 100}, headers=user.headers)
    assert mine[2] in {z["id"] for z in inactive.json()["items"]}
    assert all(not z["active"] for z in inactive.json()["items"])

    for bad in ({"cursor": "bm90LWEtY3Vyc29y"}, {"limit": 0}, {"limit": 101}, {"kind": "pub"}):
        assert_problem(await http.get(ZONES, params=bad, headers=user.headers), 422)


# --- regions ------------------------------------------------------------------------


async def test_regions_of_the_zone_cells_learn_of_it_and_of_its_deletion(
    http: httpx.AsyncClient,
    admin: Account,
    api_pool: asyncpg.Pool,
    api_entities: EntityClient,
) -> None:
    zone = await create(http, admin, geometry=square(400))
    zone_id = UUID(zone["id"])
    cells: list[str] = await api_pool.fetchval(
        "SELECT cells FROM geofence_zones WHERE id = $1", zone_id
    )
    assert cells

    async def region(cell: str) -> RegionState | None:
        shard = api_entities.handle(api_entities.shard_of(EntityKind.REGION, cell))
        state: RegionState | None = await shard.inspect.remote(EntityKind.REGION, cell)
        return state

    async def all_hold(holds: bool) -> bool:
        for cell in cells:
            state = await region(cell)
            if state is None or (zone_id in state.zone_ids) != holds:
                return False
        return True

    assert await eventually(lambda: all_hold(True), timeout_s=10)
    held = await api_entities.ask(EntityKind.REGION, cells[0], QueryZones())
    assert held == {zone_id}
    # A read-only query: answered from memory outside the mailbox too.
    shard = api_entities.handle(api_entities.shard_of(EntityKind.REGION, cells[0]))
    ((ok, read),) = await shard.read_unordered.remote([(EntityKind.REGION, cells[0], QueryZones())])
    assert ok
    assert read == {zone_id}
    # Durable: the regions stored the set with the zone revision.
    stored = await api_pool.fetchval(
        "SELECT state FROM entity_snapshots WHERE kind = 'region' AND entity_id = $1", cells[0]
    )
    assert stored["zone_ids"] == [str(zone_id)]
    assert stored["zones_revision"] >= zone["revision"]

    deleted = await http.delete(f"{ZONES}/{zone_id}", headers=admin.headers)
    assert deleted.status_code == 204
    assert await eventually(lambda: all_hold(False), timeout_s=10)


# --- floods (issue 16) -----------------------------------------------------------------------


async def test_finding_zone_reads_have_no_rate_limit(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    reader = await make_account(api_pool, api_settings, Role.USER)
    rule = api_settings.rate_limit.geofence_read_per_principal
    codes = [
        (await http.get(ZONES, params={"limit": 1}, headers=reader.headers)).status_code
        for _ in range(rule.limit + 1)
    ]
    assert codes == [200] * rule.limit + [429]
    refused = await http.get(ZONES, headers=reader.headers)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= rule.window_s
    # Per endpoint and per caller: one zone, and another reader, are still answered.
    assert (await http.get(f"{ZONES}/{uuid4()}", headers=reader.headers)).status_code == 404
    other = await make_account(api_pool, api_settings, Role.USER)
    assert (await http.get(ZONES, headers=other.headers)).status_code == 200
