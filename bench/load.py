"""A lean open-loop HTTP/1.1 load generator for the benchmarks.

The benchmarks run on the same 2 cores as the system they measure, so the
load generator must cost little: httpx spent ~4.6 ms of CPU per request at
150 requests/s (70 % of a core), which starved the gateway and showed up as
its latency. This client writes prepared request bytes on keep-alive
loopback connections and parses only the status line, ``Content-Length``
and ``Connection``; about a tenth of that CPU.

Open loop: request ``n`` is due at ``start + n / rate`` whatever earlier
answers do, and its latency counts from that due time, so a slow server is
not hidden by a client that waits for it (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import json
import multiprocessing
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvloop

#: Idle keep-alive connections older than this are not reused.
MAX_IDLE_S = 2.0


def request_bytes(
    method: str, path: str, host: str, headers: Mapping[str, str], body: Any = None
) -> bytes:
    """One HTTP/1.1 request, keep-alive, with a JSON body when ``body`` is given."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    #: (due time in seconds from the start, latency in ms) per answered request.
    samples: list[tuple[float, float]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


class HttpLoad:
    """Keep-alive connections to one ``host:port``, reused across requests."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
        self._all: list[asyncio.StreamWriter] = []

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send ``raw`` and return the status and body of its answer."""
        # Most recently used first; one idle for longer than the server's
        # keep-alive (uvicorn: 5 s) may be closing, so it is dropped, not reused.
        while self._idle and time.monotonic() - self._idle[-1][2] > MAX_IDLE_S:
            self._idle.pop()[1].close()
        if self._idle:
            reader, writer, _ = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port, limit=2**20)
            self._all.append(writer)
        writer.write(raw)
        status = int((await reader.readline()).split()[1])
        length = 0
        close = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        body = await reader.readexactly(length)
        if close:
            writer.close()
        else:
            self._idle.append((reader, writer, time.monotonic()))
        return status, body

    async def open_loop(
        self, requests: Callable[[int], bytes], rate: float, total: int
    ) -> LoadResult:
        """Send ``requests(n)`` for n < total at ``rate`` per second."""
        result = LoadResult()
        start = time.perf_counter()

        async def one(n: int, due: float) -> None:
            try:
                status, _ = await self.request(requests(n))
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
                name = type(exc).__name__
                result.errors[name] = result.errors.get(name, 0) + 1
                return
            result.statuses[status] = result.statuses.get(status, 0) + 1
            latency_ms = (time.perf_counter() - due) * 1000
            result.latencies_ms.append(latency_ms)
            result.samples.append((due - start, latency_ms))

        tasks = []
        for n in range(total):
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n, due)))
        await asyncio.gather(*tasks)
        return result

    async def close(self) -> None:
        for writer in self._all:
            writer.close()
        self._all.clear()
        self._idle.clear()


def _open_loop_here(
    host: str, port: int, prepared: Sequence[bytes], rate: float, total: int
) -> LoadResult:
    # The client's own garbage collections would delay sends, and latency
    # counts from each request's due time: none during a run this short.
    gc.collect()
    gc.freeze()
    gc.disable()

    async def run() -> LoadResult:
        load = HttpLoad(host, port)
        try:
            return await load.open_loop(lambda n: prepared[n % len(prepared)], rate, total)
        finally:
            await load.close()

    return uvloop.run(run())  # cheaper per request than asyncio's own loop


async def open_loop_in_process(
    host: str, port: int, prepared: Sequence[bytes], rate: float, total: int
) -> LoadResult:
    """``HttpLoad.open_loop`` over ``prepared`` requests (cycled), in a process of its own.

    A benchmark that also holds many sockets (agents) would otherwise share
    its event loop with the load: any burst of work on those sockets delays
    the requests' sending, and their latency (counted from the due time)
    would measure the client instead of the server.
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return await asyncio.get_running_loop().run_in_executor(
            pool, _open_loop_here, host, port, list(prepared), rate, total
        )
