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
