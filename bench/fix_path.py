"""A location fix's Python on each side, without services: prints one JSON object.

  .venv/bin/python bench/fix_path.py [--repeats 5] [--zones 10000] [--subjects 10000]
  .venv/bin/python bench/fix_path.py --instructions [--rounds 4]

``bench/geofence.py`` measures the whole system, whose figures move by several
thousand fixes a second from one run to the next on a 2-core machine. This
measures the two pure-Python paths every fix takes, one process and no I/O,
so a change to either can be compared run against run (issue 20):

- ``tracking_us_per_fix``: the shard's side, ``cluster.tracking.Tracker``
  over packed batches of 500 fixes (as they cross Ray), into a real
  ``actors.runtime.EntityHost`` and ``actors.zone_book.ZoneBook`` holding
  ``bench/geofence.py``'s zones and walkers (same generator and seed), with
  the in-memory store of ``tests/fakes`` (a fake: commits cost nothing here);
  the walkers' subjects are loaded first, as a running shard's are;
- ``intake_us_per_fix``: the gateway's side of the bulk feed, a ``locations``
  frame of 500 fixes read (``gateway.ws.frames.read_envelope``), validated and
  queued (``gateway.location_batches.receive``) and flushed
  (``LocationIngest.flush``) with no shard and a Redis port that stores nothing;
- ``new_bucket_us``: one fix in a bucket of the zone book's grid that no fix
  has used yet (``ZoneBook.near_fix``), as walkers entering new ground cost.

The heap made before measuring (the zone book) is frozen first, as the shard
and the gateway freeze theirs (``config.heap``). Each is CPU time
(``time.process_time``) per fix, the minimum, median and
maximum over ``--repeats`` runs. Not a substitute for the system bench: Ray,
the sockets, the commits and the other processes are left out. Progress goes
to stderr.

CPU time on a shared virtual machine moves by 10-20 % from one run to the
next, and by as much between its two cores: more than most changes to one
of these paths (on 2026-12-07, runs of two commits made at once, one on each
core and swapped each round, came out 8.4-12.0 µs per fix either way, the
faster of the two changing from round to round). With
``--instructions`` each path runs once in a child process under valgrind's
callgrind, counting the instructions of the measured part only (the child
says when it begins and ends; ``callgrind_control`` turns counting on and off
in between) with a fixed ``PYTHONHASHSEED``: the same code gives the same count
to a fraction of a percent, so a change of 1 % shows. Instructions are not
time (a cache miss costs no instruction), and valgrind runs the child ~50
times slower: a few minutes at ``--rounds 4``. Needs valgrind
(``apt-get install valgrind``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, cast
from uuid import UUID

# Run as a script, this file's folder would come first on sys.path and its
# name would hide the ``actors`` package; the repository root goes there instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import orjson

from actors.kinds import behaviours
from actors.runtime import EntityHost
from actors.zone_book import ZoneBook, ZoneFeed
from actors.zone_rules import ZoneKind
from bench.geofence import SPAN_M, offset, zone_feature
from bench.live import progress
from cluster.tracking import PackedFixes, Tracker, pack_fixes
from config.heap import freeze_startup_heap
from config.settings import GeofenceSettings
from gateway.location_batches import receive
from gateway.locations import LocationIngest
from gateway.ws.frames import FrameError, read_envelope
from geo.fences import Fix
from panic_alert.compiled import compiled
from persistence.stores.zones import ZoneRecord
from tests.fakes.entities import FakeEntityStore, FakeLocalRouter, FakePushSink

T0 = datetime(2026, 12, 5, 12, tzinfo=UTC)
BATCH = 500
#: Seconds between two fixes of one walker (the bulk feed at 40,000/s over 10,000).
STEP_S = 0.25
#: Rounds of every walker's fixes before the measured ones (loading the subjects,
#: the grid's buckets where they are, the ingest's first samples and writes).
WARM_ROUNDS = 4


class Meter(Protocol):
    """What a measured part is measured with: :meth:`start` right before it,
    :meth:`stop` right after, giving what it cost."""

    def start(self) -> None: ...

    def stop(self) -> float: ...


class CpuMeter:
    """The process's CPU seconds over the measured part."""

    def __init__(self) -> None:
        self._began = 0.0

    def start(self) -> None:
        self._began = time.process_time()

    def stop(self) -> float:
        return time.process_time() - self._began


class CallgrindHandshake:
    """The child's side of ``--instructions``: says ``ready`` (and ``done``) on
    stdout and waits for a line on stdin, while the parent turns callgrind's
    counting on (and off). Costs nothing it reports: the parent reads the count."""

    def _say(self, word: str) -> None:
        print(word, flush=True)
        sys.stdin.readline()

    def start(self) -> None:
        self._say("ready")

    def stop(self) -> float:
        self._say("done")
        return 0.0


def zone_book(zones: int, seed: int) -> ZoneBook:
    """A book holding ``bench/geofence.py``'s zones (its generator, this seed)."""
    rng = random.Random(seed)
    book = ZoneBook(
        cast(ZoneFeed, None),  # never used: the zones are applied directly
        resolution=7,
        owns=lambda _cell: True,
        tell=lambda _kind, _entity, _message: None,
    )
    records = []
    for i in range(zones):
        feature = zone_feature(rng, i)
        properties = feature["properties"]
        records.append(
            ZoneRecord(
                id=UUID(int=i + 1),
                name=properties["name"],
                kind=ZoneKind(properties["kind"]),
                geometry=feature["geometry"],
                radius_m=properties.get("radius_m"),
                rules={},
                dwell_s=None,
                active=True,
                cells=(),
                revision=1,
                created_at=T0,
                updated_at=T0,
            )
        )
    book._apply(records)
    return book


class Walkers:
    """Subjects walking straight lines at 1-15 m/s over the bench's square."""

    def __init__(self, count: int, seed: int) -> None:
        rng = random.Random(seed)
        self.keys = [f"user:{UUID(int=rng.getrandbits(128))}" for _ in range(count)]
        self._at = [
            [rng.uniform(-SPAN_M / 2, SPAN_M / 2), rng.uniform(-SPAN_M / 2, SPAN_M / 2)]
            for _ in range(count)
        ]
        self._velocity = []
        for _ in range(count):
            heading, speed = rng.uniform(0, 2 * math.pi), rng.uniform(1, 15)
            self._velocity.append((speed * math.cos(heading), speed * math.sin(heading)))

    def step(self) -> list[tuple[float, float]]:
        """Everyone's next position, ``STEP_S`` on."""
        points = []
        for at, (east, north) in zip(self._at, self._velocity, strict=True):
            at[0] += east * STEP_S
            at[1] += north * STEP_S
            points.append(offset(at[0], at[1]))
        return points


async def tracking(
    book: ZoneBook, subjects: int, rounds: int, seed: int, meter: Meter | None = None
) -> float:
    """CPU µs per fix of ``Tracker`` over ``rounds`` fixes of every walker."""
    meter = meter or CpuMeter()
    router = FakeLocalRouter()
    clock = [T0]
    host = EntityHost(
        behaviours=behaviours(),
        store=FakeEntityStore(),
        pushes=FakePushSink(),
        router=router,
        clock=lambda: clock[0],
    )
    router.host = host
    tracker = Tracker(host, book, resolution=7)
    walkers = Walkers(subjects, seed)

    def packs(at: datetime) -> list[PackedFixes]:
        fixes = [
            (k, Fix(lat, lon, 10.0, at))
            for k, (lat, lon) in zip(walkers.keys, walkers.step(), strict=True)
        ]
        return [pack_fixes(fixes[i : i + BATCH]) for i in range(0, len(fixes), BATCH)]

    for n in range(WARM_ROUNDS):  # load every subject, and the buckets where they are
        clock[0] = T0 + timedelta(seconds=n * STEP_S)
        for packed in packs(clock[0]):
            await tracker.track_packed_in_turns(packed)
        await asyncio.sleep(0.05)
    times = [T0 + timedelta(seconds=(WARM_ROUNDS + n) * STEP_S) for n in range(rounds)]
    timed = [(at, packs(at)) for at in times]
    meter.start()
    for at, batches in timed:
        clock[0] = at
        for packed in batches:
            await tracker.track_packed_in_turns(packed)
        await asyncio.sleep(0)
    return meter.stop() / (subjects * rounds) * 1e6


class _NoRedis:
    async def store_latest(self, latest: Any, ttl_s: int) -> None:
        return None


async def intake(subjects: int, rounds: int, seed: int, meter: Meter | None = None) -> float:
    """CPU µs per fix of reading, validating, queueing and flushing bulk frames, once
    every walker has sent ``WARM_ROUNDS`` fixes (its first history sample and first
    newest-position write, once per subject in a running gateway, are not measured).
    The ingest's clock moves ``STEP_S`` a round, not with the wall: its writes fall
    due as in a gateway taking a round every ``STEP_S``, however slowly this runs
    (under callgrind, fifty times slower, they would fall due far more often)."""
    meter = meter or CpuMeter()
    settings = GeofenceSettings()
    clock = [0.0]
    ingest = LocationIngest(
        settings,
        latest=lambda: _NoRedis(),
        entities=lambda: None,
        history=lambda: None,
        location_ttl_s=3600,
        monotonic=lambda: clock[0],
    )
    walkers = Walkers(subjects, seed)
    ids = [key.partition(":")[2] for key in walkers.keys]
    rounds_of_frames: list[list[str]] = []
    began = datetime.now(UTC)
    for n in range(WARM_ROUNDS + rounds):
        recorded = (began + timedelta(seconds=n * STEP_S)).isoformat()
        fixes = [
            {
                "subject_id": i,
                "latitude": lat,
                "longitude": lon,
                "accuracy_m": 10,
                "recorded_at": recorded,
            }
            for i, (lat, lon) in zip(ids, walkers.step(), strict=True)
        ]
        frames = []
        for start in range(0, len(fixes), BATCH):
            body = {
                "type": "locations",
                "id": str(start),
                "data": {"fixes": fixes[start : start + BATCH]},
            }
            frames.append(orjson.dumps(body).decode())
        rounds_of_frames.append(frames)

    async def take(frames: list[str]) -> int:
        taken = 0
        for text in frames:
            frame = read_envelope(text)
            assert not isinstance(frame, FrameError)
            taken += receive(frame.data, settings, ingest, datetime.now(UTC)).accepted
            await ingest.flush(write_latest=False)
        clock[0] += STEP_S
        return taken

    for frames in rounds_of_frames[:WARM_ROUNDS]:
        await take(frames)
    meter.start()
    taken = 0
    for frames in rounds_of_frames[WARM_ROUNDS:]:
        taken += await take(frames)
    spent = meter.stop()
    assert taken == subjects * rounds, f"{taken} of {subjects * rounds} fixes taken"
    return spent / taken * 1e6


def new_buckets(book: ZoneBook, count: int, seed: int, meter: Meter | None = None) -> float | None:
    """CPU µs of a fix whose bucket of the book's grid nobody used yet (None for a
    book without the grid: this script run against an older checkout)."""
    if not hasattr(book, "near_fix"):
        return None
    rng = random.Random(seed)
    book._everywhere = None  # a fresh grid, as after a zone change
    book.near_fix(*offset(0.0, 0.0), 5.0)
    points = [
        offset(rng.uniform(-SPAN_M / 2, SPAN_M / 2), rng.uniform(-SPAN_M / 2, SPAN_M / 2))
        for _ in range(count)
    ]
    meter = meter or CpuMeter()
    meter.start()
    for lat, lon in points:
        book.near_fix(lat, lon, 5.0)
    return meter.stop() / count * 1e6


def spread(values: list[float | None]) -> dict[str, float] | None:
    """Min, median and max of ``values`` (None when there are none)."""
    known = [v for v in values if v is not None]
    if len(known) < len(values) or not known:
        return None
    return {
        "min": round(min(known), 2),
        "median": round(statistics.median(known), 2),
        "max": round(max(known), 2),
    }


#: The parts ``--instructions`` counts, each in a child of its own: the fixes it
#: measures come from the arguments (``new_bucket``: ``NEW_BUCKETS`` fixes).
SECTIONS = ("tracking", "intake", "new_bucket")
NEW_BUCKETS = 3000


async def run_section(section: str, args: argparse.Namespace, meter: Meter) -> float | None:
    """One measured part, with ``meter``; its figure per fix (µs with a ``CpuMeter``)."""
    if section == "intake":
        freeze_startup_heap("fix_path")  # as the timed runs are, and the gateway is
        return await intake(args.subjects, args.rounds, seed=args.seed, meter=meter)
    book = zone_book(args.zones, seed=1)
    freeze_startup_heap("fix_path")
    if section == "tracking":
        return await tracking(book, args.subjects, args.rounds, seed=args.seed, meter=meter)
    return new_buckets(book, NEW_BUCKETS, seed=args.seed, meter=meter)


def count_instructions(section: str, args: argparse.Namespace) -> float:
    """Instructions per fix of ``section``, counted by callgrind in a child process
    (see the module), only between the child's ``ready`` and ``done``."""
    fixes = NEW_BUCKETS if section == "new_bucket" else args.subjects * args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
            f"--log-file={tmp}/valgrind.log",
            sys.executable,
            __file__,
            "--section",
            section,
            f"--zones={args.zones}",
            f"--subjects={args.subjects}",
            f"--rounds={args.rounds}",
            f"--seed={args.seed}",
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        child = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert child.stdin is not None
        assert child.stdout is not None
        for word, switch in (("ready", "on"), ("done", "off")):
            said = child.stdout.readline().strip()
            if said != word:
                child.kill()
                log = Path(tmp, "valgrind.log").read_text(errors="replace")[-2000:]
                raise SystemExit(f"{section}: the child said {said!r}, not {word!r}\n{log}")
            subprocess.run(
                ["callgrind_control", "--instr=" + switch, str(child.pid)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            child.stdin.write("\n")
            child.stdin.flush()
        if child.wait() != 0:
            raise SystemExit(f"{section}: the child failed ({child.returncode})")
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1]) / fixes
    raise SystemExit(f"{section}: callgrind wrote no totals")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument(
        "--rounds", type=int, default=None, help="fixes per subject, timed (12; 4 counted)"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per fix under callgrind instead of timing (see above)",
    )
    parser.add_argument(
        "--only", choices=SECTIONS, action="append", help="with --instructions: count these"
    )
    parser.add_argument("--seed", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args()
    if args.rounds is None:
        args.rounds = 4 if args.instructions or args.section else 12
    if args.section is not None:
        await run_section(args.section, args, CallgrindHandshake())
        return
    if args.instructions:
        counted: dict[str, Any] = {
            "compiled": compiled(),
            "zones": args.zones,
            "subjects": args.subjects,
            "rounds": args.rounds,
        }
        for section in args.only or SECTIONS:
            progress("fix_path", f"counting {section}'s instructions under callgrind")
            counted[f"{section}_instructions_per_fix"] = round(count_instructions(section, args))
        print(json.dumps(counted))
        return
    progress("fix_path", f"{args.zones} zones")
    book = zone_book(args.zones, seed=1)
    # As the shard and the gateway run: the heap made at start frozen, young
    # collections rarer (``config.heap``; also less noise between runs).
    freeze_startup_heap("fix_path")
    results: dict[str, list[float | None]] = {"tracking": [], "intake": [], "new_bucket": []}
    for n in range(args.repeats):
        progress("fix_path", f"repeat {n + 1} of {args.repeats}")
        results["tracking"].append(await tracking(book, args.subjects, args.rounds, seed=2 + n))
        results["intake"].append(await intake(args.subjects, args.rounds, seed=2 + n))
        results["new_bucket"].append(new_buckets(book, NEW_BUCKETS, seed=2 + n))
    print(
        json.dumps(
            {
                "compiled": compiled(),
                "zones": args.zones,
                "subjects": args.subjects,
                "rounds": args.rounds,
                "repeats": args.repeats,
                "tracking_us_per_fix": spread(results["tracking"]),
                "intake_us_per_fix": spread(results["intake"]),
                "new_bucket_us": spread(results["new_bucket"]),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
