"""POST /geofencing/location and /ws location frames: validation, Redis, subject
entities and the sampled history, over real HTTP and WebSocket on the real services."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest
import ray
import websockets

from actors.effects import EntityKind
from actors.subject import subject_key
from cluster.client import EntityClient
from cluster.placement import shard_name
from config.settings import Settings
from gateway.auth.principal import Role
from persistence.drivers.mongo import EventStore
from persistence.drivers.redis import create_redis, location_key
from persistence.outbox.events import LOCATION_EVENTS
from tests.geodesy import destination
from tests.integration.api.accounts import make_account
from tests.integration.api.authkit import ROOMY, Session, gateway_with, isolated, signed_up
from tests.integration.api.conftest import NAMESPACE, Gateway, serving
from tests.integration.api.test_alerts import random_point
from tests.integration.api.test_checkins import fix as send_fix

pytestmark = pytest.mark.integration

HERE = {"latitude": 52.52, "longitude": 13.405, "accuracy_m": 8.0}


@pytest.fixture(scope="module")
async def geo_gateway(api_settings: Settings, api_entities: EntityClient) -> AsyncIterator[Gateway]:
    async with gateway_with(api_settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(geo_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=geo_gateway.base_url, timeout=20) as client:
        yield client


def at(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()


async def stored(settings: Settings, role: str, subject_id: str) -> dict[str, Any] | None:
    redis = create_redis(settings.redis)
    try:
        raw = await redis.get(location_key(role, subject_id))
    finally:
        await redis.aclose()
    return None if raw is None else dict(json.loads(raw))


async def subject_state(entities: EntityClient, role: str, subject_id: str) -> Any:
    key = subject_key(role, UUID(subject_id))
    shard = ray.get_actor(
        shard_name(entities.shard_of(EntityKind.SUBJECT, key)), namespace=NAMESPACE
    )
    return await shard.inspect.remote(EntityKind.SUBJECT, key)


async def eventually(probe: Any, timeout_s: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if value or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def test_a_fix_is_accepted_stored_newest_first_tracked_and_sampled(
    http: httpx.AsyncClient, api_settings: Settings, api_entities: EntityClient
) -> None:
    user = await signed_up(http)
    newer, older = at(5), at(60)
    answer = await http.post(
        "/geofencing/location", json={**HERE, "recorded_at": newer}, headers=user.headers
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["subject_id"] == user.account_id
    late = await http.post(
        "/geofencing/location",
        json={**HERE, "latitude": 10.0, "recorded_at": older},
        headers=user.headers,
    )
    assert late.status_code == 202
    latest = await eventually(lambda: stored(api_settings, "user", user.account_id))
    assert latest is not None
    assert latest["latitude"] == HERE["latitude"]  # the older fix did not win
    state = await eventually(lambda: subject_state(api_entities, "user", user.account_id))
    assert state is not None
    assert state.presence.last_fix_at == datetime.fromisoformat(newer)
    events = EventStore(api_settings.mongo)
    try:
        samples = await eventually(
            lambda: events.find_events(LOCATION_EVENTS, subject=user.account_id)
        )
    finally:
        await events.close()
    assert len(samples) == 1  # two fixes within the sampling period: one sample
    assert samples[0].data["subject_role"] == "user"


async def test_agents_report_too_and_admins_and_strangers_cannot(
    http: httpx.AsyncClient, api_settings: Settings
) -> None:
    agent = await signed_up(http, "agent")
    answer = await http.post("/geofencing/location", json=HERE, headers=agent.headers)
    assert answer.status_code == 202
    assert await eventually(lambda: stored(api_settings, "agent", agent.account_id))
    assert (await http.post("/geofencing/location", json=HERE)).status_code == 401
    garbage = {"Authorization": "Bearer not.a.token"}
    assert (await http.post("/geofencing/location", json=HERE, headers=garbage)).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {**HERE, "latitude": 91},
        {**HERE, "longitude": -180.5},
        {**HERE, "latitude": "north"},
        {**HERE, "latitude": "52.52"},  # a number in a string: not coerced
        {**HERE, "longitude": True},  # nor a boolean
        {**HERE, "heading": 360},
        {**HERE, "speed_mps": "fast"},
        {**HERE, "accuracy_m": -1},
        {**HERE, "recorded_at": "2026-11-26T12:00:00"},  # no timezone
        {**HERE, "recorded_at": "yesterday"},
        {**HERE, "recorded_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        {**HERE, "recorded_at": (datetime.now(UTC) - timedelta(days=3)).isoformat()},
        {**HERE, "subject_id": "00000000-0000-0000-0000-000000000001"},  # not yours to say
        {"longitude": 13.4},
        [HERE],
    ],
)
async def test_bad_fixes_are_422_problems(http: httpx.AsyncClient, body: Any) -> None:
    user = await signed_up(http)
    answer = await http.post("/geofencing/location", json=body, headers=user.headers)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["errors"]


async def test_location_frames_over_the_socket_take_the_same_path(
    http: httpx.AsyncClient,
    geo_gateway: Gateway,
    api_settings: Settings,
    api_entities: EntityClient,
) -> None:
    user: Session = await signed_up(http)
    async with websockets.connect(geo_gateway.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "data": {"token": user.access_token}}))
        assert json.loads(await ws.recv())["type"] == "auth.ok"
        fix = {**HERE, "recorded_at": at(1)}
        await ws.send(json.dumps({"type": "location", "id": "f1", "data": fix}))
        stale = {**HERE, "recorded_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}
        await ws.send(json.dumps({"type": "location", "id": "f2", "data": stale}))
        error = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert error["type"] == "error"
        assert error["data"]["code"] == "invalid_data"
        assert error["data"]["ref"] == "f2"
    assert await eventually(lambda: stored(api_settings, "user", user.account_id))
    state = await eventually(lambda: subject_state(api_entities, "user", user.account_id))
    assert state is not None


async def test_refused_fixes_are_told_together_the_first_at_once_then_with_their_count(
    api_settings: Settings, api_entities: EntityClient
) -> None:
    # One place per subject in the queue, flushed once a second, and a socket told
    # of its refusals at most every second: an overloaded gateway, made small.
    geofence = api_settings.geofence.model_copy(
        update={"batch_linger_ms": 1000, "queue_max_per_subject": 1}
    )
    limits = api_settings.http.model_copy(update={"ws_refusal_notice_s": 1.0})
    settings = isolated(api_settings, **ROOMY).model_copy(
        update={"geofence": geofence, "http": limits}
    )

    def location(seconds_ago: float, ref: str | None = None) -> str:
        frame: dict[str, Any] = {
            "type": "location",
            "data": {**HERE, "recorded_at": at(seconds_ago)},
        }
        if ref is not None:
            frame["id"] = ref
        return json.dumps(frame)

    async def error(ws: Any) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert frame["type"] == "error", frame
        assert frame["data"]["code"] == "unavailable"
        assert frame["data"]["retriable"] is True
        return dict(frame["data"])

    async with (
        serving(settings, api_entities) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as http,
    ):
        user: Session = await signed_up(http)
        async with websockets.connect(gateway.ws_url) as ws:
            await ws.send(json.dumps({"type": "auth", "data": {"token": user.access_token}}))
            assert json.loads(await ws.recv())["type"] == "auth.ok"
            await ws.send(location(4))  # queued: the subject's one place
            await ws.send(location(3))  # refused, and told at once
            first = await error(ws)
            told_at = asyncio.get_running_loop().time()
            assert (first["refused"], first.get("ref")) == (1, None)
            await ws.send(location(2))  # refused: counted, told later
            await ws.send(location(1, ref="r1"))  # refused with an id: answered at once
            assert (await error(ws))["refused"] == 1
            # (The frame just read answered r1: the untold refusal was not in it.)
            # Once the queue is flushed and the notice period is over, the next fix
            # is taken, and its answer tells the refusal still untold.
            assert await eventually(lambda: stored(settings, "user", user.account_id))
            await asyncio.sleep(max(0.0, told_at + 1.1 - asyncio.get_running_loop().time()))
            await ws.send(location(0.5))
            last = await error(ws)
            assert (last["refused"], last.get("ref")) == (1, None)


async def test_a_stay_dwells_on_time_without_another_fix(
    http: httpx.AsyncClient, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    """A phone that stops reporting once inside still gets its dwell: the stay's
    durable timer fires at ``since + dwell_s`` and commits one ``geofence.dwell``."""
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    user = await make_account(api_pool, api_settings, Role.USER)
    spot = random_point()
    zone = {
        "name": "loiter",
        "kind": "danger",
        "geometry": {"type": "Point", "coordinates": [spot[1], spot[0]]},
        "radius_m": 150,
        "rules": {"dwell_s": 2},
    }
    made = await http.post("/geofencing/zones", json=zone, headers=admin.headers)
    assert made.status_code == 201, made.text
    zone_id = made.json()["id"]
    away = destination(*spot, 2000, 90)

    async def count(event: str) -> int:
        found: int = await api_pool.fetchval(
            "SELECT count(*) FROM outbox WHERE type = $1 AND key = $2 AND data->>'zone_id' = $3",
            f"geofence.{event}",
            str(user.id),
            zone_id,
        )
        return found

    await send_fix(http, user, away)

    async def entered() -> bool:
        # Inside until the subject's shard knows the zone (its zone book hears of
        # it a moment after it is made): then one enter, and no more fixes.
        await send_fix(http, user, spot)
        return await count("enter") == 1

    assert await eventually(entered, timeout_s=30)
    entered_at = datetime.now(UTC)
    assert await eventually(lambda: count("dwell"), timeout_s=15) == 1
    row = await api_pool.fetchrow(
        "SELECT time, data FROM outbox WHERE type = 'geofence.dwell' AND key = $1", str(user.id)
    )
    assert row is not None
    assert row["time"] >= entered_at + timedelta(seconds=1)  # not before the stay lasted
    assert (row["data"]["latitude"], row["data"]["zone_kind"]) == (spot[0], "danger")
    timers = await api_pool.fetchval(
        "SELECT count(*) FROM entity_timers WHERE kind = 'subject' AND entity_id = $1",
        f"user:{user.id}",
    )
    assert timers == 0  # fired and gone
    await asyncio.sleep(1.0)
    assert (await count("dwell"), await count("enter")) == (1, 1)
