"""Geofencing end to end: 200 subjects walk scripted paths through 50 zones, over
WebSocket and REST, and exactly the expected enter/exit events land in MongoDB
``geofence_events`` and on Kafka ``geofence-events`` (real gateway, real shards,
real outbox relay).

The zones are 150 m circles on a 10 x 5 grid 1 km apart (made over REST by an
admin). Subject ``i`` walks east along row ``i % 5`` at a small north offset,
one fix every 250 m: a fix is either at a zone's centre row position (inside,
>= 100 m from the edge) or 250 m from every centre (outside, >= 95 m from any
edge), so no fix straddles a boundary and each zone gives one enter and one
exit. Half the subjects are users, half agents; half send ``location`` frames
over ``/ws``, half ``POST /geofencing/location``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
import ray
import websockets

from actors.effects import EntityKind
from cluster.client import EntityClient
from cluster.placement import shard_name
from config.settings import Settings
from gateway.auth.principal import Role
from geo.cells import cell_of
from panic_alert.relay_root import run_relay
from persistence.drivers.kafka import KafkaPublisher
from persistence.drivers.mongo import EventStore
from persistence.outbox.events import GEOFENCE_EVENTS
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import ROOMY, gateway_with
from tests.integration.api.conftest import NAMESPACE, Gateway
from tests.integration.persistence.helpers import commit_group_at_end, consume_until
from tests.scratch import drop_mongo_database, scratch_name
from tests.tasks import stop

pytestmark = pytest.mark.integration

ORIGIN = (47.9, 11.1)  # away from every other test's places
M_PER_DEG = 111_320.0
ROWS, COLUMNS, SPACING_M, RADIUS_M = 5, 10, 1000.0, 150.0
SUBJECTS = 200
TOPIC = "geofence-events"


def point(east_m: float, north_m: float) -> tuple[float, float]:
    lat = ORIGIN[0] + north_m / M_PER_DEG
    lon = ORIGIN[1] + east_m / (M_PER_DEG * math.cos(math.radians(ORIGIN[0])))
    return lat, lon


def path(subject: int) -> list[tuple[float, float]]:
    row, north_offset = subject % ROWS, (subject % 7 - 3) * 15.0
    return [
        point(-500 + 250 * k, row * SPACING_M + north_offset)
        for k in range(int((COLUMNS * SPACING_M + 500) / 250) + 1)
    ]


def expected(subject: int, zones: dict[tuple[int, int], str]) -> list[tuple[str, str]]:
    row = subject % ROWS
    return [
        (zones[(row, column)], event) for column in range(COLUMNS) for event in ("enter", "exit")
    ]


@contextlib.asynccontextmanager
async def relaying(settings: Settings) -> AsyncIterator[Settings]:
    """The outbox relay on a scratch MongoDB database, for this test's events only."""
    mongo = scratch_name("pa_geofence_events")
    on_mongo = settings.model_copy(
        update={"mongo": settings.mongo.model_copy(update={"database": mongo})}
    )
    task = asyncio.create_task(run_relay(on_mongo))
    try:
        yield on_mongo
    finally:
        try:
            await stop(task)
        finally:
            await drop_mongo_database(settings, mongo)


@pytest.fixture(scope="module")
async def paths_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


async def make_zones(http: httpx.AsyncClient, admin: Account) -> dict[tuple[int, int], str]:
    zones: dict[tuple[int, int], str] = {}
    for row in range(ROWS):
        for column in range(COLUMNS):
            lat, lon = point(column * SPACING_M, row * SPACING_M)
            body = {
                "name": f"grid {row}/{column}",
                "kind": "safe",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "radius_m": RADIUS_M,
            }
            answer = await http.post("/geofencing/zones", json=body, headers=admin.headers)
            assert answer.status_code == 201, answer.text
            zones[(row, column)] = answer.json()["id"]
    return zones


async def zones_reached_the_shards(entities: EntityClient, zone_id: str, cell: str) -> None:
    shard = ray.get_actor(
        shard_name(entities.shard_of(EntityKind.REGION, cell)), namespace=NAMESPACE
    )
    async with asyncio.timeout(30):
        while True:
            region = await shard.inspect.remote(EntityKind.REGION, cell)
            if region is not None and UUID(zone_id) in region.zone_ids:
                return
            await asyncio.sleep(0.1)


def fix_body(lat: float, lon: float, at: datetime) -> dict[str, Any]:
    return {"latitude": lat, "longitude": lon, "accuracy_m": 5.0, "recorded_at": at.isoformat()}


async def walk_over_ws(ws_url: str, account: Account, fixes: list[dict[str, Any]]) -> None:
    async with websockets.connect(ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "data": {"token": account.token}}))
        assert json.loads(await ws.recv())["type"] == "auth.ok"
        for n, body in enumerate(fixes):
            await ws.send(json.dumps({"type": "location", "id": f"f{n}", "data": body}))
        # A round trip after the last fix: every frame before it was read and taken.
        await ws.send(json.dumps({"type": "ping", "id": "last"}))
        while json.loads(await ws.recv()).get("type") != "pong":
            pass


async def walk_over_rest(http: httpx.AsyncClient, account: Account, fixes: list[Any]) -> None:
    for body in fixes:
        answer = await http.post("/geofencing/location", json=body, headers=account.headers)
        assert answer.status_code == 202, answer.text


async def test_scripted_paths_give_exactly_the_expected_events_in_mongo_and_kafka(
    paths_gateway: Gateway,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    roles = [Role.USER if i % 2 == 0 else Role.AGENT for i in range(SUBJECTS)]
    subjects = [await make_account(api_pool, api_settings, role) for role in roles]
    ids = {str(s.id): i for i, s in enumerate(subjects)}
    publisher = KafkaPublisher(api_settings.kafka)
    await publisher.start()
    group = f"geofence-paths-{uuid4().hex[:8]}"
    try:
        await commit_group_at_end(api_settings.kafka, publisher, group, TOPIC)
    finally:
        await publisher.stop()
    # Only this test's events: what earlier tests left in the outbox stays unsent.
    await api_pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")

    async with (
        httpx.AsyncClient(base_url=paths_gateway.base_url, timeout=30) as http,
        relaying(api_settings) as on_mongo,
    ):
        zones = await make_zones(http, admin)
        last_zone = point((COLUMNS - 1) * SPACING_M, (ROWS - 1) * SPACING_M)
        resolution = api_settings.actors.region_resolution
        await zones_reached_the_shards(
            api_entities, zones[(ROWS - 1, COLUMNS - 1)], cell_of(*last_zone, resolution)
        )

        # After the zones were made (a fix older than a zone only sets a baseline in
        # it), 100 ms apart: the walks take seconds, not minutes, of device time.
        start = datetime.now(UTC)
        walks = []
        for i, subject in enumerate(subjects):
            fixes = [
                fix_body(lat, lon, start + timedelta(seconds=k / 10))
                for k, (lat, lon) in enumerate(path(i))
            ]
            if i % 4 < 2:
                walks.append(walk_over_ws(paths_gateway.ws_url, subject, fixes))
            else:
                walks.append(walk_over_rest(http, subject, fixes))
        await asyncio.gather(*walks)

        want = {str(s.id): expected(i, zones) for i, s in enumerate(subjects)}
        total = sum(len(v) for v in want.values())
        store = EventStore(on_mongo.mongo)
        try:
            with contextlib.suppress(TimeoutError):  # what is there is compared below
                async with asyncio.timeout(60):
                    while True:
                        found = await store.find_events(GEOFENCE_EVENTS, limit=total * 2)
                        if len(found) >= total:
                            break
                        await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # anything beyond the expected would show now
            stored = await store.find_events(GEOFENCE_EVENTS, limit=total * 2)
        finally:
            await store.close()

    got: dict[str, list[tuple[str, str]]] = {}
    for event in sorted(stored, key=lambda e: e.time):
        assert event.subject in ids
        assert event.type == f"geofence.{event.data['event']}"
        assert event.data["subject_role"] == roles[ids[event.subject]].value
        got.setdefault(str(event.subject), []).append((event.data["zone_id"], event.data["event"]))
    missing = {s: len(want[s]) - len(got.get(s, [])) for s in want if got.get(s) != want[s]}
    one = next(iter(missing), None)
    assert not missing, (
        f"{len(missing)} subjects' events differ: {list(missing.items())[:5]}; "
        f"one got {got.get(one or '')} wanted {want.get(one or '')}"
    )
    assert got == want

    consumed = await consume_until(
        api_settings.kafka,
        group,
        TOPIC,
        lambda seen: sum(1 for e in seen if e.event.subject in ids) >= total,
        timeout_s=60,
    )
    mine = [e.event for e in consumed if e.event.subject in ids]
    assert Counter(e.id for e in mine) == Counter(e.id for e in stored)  # the same events, once
    on_kafka: dict[str, list[tuple[str, str]]] = {}
    for event in mine:  # keyed by subject: one partition each, in order
        on_kafka.setdefault(str(event.subject), []).append(
            (event.data["zone_id"], event.data["event"])
        )
    assert on_kafka == want
