"""Where a location fix's CPU goes: microseconds per fix, per process and per stage.

  .venv/bin/python bench/cpu_budget.py [--seconds 12] [--rate-hz 100] -- [bench/geofence.py flags]

Runs ``bench/geofence.py`` with the given flags (its defaults: the phone path at
10,000 fixes/s; ``--feed bulk --rate 25000`` for the bulk feed), and while it
measures, samples the gateway's and the first shard's Python stacks with
``py-spy`` (a dev dependency; ``--nonblocking``, so the processes are not
paused). Each sample is put in the first stage, from the innermost frame
outwards, whose pattern one of its frames matches (:data:`GATEWAY_STAGES`,
:data:`SHARD_STAGES`), else ``other``. A stage's share of its process's samples
times that process's CPU per fix (the bench's ``cpu_us_per_fix``, from the
processes' own CPU time over the window) is the stage's microseconds per fix.

Prints one JSON object: ``bench`` (geofence.py's object), ``gateway`` and
``shard`` (stage: µs per fix, largest first, and ``samples``), and the other
processes' µs per fix as the bench measured them. Needs ptrace rights over the
processes (root, or ``kernel.yama.ptrace_scope`` 0). Progress goes to stderr.
``--profiles DIR`` keeps the two profiles (``gateway.txt``, ``shard.txt``: one
collapsed stack and its sample count per line) for a closer look.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Final

_ROOT = Path(__file__).resolve().parent.parent
PY_SPY = _ROOT / ".venv" / "bin" / "py-spy"

#: (stage, pattern over one frame "function (path:line)"), innermost match first.
GATEWAY_STAGES: Final = (
    ("answers and pushes", r"WebSocketsSansIOProtocol\.send|_write_loop|PushHub|ws/hub\.py"),
    ("redis write", r"_store_latest|RedisLatestLocations|redis/"),
    ("ray hop", r"LocationIngest\._track|EntityClient|pack_fixes|ray/|batching\.py"),
    ("history sample", r"_sample|_write_history|LocationHistory|pymongo/"),
    ("validation", r"validate_python|read_batch|parse_client_frame|model_validate|pydantic"),
    ("fix intake", r"sighting|location_batches\.py:.*take|LocationIngest\.submit|_store_location"),
    (
        "frame receive and parse",
        r"read_frame|receive_text|_read_loop|data_received|websockets/|BulkSocket|ws/protocol",
    ),
    ("metrics and http", r"prometheus|metrics|h11|httptools"),
    ("flush loop", r"LocationIngest\.(flush|run)"),
)
SHARD_STAGES: Final = (
    ("commit", r"commit|GroupCommit|asyncpg|outbox"),
    # A batch's positions (``geo.fences.positions``) are found with its candidates.
    ("candidate zones", r"near_point|zone_index|zone_book|cell_of|h3/|positions \("),
    ("decision", r"decide|track_zones|fences\.py|subject_fences|subject\.py"),
    ("entity runtime", r"EntityHost|runtime\.py"),
    ("unpack", r"unpack_fixes|track_packed"),
    ("ray", r"ray/|Worker\.main_loop"),
)


@functools.cache
def _compiled(stages: tuple[tuple[str, str], ...]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((name, re.compile(pattern)) for name, pattern in stages)


def stage_of(frames: list[str], stages: tuple[tuple[str, str], ...]) -> str:
    """The stage of one sampled stack (outermost frame first)."""
    for frame in reversed(frames):
        for name, pattern in _compiled(stages):
            if pattern.search(frame):
                return name
    return "other"


def split(raw: str, stages: tuple[tuple[str, str], ...]) -> tuple[Counter[str], int]:
    """Samples per stage in a py-spy ``raw`` (collapsed stacks) profile, and the total."""
    counts: Counter[str] = Counter()
    total = 0
    cache: dict[str, str] = {}
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        if stack not in cache:
            cache[stack] = stage_of(stack.split(";"), stages)
        counts[cache[stack]] += int(count)
        total += int(count)
    return counts, total


def budget(counts: Counter[str], total: int, us_per_fix: float) -> dict[str, float]:
    """Each stage's microseconds per fix: its share of the samples times ``us_per_fix``."""
    if total == 0:
        return {}
    return {
        stage: round(us_per_fix * n / total, 1)
        for stage, n in sorted(counts.items(), key=lambda item: -item[1])
    }


async def _pid_of(pattern: str) -> int:
    proc = await asyncio.create_subprocess_exec(
        "pgrep", "-n", "-f", pattern, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    if not out.strip():
        raise RuntimeError(f"no process matches {pattern!r}")
    return int(out.split()[0])


async def _record(pid: int, seconds: float, rate_hz: int, out: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(PY_SPY),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(int(seconds)),
        "--rate",
        str(rate_hz),
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(out),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"py-spy failed on pid {pid}: {err.decode()[-500:]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="sampling, within the window")
    parser.add_argument("--rate-hz", type=int, default=100)
    parser.add_argument(
        "--profiles", type=Path, help="keep py-spy's collapsed stacks in this directory"
    )
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, help="-- then geofence.py flags")
    args = parser.parse_args()
    extra = [a for a in args.bench_args if a != "--"]
    bench = await asyncio.create_subprocess_exec(
        sys.executable,
        str(_ROOT / "bench" / "geofence.py"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert bench.stderr is not None
    assert bench.stdout is not None
    with tempfile.TemporaryDirectory() as scratch:
        if args.profiles is not None:
            args.profiles.mkdir(parents=True, exist_ok=True)
            scratch = str(args.profiles)
        profiles = {"gateway": Path(scratch, "gateway.txt"), "shard": Path(scratch, "shard.txt")}
        recording: list[asyncio.Task[None]] = []
        while line := await bench.stderr.readline():
            text = line.decode(errors="replace")
            print(f"[bench] {text}", end="", file=sys.stderr)
            if "measuring for" in text and not recording:
                await asyncio.sleep(1.0)  # into the window
                pids = {
                    "gateway": await _pid_of("panic-alert serve"),
                    "shard": await _pid_of("^ray::ShardActor"),
                }
                print(f"cpu_budget: sampling {pids} for {args.seconds}s", file=sys.stderr)
                recording = [
                    asyncio.create_task(
                        _record(pids[name], args.seconds, args.rate_hz, profiles[name])
                    )
                    for name in ("gateway", "shard")
                ]
        out = await bench.stdout.read()
        if await bench.wait() != 0:
            raise SystemExit(f"bench/geofence.py failed ({bench.returncode})")
        if not recording:
            raise SystemExit("the bench never started measuring")
        await asyncio.gather(*recording)
        result: dict[str, Any] = {"bench": json.loads(out)}
        per_fix = result["bench"].get("cpu_us_per_fix", {})
        for name, stages, key in (
            ("gateway", GATEWAY_STAGES, "gateway"),
            ("shard", SHARD_STAGES, "shards"),
        ):
            counts, total = split(profiles[name].read_text(), stages)
            result[name] = {
                "us_per_fix": per_fix.get(key),
                "samples": total,
                "stages_us_per_fix": budget(counts, total, per_fix.get(key, 0.0)),
            }
        result["others_us_per_fix"] = {
            k: v for k, v in per_fix.items() if k not in ("gateway", "shards")
        }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
