"""What one Ray call of packed location fixes costs its caller, by batch size: prints JSON.

  .venv/bin/python bench/ray_call.py [--fixes 125,500,1000,1300,1400,2000,4000]
                                     [--in-flight 4] [--fixes-per-size 400000]

A gateway sends its fixes to a shard as ``cluster.tracking.pack_fixes`` batches
(``EntityClient.track``). Ray sends a call's argument inline, in the call's own
message, up to its ``max_direct_call_object_size`` (100 KiB); a larger one it
first puts in the object store, through the raylet. This starts a local Ray
of its own (2 CPUs, no dashboard) and one async actor whose method only takes
the batch, then for each size in ``--fixes`` makes calls of that many fixes
(subject keys as long as real ones) with ``--in-flight`` unanswered at a time,
as a gateway does, until ``--fixes-per-size`` fixes (at least 50 calls) are
sent. For each size: the packed bytes, and per call the wall time, the time
``.remote()`` held the caller, and the caller's CPU (its process, Ray's
threads included). Why ``cluster.tracking.FIXES_PER_CALL`` is what it is
(issue 20). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

# Run as a script, this file's folder would come first on sys.path and its
# ``actors.py`` would hide the ``actors`` package; the repository root goes there instead.
_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]

import ray

from cluster.tracking import PackedFixes, pack_fixes
from geo.fences import Fix


@ray.remote
class _Taker:
    async def track(self, packed: PackedFixes) -> int:
        return len(packed[2]) // 8


def batch(fixes: int) -> PackedFixes:
    at = datetime.now(UTC)
    return pack_fixes([(f"agent:{uuid4()}", Fix(-33.8, 151.2, 10.0, at)) for _ in range(fixes)])


async def measure(taker: Any, fixes: int, in_flight: int, total: int) -> dict[str, Any]:
    packed = batch(fixes)
    calls = max(50, total // fixes)
    pending: deque[Any] = deque()
    held = 0.0
    began, began_cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        before = time.perf_counter()
        pending.append(taker.track.remote(packed))
        held += time.perf_counter() - before
        if len(pending) >= in_flight:
            await pending.popleft()
    while pending:
        await pending.popleft()
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    return {
        "fixes": fixes,
        "bytes": sum(len(part) for part in packed),
        "calls": calls,
        "wall_ms_per_call": round(wall / calls * 1e3, 3),
        "remote_ms_per_call": round(held / calls * 1e3, 3),
        "caller_cpu_ms_per_call": round(cpu / calls * 1e3, 3),
        "fixes_per_s": round(fixes * calls / wall),
    }


async def run(sizes: list[int], in_flight: int, total: int) -> list[dict[str, Any]]:
    taker = _Taker.remote()  # type: ignore[attr-defined]
    await taker.track.remote(batch(1))
    results = []
    for fixes in sizes:
        print(f"bench/ray_call: {fixes} fixes per call", file=sys.stderr, flush=True)
        results.append(await measure(taker, fixes, in_flight, total))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", default="125,500,1000,1300,1400,2000,4000")
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--fixes-per-size", type=int, default=400_000)
    args = parser.parse_args()
    sizes = [int(n) for n in args.fixes.split(",") if n.strip()]
    if not sizes or min(sizes) < 1 or args.in_flight < 1 or args.fixes_per_size < 1:
        parser.error("--fixes wants positive sizes; --in-flight and --fixes-per-size >= 1")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        results = asyncio.run(run(sizes, args.in_flight, args.fixes_per_size))
    finally:
        ray.shutdown()
    print(json.dumps({"in_flight": args.in_flight, "sizes": results}))


if __name__ == "__main__":
    main()
