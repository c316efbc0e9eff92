"""LocationIngest's Redis writes (``gateway.locations``): the newest fix per subject,
at most every ``latest_every_s``, never an older one over a newer; and its sampled
history, spread over each period; with fake ports and a fake clock (pure: no
Redis, no MongoDB)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from actors.subject import SubjectRole
from cluster.client import EntityClient
from config.settings import GeofenceSettings
from gateway import locations
from gateway.locations import (
    HISTORY_PER_WRITE,
    HISTORY_WAITING_MAX,
    LocationIngest,
    Sighting,
    history_write_max,
    next_sample_at,
)
from geo.fences import Fix

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class FakeLatest:
    """Records each ``store_latest`` call: (role, subject id, latitude) per subject."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[str, UUID, float]]] = []

    async def store_latest(self, latest: Sequence[tuple[str, str, bytes]], ttl_s: int) -> None:
        self.writes.append([(r, UUID(i), orjson.loads(v)["latitude"]) for r, i, v in latest])


class FakeHistory:
    """Records each ``record`` call: the subjects sampled."""

    def __init__(self) -> None:
        self.records: list[list[UUID]] = []

    async def record(self, samples: Sequence[tuple[UUID, datetime, Any]]) -> None:
        self.records.append([subject for subject, _at, _data in samples])


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Reported:
    def __init__(self, latitude: float) -> None:
        self.latitude = latitude
        self.longitude = 13.4
        self.accuracy_m: float | None = 5.0
        self.heading: float | None = None
        self.speed_mps: float | None = None
        self.recorded_at: datetime | None = None


def seen(subject: UUID, latitude: float, seconds: float) -> Sighting:
    at = T0 + timedelta(seconds=seconds)
    fix = Fix(latitude, 13.4, 5.0, at)
    return Sighting(SubjectRole.USER, fix, Reported(latitude), at, f"user:{subject}")


def ingest(
    every_s: float, history: FakeHistory | None = None, history_every_s: float = 3600
) -> tuple[LocationIngest, FakeLatest, FakeClock]:
    port, clock = FakeLatest(), FakeClock()
    made = LocationIngest(
        GeofenceSettings(latest_every_s=every_s, history_every_s=history_every_s),
        latest=lambda: port,
        entities=lambda: None,
        history=lambda: history,
        location_ttl_s=60,
        monotonic=clock,
    )
    return made, port, clock


async def test_flushes_within_the_period_write_each_subjects_newest_once() -> None:
    made, port, clock = ingest(0.5)
    a, b = uuid4(), uuid4()
    for fix in (seen(a, 1.0, 1), seen(b, 2.0, 1)):
        assert made.submit(fix)
    await made.flush(write_latest=False)  # the first write is due at once
    assert port.writes == [[("user", a, 1.0), ("user", b, 2.0)]]
    clock.now += 0.1
    made.submit(seen(a, 1.1, 2))
    await made.flush(write_latest=False)
    made.submit(seen(a, 1.2, 3))
    made.submit(seen(a, 0.9, 0.5))  # older than what was written: never written
    await made.flush(write_latest=False)
    assert len(port.writes) == 1  # within 0.5 s of the last write
    clock.now += 0.5
    await made.flush(write_latest=False)
    assert port.writes[1] == [("user", a, 1.2)]


async def test_a_forced_flush_and_a_zero_period_write_at_once() -> None:
    made, port, _clock = ingest(0.5)
    a = uuid4()
    made.submit(seen(a, 1.0, 1))
    await made.flush(write_latest=False)
    made.submit(seen(a, 1.5, 2))
    await made.flush()  # e.g. on the way out
    assert [w[0][2] for w in port.writes] == [1.0, 1.5]
    every, every_port, _ = ingest(0.0)
    for n in range(3):
        every.submit(seen(a, float(n), n))
        await every.flush(write_latest=False)
    assert len(every_port.writes) == 3


async def test_each_subject_is_paced_on_its_own_clock() -> None:
    """A subject's newest waits for its own period, not another's: the writes
    stay spread over the flushes instead of coming as one burst per period."""
    made, port, clock = ingest(1.0)
    a, b = uuid4(), uuid4()
    made.submit(seen(a, 1.0, 1))
    await made.flush(write_latest=False)  # a: written at 100.0
    clock.now += 0.4
    made.submit(seen(a, 1.1, 2))
    made.submit(seen(b, 2.0, 2))
    await made.flush(write_latest=False)  # b is new: written at once; a waits
    assert port.writes == [[("user", a, 1.0)], [("user", b, 2.0)]]
    clock.now += 0.6  # 101.0: a's period is over, b's is not
    made.submit(seen(b, 2.1, 3))
    await made.flush(write_latest=False)
    assert port.writes[2:] == [[("user", a, 1.1)]]
    clock.now += 0.4  # 101.4: b's too
    await made.flush(write_latest=False)
    assert port.writes[3:] == [[("user", b, 2.1)]]
    await made.flush(write_latest=False)
    assert len(port.writes) == 4  # nothing kept: nothing written


# --- the sampled history (``location_events``) ---------------------------------------


def test_a_subjects_next_sample_ends_its_own_period() -> None:
    key = f"user:{uuid4()}"
    due = next_sample_at(100.0, key, 30.0)
    assert 100.0 < due <= 130.0
    # Within the period, the same end; at its end, one period on.
    assert next_sample_at(due - 0.001, key, 30.0) == pytest.approx(due)
    assert next_sample_at(due, key, 30.0) == pytest.approx(due + 30.0)
    for _ in range(1000):  # never now or before, rounding or not
        other = f"user:{uuid4()}"
        at = next_sample_at(100.0, other, 30.0)
        assert next_sample_at(at, other, 30.0) > at
    assert next_sample_at(100.0, key, 0.0) == 100.0  # 0: every fix


def test_subjects_that_began_together_are_sampled_spread_over_the_period() -> None:
    dues = sorted(next_sample_at(100.0, f"user:{uuid4()}", 30.0) for _ in range(3000))
    assert dues[0] > 100.0
    assert dues[-1] <= 130.0
    # About a tenth in each tenth of the period (not all at its end).
    per_tenth = [sum(100 + 3 * k < d <= 103 + 3 * k for d in dues) for k in range(10)]
    assert min(per_tenth) > 200, per_tenth


def history_ingest() -> tuple[LocationIngest, FakeHistory, FakeClock]:
    history = FakeHistory()
    made, _port, clock = ingest(1.0, history, history_every_s=30.0)
    return made, history, clock


async def test_history_takes_the_first_fix_then_one_per_period() -> None:
    made, history, clock = history_ingest()
    a = uuid4()
    due = next_sample_at(clock.now, f"user:{a}", 30.0)
    for at, latitude in ((clock.now, 1.0), (due - 0.01, 1.1), (due, 1.2), (due + 1, 1.3)):
        clock.now = at
        made.submit(seen(a, latitude, at))
        await made.flush(write_latest=False)
    await made.flush()  # on the way out: whatever is waiting
    await asyncio.sleep(0)  # the history is written in the background
    assert [subject for record in history.records for subject in record] == [a, a]


async def test_history_samples_of_a_second_are_written_together() -> None:
    made, history, clock = history_ingest()
    subjects = [uuid4() for _ in range(5)]
    for subject in subjects:  # five new subjects, one flush every 0.2 s
        made.submit(seen(subject, 1.0, 1))
        await made.flush(write_latest=False)
        clock.now += 0.2
    await asyncio.sleep(0)
    assert history.records == []  # the first has waited 0.8 s
    made.submit(seen(uuid4(), 1.0, 2))
    await made.flush(write_latest=False)  # 1.0 s: written, the sixth too
    await asyncio.sleep(0)
    assert len(history.records) == 1
    assert history.records[0][:5] == subjects


def test_a_write_takes_a_thousand_samples_or_twice_the_steady_rate() -> None:
    assert history_write_max(10_000, 30.0) == HISTORY_PER_WRITE  # 333 a second
    assert history_write_max(60_000, 30.0) == 4000  # 2,000 a second, twice over
    assert history_write_max(5, 0.0) == HISTORY_WAITING_MAX  # every fix sampled


async def test_a_burst_of_first_samples_is_written_over_seconds_oldest_first() -> None:
    made, history, clock = history_ingest()
    subjects = [uuid4() for _ in range(2500)]  # 2,500 subjects beginning together
    for subject in subjects:
        made.submit(seen(subject, 1.0, 1))
    await made.flush(write_latest=False)
    written = []
    for step in (1.0, 0.5, 0.5, 1.0, 1.0):
        clock.now += step
        await made.flush(write_latest=False)
        await asyncio.sleep(0)
        written.append(sum(len(record) for record in history.records))
    # A thousand a linger, the rest a linger later; nothing twice, nothing lost.
    assert written == [1000, 1000, 2000, 2500, 2500]
    assert [subject for record in history.records for subject in record] == subjects


async def test_samples_waiting_past_the_bound_are_dropped_oldest_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(locations, "HISTORY_WAITING_MAX", 3)
    made, history, _clock = history_ingest()
    subjects = [uuid4() for _ in range(5)]
    for subject in subjects:
        made.submit(seen(subject, 1.0, 1))
    await made.flush(write_latest=False)
    assert "2 history samples dropped" in caplog.text
    await made.flush()  # on the way out: whatever is waiting
    await asyncio.sleep(0)
    assert history.records == [subjects[2:]]


async def test_batches_that_cannot_reach_a_shard_are_lost_not_the_ingest() -> None:
    """A real client with no way to any shard (this process is not connected to
    Ray, as when a shard is down and its handle unknown): each flush's batch is
    counted failed, and the ingest goes on flushing, Redis writes and all."""
    port, clock = FakeLatest(), FakeClock()
    entities = EntityClient(2, namespace="unreachable", fix_stream=False)
    made = LocationIngest(
        GeofenceSettings(latest_every_s=0, batch_linger_ms=1),
        latest=lambda: port,
        entities=lambda: entities,
        history=lambda: None,
        location_ttl_s=60,
        monotonic=clock,
    )
    running = asyncio.create_task(made.run())
    a = uuid4()
    try:
        for n in range(3):
            made.submit(seen(a, 1.0 + n, n))
            for _ in range(200):
                if len(port.writes) > n:
                    break
                await asyncio.sleep(0.005)
        assert [w[0][2] for w in port.writes] == [1.0, 2.0, 3.0]
        assert not running.done()
        assert made.carried_out == 3
        assert made.batches == {"streamed": 0, "called": 0, "failed": 3}
    finally:
        running.cancel()


async def test_a_bulk_fix_is_flushed_after_the_bulk_linger_a_phones_after_the_linger() -> None:
    """A phone's fix waits for ``batch_linger_ms`` (here a second); once a bulk
    feed's fix is queued, the flush comes ``bulk_linger_ms`` after it, and takes
    what else waits (the phone's fix too)."""
    port = FakeLatest()
    made = LocationIngest(
        GeofenceSettings(latest_every_s=0, batch_linger_ms=1000, bulk_linger_ms=5),
        latest=lambda: port,
        entities=lambda: None,
        history=lambda: None,
        location_ttl_s=60,
    )
    running = asyncio.create_task(made.run())
    phone, fleet = uuid4(), uuid4()
    try:
        await asyncio.sleep(0)  # the loop waits for its first linger
        assert made.submit(seen(phone, 1.0, 1))
        await asyncio.sleep(0.1)
        assert made.carried_out == 0  # a tenth of its linger: still waiting
        assert made.submit(seen(fleet, 2.0, 1), bulk=True)
        for _ in range(160):  # ~0.8 s, less than what is left of the linger
            if made.carried_out:
                break
            await asyncio.sleep(0.005)
        assert made.carried_out == 2
        assert sorted(entry[2] for write in port.writes for entry in write) == [1.0, 2.0]
        assert made.submit(seen(phone, 1.1, 2))  # no bulk fix waits: the linger again
        await asyncio.sleep(0.1)
        assert made.carried_out == 2
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
