"""LocationIngest's Redis writes (``gateway.locations``): the newest fix per subject,
at most every ``latest_every_s``, never an older one over a newer; with a fake port
and a fake clock (pure: no Redis)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import orjson

from actors.subject import SubjectRole
from config.settings import GeofenceSettings
from gateway.locations import LocationIngest, Sighting
from geo.fences import Fix

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


class FakeLatest:
    """Records each ``store_latest`` call: (role, subject id, latitude) per subject."""

    def __init__(self) -> None:
        self.writes: list[list[tuple[str, UUID, float]]] = []

    async def store_latest(self, latest: Sequence[tuple[str, str, bytes]], ttl_s: int) -> None:
        self.writes.append([(r, UUID(i), orjson.loads(v)["latitude"]) for r, i, v in latest])


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


def ingest(every_s: float) -> tuple[LocationIngest, FakeLatest, FakeClock]:
    port, clock = FakeLatest(), FakeClock()
    made = LocationIngest(
        GeofenceSettings(latest_every_s=every_s, history_every_s=3600),
        latest=lambda: port,
        entities=lambda: None,
        history=lambda: None,
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
