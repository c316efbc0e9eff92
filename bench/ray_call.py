"""What one Ray call of packed location fixes costs each side, by batch size: prints JSON.

  .venv/bin/python bench/ray_call.py [--fixes 125,500,1000,1300,1400,2000,4000]
                                     [--in-flight 4] [--fixes-per-size 400000] [--stream]

A gateway sends its fixes to a shard as ``cluster.tracking.pack_fixes`` batches
(``EntityClient.track``). Ray sends a call's argument inline, in the call's own
message, up to its ``max_direct_call_object_size`` (100 KiB); a larger one it
first puts in the object store, through the raylet. This starts a local Ray
of its own (2 CPUs, no dashboard) and one async actor whose method only takes
the batch, then for each size in ``--fixes`` makes calls of that many fixes
(subject keys as long as real ones) with ``--in-flight`` unanswered at a time,
as a gateway does, until ``--fixes-per-size`` fixes (at least 50 calls) are
sent. For each size: the packed bytes, and per call the wall time, the time
``.remote()`` held the caller, the caller's CPU (its process, Ray's
threads included) and the callee's (the actor's process, read through a call
before and after). Why ``cluster.tracking.FIXES_PER_CALL`` is what it is
(issue 20).

``--stream`` sends the same batches to the same actor over the stream the
gateways use (``cluster.fix_stream``: its listener on loopback, its wire; each
batch answered with 4 bytes, ``--in-flight`` unanswered at a time): what the
hop costs without Ray's task machinery.
``remote_ms_per_call`` is then the time the write held the caller. Progress
goes to stderr.
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

from cluster.fix_stream import Address, FixStreamServer, encode_batch
from cluster.tracking import PackedFixes, pack_fixes
from geo.fences import Fix


@ray.remote
class _Taker:
    """The callee: takes a batch and answers its size, through Ray or over a stream."""

    async def track(self, packed: PackedFixes) -> int:
        return len(packed[2]) // 8

    async def cpu_s(self) -> float:
        """This process's CPU time so far (Ray's threads included)."""
        return time.process_time()

    async def listen(self) -> Address:
        """Take the same batches over the shards' stream (``cluster.fix_stream``'s
        listener, on loopback) too; returns where (``--stream``)."""
        self._server = FixStreamServer(self.track, "127.0.0.1")  # kept for the actor's life
        return await self._server.address()


def batch(fixes: int) -> PackedFixes:
    at = datetime.now(UTC)
    return pack_fixes([(f"agent:{uuid4()}", Fix(-33.8, 151.2, 10.0, at)) for _ in range(fixes)])


async def measure(
    taker: Any, fixes: int, in_flight: int, total: int, stream: tuple[Any, Any] | None
) -> dict[str, Any]:
    """Calls of ``fixes`` fixes, ``in_flight`` unanswered at a time: through Ray, or
    over ``stream`` (a reader and writer connected to ``_Taker.listen``)."""
    packed = batch(fixes)
    calls = max(50, total // fixes)
    pending: deque[Any] = deque()
    held = 0.0
    callee_before = await taker.cpu_s.remote()
    began, began_cpu = time.perf_counter(), time.process_time()
    if stream is None:
        for _ in range(calls):
            before = time.perf_counter()
            pending.append(taker.track.remote(packed))
            held += time.perf_counter() - before
            if len(pending) >= in_flight:
                await pending.popleft()
        while pending:
            await pending.popleft()
    else:
        reader, writer = stream
        message = encode_batch(packed)
        unanswered = 0
        for _ in range(calls):
            before = time.perf_counter()
            writer.write(message)
            held += time.perf_counter() - before
            unanswered += 1
            if unanswered >= in_flight:
                await reader.readexactly(4)
                unanswered -= 1
        await writer.drain()
        for _ in range(unanswered):
            await reader.readexactly(4)
    wall, cpu = time.perf_counter() - began, time.process_time() - began_cpu
    callee = await taker.cpu_s.remote() - callee_before
    return {
        "fixes": fixes,
        "bytes": sum(len(part) for part in packed),
        "calls": calls,
        "wall_ms_per_call": round(wall / calls * 1e3, 3),
        "remote_ms_per_call": round(held / calls * 1e3, 3),
        "caller_cpu_ms_per_call": round(cpu / calls * 1e3, 3),
        "callee_cpu_ms_per_call": round(callee / calls * 1e3, 3),
        "fixes_per_s": round(fixes * calls / wall),
    }


async def run(
    sizes: list[int], in_flight: int, total: int, *, stream: bool
) -> list[dict[str, Any]]:
    taker = _Taker.remote()  # type: ignore[attr-defined]
    await taker.track.remote(batch(1))
    connection = None
    if stream:
        host, port, token = await taker.listen.remote()
        connection = await asyncio.open_connection(host, port)
        connection[1].write(token)
    results = []
    try:
        for fixes in sizes:
            how = "over a stream" if stream else "per Ray call"
            print(f"bench/ray_call: {fixes} fixes {how}", file=sys.stderr, flush=True)
            results.append(await measure(taker, fixes, in_flight, total, connection))
    finally:
        if connection is not None:
            connection[1].close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", default="125,500,1000,1300,1400,2000,4000")
    parser.add_argument("--in-flight", type=int, default=4)
    parser.add_argument("--fixes-per-size", type=int, default=400_000)
    parser.add_argument(
        "--stream",
        action="store_true",
        help="the same batches over a plain TCP stream to the same actor, not Ray calls",
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.fixes.split(",") if n.strip()]
    if not sizes or min(sizes) < 1 or args.in_flight < 1 or args.fixes_per_size < 1:
        parser.error("--fixes wants positive sizes; --in-flight and --fixes-per-size >= 1")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        results = asyncio.run(run(sizes, args.in_flight, args.fixes_per_size, stream=args.stream))
    finally:
        ray.shutdown()
    transport = "stream" if args.stream else "ray"
    print(json.dumps({"transport": transport, "in_flight": args.in_flight, "sizes": results}))


if __name__ == "__main__":
    main()
