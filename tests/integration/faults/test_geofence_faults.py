"""Geofencing across a killed shard: who is inside a zone survives the shard.

Subjects hosted by one shard step into a zone (an ``enter`` each, committed
with the subject's state), the shard is killed, and once it is back a fix
outside gives exactly one ``exit`` each: only a restored "inside" gives it (a
subject whose state was lost would take the fix as its baseline, and one
restored as outside would stay silent). Every event reaches Kafka and
MongoDB once (``check_events_delivered``).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest
import ray

from actors.effects import EntityKind
from actors.subject import SubjectRole, subject_key
from actors.zone_rules import ZoneKind, ZoneRules
from config.settings import Settings
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.fences import Fix, validate_geometry
from persistence.stores import zones
from persistence.stores.zones import ZoneFields
from tests.integration.faults.conftest import (
    FaultCluster,
    check_events_delivered,
    wait_for_restart,
)

pytestmark = pytest.mark.integration

SUBJECT = EntityKind.SUBJECT
#: A square of ~680 x 1,110 m in Berlin, and points inside and ~110 m south of it.
SQUARE = {
    "type": "Polygon",
    "coordinates": [
        [[13.40, 52.50], [13.41, 52.50], [13.41, 52.51], [13.40, 52.51], [13.40, 52.50]]
    ],
}
INSIDE = (52.505, 13.405)
OUTSIDE = (52.499, 13.405)
ACCURACY_M = 10.0


async def make_zone(pool: asyncpg.Pool, settings: Settings) -> UUID:
    geometry = validate_geometry(SQUARE)
    fields = ZoneFields(
        name="fault zone",
        kind=ZoneKind.SAFE,
        geometry=SQUARE,
        radius_m=None,
        rules=ZoneRules().to_json(),
        active=True,
        cells=covering_cells(geometry, settings.actors.region_resolution, MAX_FIX_ACCURACY_M),
    )
    return (await zones.create_zone(pool, uuid4(), fields)).id


def subjects_on(env: FaultCluster, shard: int, count: int) -> list[UUID]:
    found: list[UUID] = []
    while len(found) < count:
        subject_id = uuid4()
        if env.client.shard_of(SUBJECT, subject_key(SubjectRole.USER, subject_id)) == shard:
            found.append(subject_id)
    return found


class Walker:
    """Fixes for subjects, each newer than the last (fire-and-forget, as the gateway sends)."""

    def __init__(self, env: FaultCluster) -> None:
        self._env = env
        # After the zone was made: a fix older than a zone gives a baseline, not an enter.
        self._at = datetime.now(UTC)

    def step(self, subjects: list[UUID], point: tuple[float, float]) -> None:
        self._at += timedelta(seconds=1)
        for subject_id in subjects:
            fix = Fix(point[0], point[1], ACCURACY_M, self._at)
            self._env.client.track(subject_key(SubjectRole.USER, subject_id), fix)


async def events(pool: asyncpg.Pool, subjects: list[UUID]) -> Counter[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT key, type FROM outbox WHERE topic = 'geofence-events' AND key = ANY($1)",
        [str(s) for s in subjects],
    )
    return Counter((r["key"], r["type"]) for r in rows)


async def until_events(
    pool: asyncpg.Pool, subjects: list[UUID], want: Counter[tuple[str, str]], deadline_s: float
) -> Counter[tuple[str, str]]:
    began = time.monotonic()
    seen: Counter[tuple[str, str]] = Counter()
    while time.monotonic() - began < deadline_s:
        seen = await events(pool, subjects)
        if seen == want:
            return seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"after {deadline_s}s the outbox holds {dict(seen)}, not {dict(want)}")


async def test_subjects_inside_a_zone_stay_inside_across_a_killed_shard(
    fault_cluster: FaultCluster, fault_pool: asyncpg.Pool, settings: Settings
) -> None:
    env = fault_cluster
    victim = 0
    await make_zone(fault_pool, settings)
    subjects = subjects_on(env, victim, count=8)
    walker = Walker(env)
    entered = Counter({(str(s), "geofence.enter"): 1 for s in subjects})

    # Outside, then inside until every subject has entered: the shard's zone
    # book learns of the new zone by NOTIFY, a moment after it is created.
    walker.step(subjects, OUTSIDE)
    began = time.monotonic()
    while (seen := await events(fault_pool, subjects)) != entered:
        assert time.monotonic() - began < 30, f"no enter for every subject: {dict(seen)}"
        assert all(n == 1 for n in seen.values()), f"an event twice: {dict(seen)}"
        walker.step(subjects, INSIDE)
        await asyncio.sleep(0.3)

    # Fixes go over the shard's stream (cluster.fix_stream) by now: being inside
    # again changes nothing.
    streams = env.client.fix_streams
    assert streams is not None
    async with asyncio.timeout(30):
        while not streams.is_open(victim):
            walker.step(subjects, INSIDE)
            await asyncio.sleep(0.1)

    old_pid = (await env.shards[victim].stats.remote())["pid"]
    ray.kill(env.shards[victim], no_restart=False)
    await wait_for_restart(env.shards[victim], old_pid)
    assert not streams.is_open(victim)  # it ended with the process: calls meanwhile

    # Out: one exit each, which only a restored "inside" gives (a subject
    # whose state was lost would take this fix as its baseline, silently).
    walker.step(subjects, OUTSIDE)
    both = entered + Counter({(str(s), "geofence.exit"): 1 for s in subjects})
    await until_events(fault_pool, subjects, both, deadline_s=30)
    # Nothing more trails in (a late duplicate would show here).
    await asyncio.sleep(1.0)
    assert await events(fault_pool, subjects) == both
    for subject_id in subjects:
        state = await env.shards[victim].inspect.remote(
            SUBJECT, subject_key(SubjectRole.USER, subject_id)
        )
        assert state is not None
        assert not state.presence.inside

    await check_events_delivered(
        settings, fault_pool, [str(s) for s in subjects], ("geofence-events",), "geofence_events"
    )
