"""The bulk feed (issue 20): ``POST /geofencing/locations`` and ``/ws/locations`` with an
integration key, over real HTTP and WebSocket against the live gateway, Redis, Ray
shards and PostgreSQL (the outbox, where each geofence event is committed with its
subject's state).

Every test uses fresh accounts and a zone of its own at a random place, so other
tests' fixes never touch it. A new zone reaches the shards' zone books shortly
after it is made; each test first walks a throwaway subject into it until that
one's ``geofence.enter`` is committed, so the tracks that follow meet the zone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest
import websockets

from cluster.client import EntityClient
from config.settings import GeofenceSettings, Settings
from gateway.auth.principal import Role
from gateway.ws.bulk import KEY_CAP_REASON
from persistence.drivers.redis import create_redis, location_key
from tests.geodesy import destination
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.authkit import ROOMY, gateway_with
from tests.integration.api.conftest import Gateway
from tests.integration.api.test_alerts import assert_problem, eventually, random_point

pytestmark = pytest.mark.integration

#: Fixes one subject may have waiting in the tests' gateway (its default is 50).
PER_SUBJECT = 20


@pytest.fixture(scope="module")
async def feed_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    geofence = api_settings.geofence.model_copy(update={"queue_max_per_subject": PER_SUBJECT})
    settings = api_settings.model_copy(update={"geofence": geofence})
    async with gateway_with(settings, api_entities, **ROOMY) as gateway:
        yield gateway


@pytest.fixture
async def http(feed_gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=feed_gateway.base_url, timeout=20) as client:
        yield client


@pytest.fixture
async def admin(api_pool: asyncpg.Pool, api_settings: Settings) -> Account:
    return await make_account(api_pool, api_settings, Role.ADMIN)


@pytest.fixture
async def key(http: httpx.AsyncClient, admin: Account) -> str:
    made = await http.post(
        "/admin/integrations", json={"name": "fleet telematics"}, headers=admin.headers
    )
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


_clock = itertools.count()


def stamp(seconds_ago: float = 0.0) -> str:
    """A recorded_at: now, less ``seconds_ago``, plus a tick so that no two are equal."""
    at = datetime.now(UTC) - timedelta(seconds=seconds_ago) + timedelta(microseconds=next(_clock))
    return at.isoformat()


def fix(subject: Account | UUID, point: tuple[float, float], **extra: Any) -> dict[str, Any]:
    subject_id = subject.id if isinstance(subject, Account) else subject
    body: dict[str, Any] = {
        "subject_id": str(subject_id),
        "latitude": point[0],
        "longitude": point[1],
        "accuracy_m": 5.0,
        "recorded_at": stamp(),
    }
    body.update(extra)
    return body


async def fence_events(pool: asyncpg.Pool, subject_id: UUID, zone_id: str) -> list[str]:
    """The subject's enter / exit events of the zone, as committed, oldest first."""
    rows = await pool.fetch(
        "SELECT type FROM outbox WHERE topic = 'geofence-events' AND key = $1 "
        "AND data->>'zone_id' = $2 AND type IN ('geofence.enter', 'geofence.exit') ORDER BY id",
        str(subject_id),
        zone_id,
    )
    return [row["type"].removeprefix("geofence.") for row in rows]


async def zone_at(
    http: httpx.AsyncClient,
    admin: Account,
    key: str,
    pool: asyncpg.Pool,
    centre: tuple[float, float],
) -> str:
    """A 150 m danger zone at ``centre``, known to the shards once this returns."""
    made = await http.post(
        "/geofencing/zones",
        json={
            "name": "depot",
            "kind": "danger",
            "geometry": {"type": "Point", "coordinates": [centre[1], centre[0]]},
            "radius_m": 150,
        },
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    zone_id = str(made.json()["id"])
    scout = uuid4()

    away = destination(*centre, 2000, 90)

    async def entered() -> bool:
        # Outside, then inside: an enter once the scout's shard knows the zone (a
        # subject's first fix in a zone, or its first since the zone was made, is
        # only where it is, without an event).
        track = [fix(scout, away), fix(scout, centre)]
        sent = await http.post("/geofencing/locations", json={"fixes": track}, headers=bearer(key))
        assert sent.status_code == 202, sent.text
        await asyncio.sleep(0.2)
        return "enter" in await fence_events(pool, scout, zone_id)

    assert await eventually(entered, timeout_s=30)
    return zone_id


async def bulk_socket(gateway: Gateway, key: str) -> websockets.ClientConnection:
    ws = await websockets.connect(gateway.ws_url + "/locations")
    await ws.send(json.dumps({"type": "auth", "data": {"token": key}}))
    ok = json.loads(await ws.recv())
    assert ok["type"] == "auth.ok", ok
    return ws


async def send_batch(
    ws: websockets.ClientConnection, fixes: list[dict[str, Any]], ref: str = "b"
) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "locations", "id": ref, "data": {"fixes": fixes}}))
    answer = json.loads(await ws.recv())
    assert answer["type"] == "locations.ok", answer
    assert answer["data"]["ref"] == ref
    data: dict[str, Any] = answer["data"]
    return data


# --- order per subject -----------------------------------------------------------------


async def test_each_subjects_fixes_are_applied_in_the_order_sent(
    http: httpx.AsyncClient,
    feed_gateway: Gateway,
    admin: Account,
    key: str,
    api_pool: asyncpg.Pool,
) -> None:
    centre = random_point()
    zone_id = await zone_at(http, admin, key, api_pool, centre)
    away = destination(*centre, 2000, 90)
    a, b = uuid4(), uuid4()
    # One batch, the two subjects' tracks interleaved: A in, out, in; B in, out.
    track = [
        fix(a, away),
        fix(b, centre),
        fix(a, centre),
        fix(b, away),
        fix(a, away),
        fix(a, centre),
    ]
    sent = await http.post("/geofencing/locations", json={"fixes": track}, headers=bearer(key))
    assert sent.status_code == 202, sent.text
    assert sent.json() == {"accepted": 6, "invalid": 0, "refused": 0, "errors": []}
    # Then over the socket, in two frames: A out, then in and out again.
    ws = await bulk_socket(feed_gateway, key)
    try:
        first = await send_batch(ws, [fix(a, away)], "one")
        second = await send_batch(ws, [fix(a, centre), fix(a, away)], "two")
    finally:
        await ws.close()
    assert (first["accepted"], second["accepted"]) == (1, 2)

    async def settled() -> list[str] | None:
        events = await fence_events(api_pool, a, zone_id)
        return events if len(events) >= 6 else None

    # A's first fix is where it is (no event); then each crossing, in the order sent.
    assert await eventually(settled, timeout_s=20) == ["enter", "exit"] * 3
    # B's first fix is inside (no event), then it leaves.
    assert await fence_events(api_pool, b, zone_id) == ["exit"]
    await asyncio.sleep(1.0)  # nothing more comes
    assert len(await fence_events(api_pool, a, zone_id)) == 6


async def test_an_older_fix_sent_later_changes_nothing(
    http: httpx.AsyncClient, admin: Account, key: str, api_pool: asyncpg.Pool
) -> None:
    centre = random_point()
    zone_id = await zone_at(http, admin, key, api_pool, centre)
    away = destination(*centre, 2000, 90)
    subject = uuid4()
    late = fix(subject, centre, recorded_at=stamp(seconds_ago=30))
    track = [fix(subject, away), fix(subject, centre), fix(subject, away), late]
    sent = await http.post("/geofencing/locations", json={"fixes": track}, headers=bearer(key))
    assert sent.json()["accepted"] == 4

    async def left() -> list[str] | None:
        events = await fence_events(api_pool, subject, zone_id)
        return events if len(events) >= 2 else None

    assert await eventually(left, timeout_s=20) == ["enter", "exit"]
    await asyncio.sleep(1.0)
    assert await fence_events(api_pool, subject, zone_id) == ["enter", "exit"]


# --- a partial batch ---------------------------------------------------------------------


def partly_bad(good: list[UUID]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """A batch with good fixes of ``good`` at 0, 2 and 7, and bad ones elsewhere
    (index: a word of the error message)."""
    here = random_point()
    fixes: list[dict[str, Any]] = [
        fix(good[0], here),
        fix(good[1], here, latitude=91.0),
        fix(good[1], here),
        {k: v for k, v in fix(good[0], here).items() if k != "subject_id"},
        fix(good[0], here, recorded_at=stamp(seconds_ago=3 * 24 * 3600)),
        fix(good[0], here, latitude="52.5"),
        fix(good[0], here, altitude_m=30),
        fix(good[2], here, subject_role="agent"),
        fix(good[0], here, subject_role="admin"),
        fix("not-a-uuid", here),  # type: ignore[arg-type]
    ]
    bad = {
        1: "latitude",
        3: "subject_id",
        4: "past",
        5: "latitude",
        6: "altitude_m",
        8: "subject_role",
        9: "subject_id",
    }
    return fixes, bad


async def stored_at(settings: Settings, role: str, subject_id: UUID) -> dict[str, Any] | None:
    redis = create_redis(settings.redis)
    try:
        raw = await redis.get(location_key(role, str(subject_id)))
    finally:
        await redis.aclose()
    return None if raw is None else dict(json.loads(raw))


async def test_bad_fixes_are_answered_by_index_and_the_rest_are_taken(
    http: httpx.AsyncClient, feed_gateway: Gateway, key: str, api_settings: Settings
) -> None:
    for over in ("rest", "socket"):
        good = [uuid4(), uuid4(), uuid4()]
        fixes, bad = partly_bad(good)
        if over == "rest":
            sent = await http.post(
                "/geofencing/locations", json={"fixes": fixes}, headers=bearer(key)
            )
            assert sent.status_code == 202, sent.text
            outcome = sent.json()
        else:
            ws = await bulk_socket(feed_gateway, key)
            try:
                outcome = await send_batch(ws, fixes)
            finally:
                await ws.close()
            del outcome["ref"]
        assert (outcome["accepted"], outcome["invalid"], outcome["refused"]) == (3, 7, 0), over
        assert [e["index"] for e in outcome["errors"]] == sorted(bad), over
        for error in outcome["errors"]:
            assert error["code"] == "invalid_data"
            assert bad[error["index"]] in error["message"], (over, error)

        async def stored(good: list[UUID] = good) -> bool:
            return (
                await stored_at(api_settings, "user", good[0]) is not None
                and await stored_at(api_settings, "user", good[1]) is not None
                and await stored_at(api_settings, "agent", good[2]) is not None
            )

        assert await eventually(stored, timeout_s=10), over
        assert (await stored_at(api_settings, "user", good[1]))["latitude"] == fixes[2]["latitude"]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"fixes": []}',
        b'{"fixes": {}}',
        b'{"fixes": [], "more": 1}',
        b'{"other": []}',
    ],
)
async def test_a_body_that_is_not_a_batch_is_a_422_problem(
    http: httpx.AsyncClient, key: str, body: bytes
) -> None:
    answer = await http.post(
        "/geofencing/locations",
        content=body,
        headers={**bearer(key), "Content-Type": "application/json"},
    )
    assert_problem(answer, 422)


async def test_a_batch_of_only_bad_fixes_is_a_422_with_each_index(
    http: httpx.AsyncClient, key: str
) -> None:
    fixes = [
        fix(uuid4(), random_point(), latitude=-91.0),
        fix(uuid4(), random_point(), heading=360),
    ]
    answer = await http.post("/geofencing/locations", json={"fixes": fixes}, headers=bearer(key))
    problem = assert_problem(answer, 422)
    assert [e["loc"][:3] for e in problem["errors"]] == [["body", "fixes", 0], ["body", "fixes", 1]]


async def test_too_many_fixes_in_one_batch_are_refused_whole(
    http: httpx.AsyncClient, feed_gateway: Gateway, key: str
) -> None:
    most = GeofenceSettings().bulk_max_fixes
    here = random_point()
    fixes = [fix(uuid4(), here) for _ in range(most + 1)]
    answer = await http.post("/geofencing/locations", json={"fixes": fixes}, headers=bearer(key))
    assert str(most) in assert_problem(answer, 422)["errors"][0]["msg"]
    ws = await bulk_socket(feed_gateway, key)
    try:
        await ws.send(json.dumps({"type": "locations", "id": "big", "data": {"fixes": fixes}}))
        error = json.loads(await ws.recv())
        assert error["type"] == "error"
        assert (error["data"]["code"], error["data"]["ref"]) == ("invalid_data", "big")
        # The socket stays open.
        await ws.send(json.dumps({"type": "ping", "id": "p"}))
        assert json.loads(await ws.recv()) == {"type": "pong", "data": {"ref": "p"}}
    finally:
        await ws.close()


# --- floods ------------------------------------------------------------------------------


async def test_one_subject_flooding_a_batch_gets_the_excess_refused_by_index(
    http: httpx.AsyncClient, key: str
) -> None:
    subject, other = uuid4(), uuid4()
    here = random_point()
    fixes = [fix(subject, here) for _ in range(PER_SUBJECT + 5)] + [fix(other, here)]
    answer = await http.post("/geofencing/locations", json={"fixes": fixes}, headers=bearer(key))
    assert answer.status_code == 202, answer.text
    outcome = answer.json()
    # The subject's share of the queue is taken, in order; its excess is refused by
    # index; the other subject's fix is still taken.
    assert (outcome["accepted"], outcome["refused"]) == (PER_SUBJECT + 1, 5)
    assert [e["index"] for e in outcome["errors"]] == list(range(PER_SUBJECT, PER_SUBJECT + 5))
    assert {e["code"] for e in outcome["errors"]} == {"unavailable"}


#: The crowded gateway's queue, and the bulk feed's share of it.
CROWDED_QUEUE, BULK_SHARE = 100, 0.5


@pytest.fixture
async def crowded_gateway(
    api_settings: Settings, api_entities: EntityClient
) -> AsyncIterator[Gateway]:
    """A gateway of its own with a 100-fix queue flushed once a second (the bulk
    feed's fixes too), so a batch finds the queue as the test left it."""
    geofence = api_settings.geofence.model_copy(
        update={
            "queue_max": CROWDED_QUEUE,
            "bulk_queue_share": BULK_SHARE,
            "batch_linger_ms": 1000.0,
            "bulk_linger_ms": 1000.0,
        }
    )
    settings = api_settings.model_copy(update={"geofence": geofence})
    async with gateway_with(settings, api_entities, **ROOMY) as gateway:
        yield gateway


async def test_an_integration_flooding_the_queue_leaves_room_for_a_persons_fix(
    crowded_gateway: Gateway, api_pool: asyncpg.Pool, api_settings: Settings
) -> None:
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    user = await make_account(api_pool, api_settings, Role.USER)
    here = random_point()
    share = int(CROWDED_QUEUE * BULK_SHARE)
    async with httpx.AsyncClient(base_url=crowded_gateway.base_url, timeout=20) as client:
        made = await client.post(
            "/admin/integrations", json={"name": "flood"}, headers=admin.headers
        )
        assert made.status_code == 201, made.text
        flood = [fix(uuid4(), here) for _ in range(CROWDED_QUEUE - 20)]
        answer = await client.post(
            "/geofencing/locations", json={"fixes": flood}, headers=bearer(made.json()["key"])
        )
        assert answer.status_code == 202, answer.text
        outcome = answer.json()
        # The bulk feed fills its share of the queue; the rest is refused by index...
        assert (outcome["accepted"], outcome["refused"]) == (share, len(flood) - share)
        assert [e["index"] for e in outcome["errors"]] == list(range(share, len(flood)))
        assert {e["code"] for e in outcome["errors"]} == {"unavailable"}
        # ...and a person's fix still finds room in the queue.
        mine = await client.post(
            "/geofencing/location",
            json={"latitude": here[0], "longitude": here[1]},
            headers=user.headers,
        )
        assert mine.status_code == 202, mine.text


async def test_bad_frames_on_the_bulk_socket_are_error_frames(
    feed_gateway: Gateway, key: str
) -> None:
    ws = await bulk_socket(feed_gateway, key)
    try:
        for frame, code in [
            ("not json", "bad_frame"),
            ('{"type": "location", "id": "x", "data": {}}', "unknown_type"),
            ('{"type": "locations", "id": "y", "data": {"fixes": "no"}}', "invalid_data"),
        ]:
            await ws.send(frame)
            error = json.loads(await ws.recv())
            assert (error["type"], error["data"]["code"]) == ("error", code), frame
        await ws.send(b"binary")
        error = json.loads(await ws.recv())
        assert error["data"]["code"] == "binary_unsupported"
    finally:
        await ws.close()


# --- the same events as the phone path ----------------------------------------------------


async def event_rows(pool: asyncpg.Pool, subject_id: UUID, zone_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT type, data FROM outbox WHERE topic = 'geofence-events' AND key = $1 "
        "AND data->>'zone_id' = $2 ORDER BY id",
        str(subject_id),
        zone_id,
    )
    return [{"type": row["type"], **dict(row["data"])} for row in rows]


async def test_the_bulk_feed_makes_the_same_events_as_the_phone_path(
    http: httpx.AsyncClient,
    admin: Account,
    key: str,
    api_pool: asyncpg.Pool,
    api_settings: Settings,
) -> None:
    centre = random_point()
    zone_id = await zone_at(http, admin, key, api_pool, centre)
    phone = await make_account(api_pool, api_settings, Role.USER)
    fed = await make_account(api_pool, api_settings, Role.USER)
    path = [destination(*centre, d, 90) for d in (2000, 100, 0, 60, 600, 20, 3000)]
    # After the zone was made (a zone newer than a fix only sets where the subject is).
    times = [stamp(seconds_ago=-i) for i in range(len(path))]
    for point, at in zip(path, times, strict=True):
        body = {"latitude": point[0], "longitude": point[1], "accuracy_m": 5.0, "recorded_at": at}
        sent = await http.post("/geofencing/location", json=body, headers=phone.headers)
        assert sent.status_code == 202, sent.text
    batch = [fix(fed, point, recorded_at=at) for point, at in zip(path, times, strict=True)]
    sent = await http.post("/geofencing/locations", json={"fixes": batch}, headers=bearer(key))
    assert sent.json()["accepted"] == len(path)

    async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
        mine = await event_rows(api_pool, phone.id, zone_id)
        theirs = await event_rows(api_pool, fed.id, zone_id)
        done = [r for r in mine if r["type"] == "geofence.exit"]
        return (mine, theirs) if len(done) >= 2 and len(theirs) >= len(mine) else None

    found = await eventually(both, timeout_s=20)
    assert found is not None
    mine, theirs = found
    assert [r["type"] for r in mine] == ["geofence.enter", "geofence.exit"] * 2, (mine, theirs)

    def comparable(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row.items() if k not in ("subject_id", "event_id", "id")}

    assert [comparable(r) for r in theirs] == [comparable(r) for r in mine]
    assert {r["subject_id"] for r in theirs} == {str(fed.id)}


# --- who may use the bulk socket -----------------------------------------------------------


async def closed_with(ws: websockets.ClientConnection, within_s: float) -> int | None:
    """The close code the server sent within ``within_s`` (frames before it are skipped)."""
    async with asyncio.timeout(within_s):
        with contextlib.suppress(websockets.ConnectionClosed):
            async for _ in ws:
                pass
    return ws.close_code


async def test_only_an_active_integration_key_opens_the_bulk_socket(
    feed_gateway: Gateway, api_pool: asyncpg.Pool, api_settings: Settings, key: str
) -> None:
    user = await make_account(api_pool, api_settings, Role.USER)
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    wrong_secret = key[: -len("secret")] + "secret"
    for token in (user.token, admin.token, wrong_secret, "pak_nonsense", ""):
        async with websockets.connect(feed_gateway.ws_url + "/locations") as ws:
            await ws.send(json.dumps({"type": "auth", "data": {"token": token}}))
            assert await closed_with(ws, 5) == 4401, token
    async with websockets.connect(feed_gateway.ws_url + "/locations") as ws:
        await ws.send(json.dumps({"type": "locations", "data": {"fixes": []}}))
        assert await closed_with(ws, 5) == 4401
    # And the key opens no app socket.
    async with websockets.connect(feed_gateway.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "data": {"token": key}}))
        assert await closed_with(ws, 5) == 4401


async def test_revoking_a_key_closes_its_open_socket_within_a_second(
    http: httpx.AsyncClient, feed_gateway: Gateway, admin: Account, key: str
) -> None:
    ws = await bulk_socket(feed_gateway, key)
    outcome = await send_batch(ws, [fix(uuid4(), random_point())])
    assert outcome["accepted"] == 1
    key_id = UUID(key.split("_")[1])  # pak_<key id>_<secret>
    revoked = await http.delete(f"/admin/integrations/{key_id}", headers=admin.headers)
    assert revoked.status_code == 204, revoked.text
    assert await closed_with(ws, 1.0) == 4401
    answer = await http.post(
        "/geofencing/locations", json={"fixes": [fix(uuid4(), random_point())]}, headers=bearer(key)
    )
    assert_problem(answer, 401)


async def test_an_app_socket_keeps_its_own_frame_bound_below_the_bulk_one(
    feed_gateway: Gateway, api_pool: asyncpg.Pool, api_settings: Settings, key: str
) -> None:
    # The server reads frames up to the bulk bound (512 KiB) on every socket; an app
    # socket still closes 1009 past its own (64 KiB), and a bulk socket takes it.
    user = await make_account(api_pool, api_settings, Role.USER)
    pad = "x" * (100 * 1024)
    async with websockets.connect(feed_gateway.ws_url, max_size=None) as ws:
        await ws.send(json.dumps({"type": "auth", "data": {"token": user.token}}))
        assert json.loads(await ws.recv())["type"] == "auth.ok"
        await ws.send(json.dumps({"type": "ping", "data": {"pad": pad}}))
        assert await closed_with(ws, 5) == 1009
    ws = await bulk_socket(feed_gateway, key)
    try:
        await ws.send(json.dumps({"type": "ping", "id": pad[:100], "data": {"pad": pad}}))
        answer = json.loads(await ws.recv())  # read whole: answered, not closed
        assert answer == {"type": "pong", "data": {"ref": pad[:100]}}
    finally:
        await ws.close()


@contextlib.asynccontextmanager
async def gateway_and_keys(
    api_settings: Settings,
    api_entities: EntityClient,
    api_pool: asyncpg.Pool,
    http: dict[str, Any],
    names: list[str],
) -> AsyncIterator[tuple[Gateway, list[str]]]:
    """A gateway of its own with ``http`` settings changed, and an integration key
    made by an admin for each of ``names``."""
    settings = api_settings.model_copy(update={"http": api_settings.http.model_copy(update=http)})
    admin = await make_account(api_pool, api_settings, Role.ADMIN)
    async with (
        gateway_with(settings, api_entities, **ROOMY) as gateway,
        httpx.AsyncClient(base_url=gateway.base_url, timeout=20) as client,
    ):
        keys = []
        for name in names:
            made = await client.post(
                "/admin/integrations", json={"name": name}, headers=admin.headers
            )
            assert made.status_code == 201, made.text
            keys.append(str(made.json()["key"]))
        yield gateway, keys


async def test_a_silent_bulk_socket_closes_a_heartbeat_after_its_last_frame(
    api_settings: Settings, api_entities: EntityClient, api_pool: asyncpg.Pool
) -> None:
    """Its frames are answered as they are read (the reader never wakes for them),
    so the idle close counts from the last frame, whichever way it was taken."""
    http = {"ws_heartbeat_timeout_s": 1.0}
    async with gateway_and_keys(api_settings, api_entities, api_pool, http, ["idle"]) as (
        gateway,
        (key,),
    ):
        ws = await bulk_socket(gateway, key)
        loop = asyncio.get_running_loop()
        for n in range(3):  # pings 0.6 s apart keep it open past its 1 s timeout
            await asyncio.sleep(0.6)
            await ws.send(json.dumps({"type": "ping", "id": str(n)}))
            assert json.loads(await ws.recv()) == {"type": "pong", "data": {"ref": str(n)}}
        last = loop.time()
        assert await closed_with(ws, 5) == 4408
        assert loop.time() - last >= 0.9  # from the last frame, not from the first
        # A frame over the bulk bound still closes its socket (1009).
        ws = await bulk_socket(gateway, key)
        big = "x" * (api_settings.http.ws_max_bulk_frame_bytes + 1)
        await ws.send(json.dumps({"type": "ping", "data": {"pad": big}}))
        assert await closed_with(ws, 5) == 1009


async def test_a_key_holds_at_most_its_cap_of_open_sockets(
    api_settings: Settings, api_entities: EntityClient, api_pool: asyncpg.Pool
) -> None:
    """A script with a key cannot hold a gateway's sockets without end: past
    ``http.ws_max_bulk_sockets_per_key`` a socket is closed 1008 before
    ``auth.ok``, other keys are unaffected, and a socket closed makes room."""
    http = {"ws_max_bulk_sockets_per_key": 2}
    names = ["script", "fleet"]
    async with gateway_and_keys(api_settings, api_entities, api_pool, http, names) as (
        gateway,
        (script, fleet),
    ):
        held = [await bulk_socket(gateway, script) for _ in range(2)]
        for _ in range(3):
            async with websockets.connect(gateway.ws_url + "/locations") as ws:
                await ws.send(json.dumps({"type": "auth", "data": {"token": script}}))
                assert await closed_with(ws, 5) == 1008
                assert ws.close_reason == KEY_CAP_REASON
        # The sockets it holds still carry fixes, and another key opens its own.
        outcome = await send_batch(held[0], [fix(uuid4(), random_point())])
        assert outcome["accepted"] == 1
        other = [await bulk_socket(gateway, fleet) for _ in range(2)]
        # One closed, one more opens (the count is given back, eventually: the
        # server sees the close after the client does).
        await held.pop().close()

        async def reopened() -> bool:
            ws = await websockets.connect(gateway.ws_url + "/locations")
            await ws.send(json.dumps({"type": "auth", "data": {"token": script}}))
            try:
                assert json.loads(await ws.recv())["type"] == "auth.ok"
            except websockets.ConnectionClosed:
                assert ws.close_code == 1008
                return False
            held.append(ws)
            return True

        assert await eventually(reopened, timeout_s=5)
        assert len(held) == 2
        for ws in held + other:
            await ws.close()
