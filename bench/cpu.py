"""CPU accounting of the system's processes, by group, for the live benchmarks.

A group is the gateways (the pids given), the shard actors, the rest of Ray,
Redis, PostgreSQL, Kafka and FerretDB, from each process's own CPU times
(user + system). A process that starts inside a window counts whole; one that
ends inside it is missed (PostgreSQL backends).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import psutil

#: pid -> (group, CPU seconds so far).
Snapshot = dict[int, tuple[str, float]]


def _group(proc: psutil.Process, gateways: set[int]) -> str | None:
    if proc.pid in gateways:
        return "gateway"
    cmdline = " ".join(proc.cmdline())
    name = proc.name()
    if cmdline.startswith("ray::ShardActor"):
        return "shards"
    if cmdline.startswith("ray::") or "ray/core/src" in cmdline or name in ("raylet", "gcs_server"):
        return "ray_other"
    for group, marks in (
        ("redis", ("redis-server",)),
        ("postgres", ("postgres",)),
        ("kafka", ("kafka.Kafka",)),
        ("ferretdb", ("ferretdb",)),
    ):
        if any(mark in cmdline or mark == name for mark in marks):
            return group
    return None


def snapshot(gateway_pids: list[int]) -> Snapshot:
    """Every process of the system by group, with its CPU seconds so far."""
    gateways = set(gateway_pids)
    seen: Snapshot = {}
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            group = _group(proc, gateways)
            if group is not None:
                times = proc.cpu_times()
                seen[proc.pid] = (group, times.user + times.system)
    return seen


def spent(first: Snapshot, last: Snapshot) -> dict[str, float]:
    """CPU seconds each group used between two snapshots."""
    used: dict[str, float] = {}
    for pid, (group, cpu) in last.items():
        before = first.get(pid)
        used[group] = used.get(group, 0.0) + cpu - (before[1] if before else 0.0)
    return dict(sorted(used.items()))


class CpuMeter:
    """CPU seconds each group of processes spends between :meth:`start` and
    :meth:`stop`; with ``own``, this process too, as the group of that name
    (a benchmark whose clients run in it)."""

    def __init__(self, gateway_pids: list[int], *, own: str | None = None) -> None:
        self._gateways = gateway_pids
        self._own = own
        self._me = psutil.Process()
        self._first: Snapshot = {}
        self._first_own = 0.0
        self._began = 0.0

    async def start(self) -> None:
        self._first = await asyncio.to_thread(snapshot, self._gateways)
        self._first_own = sum(self._me.cpu_times()[:2])
        self._began = time.perf_counter()

    async def stop(self) -> tuple[dict[str, float], float]:
        """CPU seconds per group, and the wall-clock seconds since :meth:`start`."""
        last = await asyncio.to_thread(snapshot, self._gateways)
        used = spent(self._first, last)
        if self._own is not None:
            used[self._own] = sum(self._me.cpu_times()[:2]) - self._first_own
        return used, time.perf_counter() - self._began


def cores(used: dict[str, float], seconds: float) -> dict[str, float]:
    """CPU seconds per group as cores over ``seconds`` of wall-clock time."""
    return {group: round(cpu / seconds, 3) for group, cpu in used.items()}


async def cpu_over(seconds: float, gateway_pids: list[int]) -> dict[str, float]:
    """Cores each group of processes used over the next ``seconds``."""
    meter = CpuMeter(gateway_pids)
    await meter.start()
    await asyncio.sleep(seconds)
    return cores(*await meter.stop())


# --- the machine as a whole (/proc/stat) --------------------------------------------------


def cpu_times() -> list[int]:
    """The machine's ``cpu`` line of /proc/stat: clock ticks per state since boot."""
    with open("/proc/stat") as stat_file:
        return [int(field) for field in stat_file.readline().split()[1:]]


def cpu_busy_share(before: Sequence[int], after: Sequence[int]) -> float:
    """The share of CPU time not idle between two ``cpu`` lines of /proc/stat (0..1).

    The fields are user, nice, system, idle, iowait, irq, softirq, steal, ...;
    idle and iowait count as idle. Unlike the load average, which lags by a
    minute, this says whether something is running *now*.
    """
    total = sum(after) - sum(before)
    if total <= 0:
        return 0.0
    idle = (after[3] + after[4]) - (before[3] + before[4])
    return round(max(0.0, min(1.0, 1 - idle / total)), 3)


def stolen_share(before: Sequence[int], after: Sequence[int]) -> float:
    """The share of CPU time the hypervisor gave to others between two ``cpu``
    lines of /proc/stat (0..1): steal, the eighth field, over all of them.

    On a virtual machine whose host is busy, a process that wants a core gets
    only part of it, and the benchmarks' figures drop with nothing of ours to
    blame: 19-50 % of the machine was stolen while bench/geofence.py set up
    its users in one run (2026-12-06), against under 2 % when idle. Its own
    CPU times do not show it; this does.
    """
    total = sum(after) - sum(before)
    if total <= 0 or len(after) < 8 or len(before) < 8:
        return 0.0
    return round(max(0.0, min(1.0, (after[7] - before[7]) / total)), 3)


async def machine_over(seconds: float) -> dict[str, float]:
    """The machine's busy and stolen shares of its CPU over the next ``seconds``."""
    first = cpu_times()
    await asyncio.sleep(seconds)
    last = cpu_times()
    return {"busy": cpu_busy_share(first, last), "stolen": stolen_share(first, last)}
