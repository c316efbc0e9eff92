"""cluster.tracking: fixes packed for Ray come back exact; the tracker hands each to
its subject entity with the zones near it. The host and zone book are fakes."""

from __future__ import annotations

import asyncio
import pickle
import random
from array import array
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
from shapely.geometry import box

from actors.effects import EntityKind
from actors.subject import NearZone, TrackFix
from actors.subject_state import SubjectRole, subject_key
from actors.zone_index import Nearby
from cluster.client import EntityClient
from cluster.tracking import (
    FIXES_PER_CALL,
    RAY_INLINE_BYTES,
    MalformedBatch,
    Tracker,
    pack_fixes,
    unpack_fixes,
)
from geo.cells import cell_of
from geo.fences import Fix, Zone

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def fixes(count: int, seed: int = 7) -> list[tuple[str, Fix]]:
    rng = random.Random(seed)
    return [
        (
            f"user:{UUID(int=rng.getrandbits(128))}",
            Fix(
                rng.uniform(-90, 90),
                rng.uniform(-180, 180),
                rng.choice([0.0, rng.uniform(0, 1000)]),
                T0 + timedelta(microseconds=rng.randrange(-(10**13), 10**13)),
            ),
        )
        for _ in range(count)
    ]


def test_packed_fixes_come_back_equal_to_the_microsecond() -> None:
    sent = fixes(500)
    assert unpack_fixes(pack_fixes(sent)) == sent
    assert unpack_fixes(pack_fixes([])) == []


def test_a_fix_in_another_zone_comes_back_as_the_same_instant_in_utc() -> None:
    at = datetime(2026, 11, 26, 14, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    [(_key, fix)] = unpack_fixes(pack_fixes([("agent:x", Fix(1.0, 2.0, 3.0, at))]))
    assert fix.recorded_at == at
    assert fix.recorded_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "packed",
    [
        ("a\nb", array("d", [1, 2, 3]).tobytes(), array("q", [1]).tobytes()),  # 2 keys, 1 fix
        ("a", array("d", [1, 2]).tobytes(), array("q", [1]).tobytes()),  # numbers short
        ("a", b"\x00" * 7, array("q", [1]).tobytes()),  # not whole doubles
        ("a", array("d", [1, 2, 3]).tobytes(), array("q", [2**62]).tobytes()),  # year > 9999
        ("a", b"", b""),  # a key and no fix
        (1, 2, 3),
        ("too", "few"),
        None,
    ],
)
def test_malformed_packs_are_refused(packed: Any) -> None:
    with pytest.raises(MalformedBatch):
        unpack_fixes(packed)


class FakeHost:
    """Records what the tracker enqueues; refuses keys that are not subjects' ids."""

    def __init__(self) -> None:
        self.enqueued: list[tuple[EntityKind, str, object]] = []

    def tell_each(self, kind: EntityKind, messages: Iterable[tuple[str, object]]) -> int:
        refused = 0
        for entity_id, message in messages:
            if not entity_id.startswith(("user:", "agent:")):
                refused += 1
                continue
            self.enqueued.append((kind, entity_id, message))
        return refused


class FakeZones:
    """A zone book answering every point with the same zones; one zone deleted. Its
    grid (``near_fixes``) answers ``by_grid`` (None: ask the cell) for every fix,
    the fix outside each zone."""

    def __init__(
        self, near: tuple[NearZone, ...], by_grid: tuple[NearZone, ...] | None = None
    ) -> None:
        self.near = near
        self.by_grid = by_grid
        self.asked: list[tuple[str, float, float, float]] = []
        self.asked_grid: list[tuple[float, float, float]] = []
        self.deleted = uuid4()

    def near_fixes(self, fixes: Sequence[Fix]) -> list[Nearby | None]:
        self.asked_grid.extend((f.latitude, f.longitude, f.accuracy_m) for f in fixes)
        by_grid = self.by_grid
        return [None if by_grid is None else (by_grid, (False,) * len(by_grid))] * len(fixes)

    def near_point(
        self, cell: str, latitude: float, longitude: float, accuracy_m: float
    ) -> tuple[NearZone, ...]:
        self.asked.append((cell, latitude, longitude, accuracy_m))
        return self.near

    @property
    def gone(self) -> frozenset[UUID]:
        return frozenset({self.deleted})


async def test_each_fix_goes_to_its_subject_with_the_zones_near_it() -> None:
    host, zones = FakeHost(), FakeZones(())
    tracker = Tracker(host, zones, resolution=7)
    sent = [(k, Fix(f.latitude, f.longitude, 10.0, f.recorded_at)) for k, f in fixes(20)]
    assert await tracker.track_packed_in_turns(pack_fixes(sent)) == 0
    assert [(kind, key) for kind, key, _m in host.enqueued] == [
        (EntityKind.SUBJECT, key) for key, _f in sent
    ]
    for (_kind, _key, message), (_k, fix) in zip(host.enqueued, sent, strict=True):
        assert message == TrackFix(fix, (), frozenset({zones.deleted}))
    assert [(lat, lon, acc) for _cell, lat, lon, acc in zones.asked] == [
        (f.latitude, f.longitude, 10.0) for _k, f in sent
    ]
    assert tracker.rejected == 0


async def test_bad_fixes_and_bad_batches_are_counted_and_the_rest_tracked() -> None:
    host = FakeHost()
    tracker = Tracker(host, None, resolution=7)
    good = ("user:" + str(uuid4()), Fix(1.0, 2.0, 0.0, T0))
    off_the_map = ("user:" + str(uuid4()), Fix(91.0, 2.0, 0.0, T0))
    not_a_subject = ("alert:1", Fix(1.0, 2.0, 0.0, T0))
    assert await tracker.track_packed_in_turns(pack_fixes([off_the_map, good, not_a_subject])) == 2
    assert [key for _kind, key, _m in host.enqueued] == [good[0]]
    assert await tracker.track_packed_in_turns(("a", b"", b"")) == 1
    assert tracker.rejected == 3
    assert len(host.enqueued) == 1


async def test_a_batch_in_turns_lets_the_loop_run_between_them_and_keeps_its_order() -> None:
    host = FakeHost()
    tracker = Tracker(host, None, resolution=7)
    sent = [(k, Fix(f.latitude, f.longitude, 10.0, f.recorded_at)) for k, f in fixes(7)]
    seen_meanwhile: list[int] = []

    async def meanwhile() -> None:  # e.g. an entity's commit waiting in the same loop
        seen_meanwhile.append(len(host.enqueued))

    waiting = asyncio.get_running_loop().create_task(meanwhile())
    assert await tracker.track_packed_in_turns(pack_fixes(sent), per_turn=3) == 0
    await waiting
    # It ran after the first turn of 3 fixes, not after all 7.
    assert seen_meanwhile == [3]
    assert [key for _kind, key, _m in host.enqueued] == [key for key, _f in sent]
    assert await tracker.track_packed_in_turns(("a", b"", b"")) == 1
    assert tracker.rejected == 1


async def test_a_fix_the_grid_answers_needs_no_cell_and_one_it_does_not_asks_its_cell() -> None:
    host = FakeHost()
    zone = NearZone(Zone(uuid4(), box(0, 0, 1, 1)), "safe")
    sent = [(k, Fix(f.latitude, f.longitude, 10.0, f.recorded_at)) for k, f in fixes(5)]

    by_grid = FakeZones((), by_grid=(zone,))
    tracker = Tracker(host, by_grid, resolution=7)
    assert await tracker.track_packed_in_turns(pack_fixes(sent)) == 0
    assert by_grid.asked == []
    assert len(by_grid.asked_grid) == 5
    assert all(cast(TrackFix, m).near == (zone,) for _k, _e, m in host.enqueued)
    assert all(cast(TrackFix, m).where == (False,) for _k, _e, m in host.enqueued)

    host.enqueued.clear()
    by_cell = FakeZones((zone,), by_grid=None)
    tracker = Tracker(host, by_cell, resolution=7)
    off_the_map = ("user:" + str(uuid4()), Fix(91.0, 2.0, 0.0, T0))
    assert await tracker.track_packed_in_turns(pack_fixes([*sent, off_the_map])) == 1
    assert [cell for cell, *_rest in by_cell.asked] == [
        cell_of(f.latitude, f.longitude, 7) for _k, f in sent
    ]
    assert all(cast(TrackFix, m).near == (zone,) for _k, _e, m in host.enqueued)
    assert all(cast(TrackFix, m).where is None for _k, _e, m in host.enqueued)
    assert len(host.enqueued) == 5


class FakeShardHandle:
    """A shard actor's handle whose ``track.remote`` records each packed batch."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, Fix]]] = []
        self.track = self

    def remote(self, packed: Any) -> asyncio.Future[int]:
        self.batches.append(unpack_fixes(packed))
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return done


@pytest.mark.parametrize(
    ("max_fixes", "sizes"),
    [(800, [800, 400]), (2000, [FIXES_PER_CALL, 200]), (None, [500, 500, 200])],
)
async def test_a_clients_fixes_go_in_calls_of_max_fixes_at_most_those_that_fit_inline(
    max_fixes: int | None, sizes: list[int]
) -> None:
    client = EntityClient(1, namespace="test", max_batch=500, max_fixes=max_fixes)
    shard = FakeShardHandle()
    client.handle = lambda _shard: shard  # type: ignore[method-assign]
    sent = [(k, Fix(f.latitude, f.longitude, 10.0, f.recorded_at)) for k, f in fixes(1200)]
    for key, fix in sent:
        client.track(key, fix)
    await client.flush()
    assert [len(batch) for batch in shard.batches] == sizes
    assert [pair for batch in shard.batches for pair in batch] == sent


def test_a_full_call_of_fixes_travels_inline() -> None:
    """``FIXES_PER_CALL`` fixes of the longest subject keys, packed and pickled as Ray
    pickles a call's argument, fit under Ray's inline limit with a fifth to spare."""
    longest = max(SubjectRole, key=len)
    at = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
    packed = pack_fixes(
        [(subject_key(longest, uuid4()), Fix(-33.8, 151.2, 1500.0, at))] * FIXES_PER_CALL
    )
    assert len(pickle.dumps(packed, protocol=5)) < 0.8 * RAY_INLINE_BYTES
