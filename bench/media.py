"""Benchmark of ``/media`` over real HTTP: prints one JSON object.

  .venv/bin/python bench/media.py [--repeat 5] [--rounds 3] [--big-mb 500]
      [--skip-processing] [--processing-timeout 600]

Starts ``panic-alert serve`` on a scratch database with a media root of its
own (a temporary folder, removed at the end), the per-file and per-alert
limits raised to fit ``--big-mb``, and a rate-limit key prefix of its own
(repeated runs are not throttled by earlier ones). Each uploader is a client
as API.md's are: it registers, logs in and raises an alert (``POST
/alerts``), then uploads to that alert. Files are MP4s by their first bytes
(an ``ftyp`` box, brand ``isom``) followed by seeded random bytes; every
body is streamed from a generator in 1 MB chunks (MB = 2**20 bytes here).
Every upload's answer carries the server's SHA-256 of what it stored;
``verified`` is false if any differs from the client's (or a read back
differs). The benchmark measures:

- ``upload_50mb_s`` (min/p50/max over ``--repeat``) and ``upload_50mb_mb_per_s``
  (at the p50): a raw-body upload (``?alert_id=``), from the request's first
  byte to the 201 read; ``upload_50mb_multipart_s``/``_mb_per_s`` the same as
  ``multipart/form-data`` (``alert_id`` before ``file``). Target: 1 s;
- ``concurrent4_p50_s``/``_p99_s``: each of 4 users' simultaneous 50 MB
  uploads, over ``--rounds`` rounds; ``concurrent4_mb_per_s``: the bytes of
  all rounds over their summed wall time;
- ``read_50mb_s`` (min/p50/max over ``--repeat``): ``GET /media/{id}`` of a
  50 MB file read as a stream; ``range_1mb_p50_ms``/``_max_ms``: 20 reads of
  a 1 MB range at seeded offsets (206, bytes compared with the original);
- ``rss_growth_mb_500mb_upload``: the gateway's RSS (the ``serve`` process:
  Ray workers are processes of their own) sampled every 50 ms during one
  ``--big-mb`` upload, generated as it is sent (the client holds 1 MB of it):
  the peak minus the baseline (the median of 1 s of samples just before).
  Measured first, on a gateway that has taken only a 1 MB upload (its
  one-time set-up), so buffers earlier large uploads left in the allocator
  cannot hide growth. Target: under 64 MB (streaming keeps it flat);
- ``processing_1080p_30s_s``: a 1080p 30 s H.264/AAC video made with
  ffmpeg before the timed part is uploaded; if its processing is not queued
  by the upload, ``POST /media/{id}/process`` queues it. Seconds from that
  request (or the upload's end, when the upload queued it) until
  ``GET /media/{id}/meta`` says ``done`` or ``failed`` (null if neither
  within ``--processing-timeout``); ``processing_state`` is the last state
  seen, ``processing_renditions`` what it produced.

A phase that fails records its error under ``errors`` and the others go on.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import httpx
import numpy as np
import psutil

from bench.live import live_gateway, percentile, progress
from config.settings import Settings
from gateway.auth.principal import Role
from tests.integration.api.accounts import Account, forget_accounts

MB = 1024 * 1024
CHUNK = MB
SMALL_MB = 50
TARGET_UPLOAD_50MB_S = 1.0
TARGET_RSS_GROWTH_MB = 64
RSS_EVERY_S = 0.05
RANGES = 20
PASSWORD = "bench-media-password"  # noqa: S105 - a scratch account's
#: An ISO base media ``ftyp`` box: 32 bytes, brand isom (sniffed as video/mp4).
MP4_HEAD = (32).to_bytes(4, "big") + b"ftypisom" + (0x200).to_bytes(4, "big") + b"isomiso2avc1mp41"
VIDEO_CMD = [
    *("ffmpeg", "-nostdin", "-loglevel", "error", "-y"),
    *("-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30"),
    *("-f", "lavfi", "-i", "sine=frequency=440", "-t", "30"),
    *("-c:v", "libx264", "-preset", "veryfast", "-c:a", "aac"),
]


# --- bodies -----------------------------------------------------------------------


def random_chunks(seed: int) -> Callable[[int], bytes]:
    """``take(n)``: the next ``n`` bytes of a seeded stream (SFC64; ~1 GB/s)."""
    bits = np.random.SFC64(seed)

    def take(n: int) -> bytes:
        words = bits.random_raw(-(-n // 8))
        return bytes(np.asarray(words, dtype=np.uint64).tobytes()[:n])

    return take


def small_payload(seed: int) -> bytes:
    """The 50 MB file: an MP4 head, then seeded random bytes (held by the client)."""
    return MP4_HEAD + random_chunks(seed)(SMALL_MB * MB - len(MP4_HEAD))


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


async def generated(total: int, seed: int, digest: Any) -> AsyncIterator[bytes]:
    """``total`` bytes made as they are sent (MP4 head, then seeded random), hashed into
    ``digest``; 1 MB at a time is all the client holds."""
    take = random_chunks(seed)
    sent = 0
    while sent < total:
        size = min(CHUNK, total - sent)
        chunk = MP4_HEAD + take(size - len(MP4_HEAD)) if sent == 0 else take(size)
        digest.update(chunk)
        sent += size
        yield chunk
        await asyncio.sleep(0)


@dataclass
class Multipart:
    """A ``multipart/form-data`` body around a streamed file (``alert_id`` first)."""

    alert_id: str
    size: int
    boundary: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def head(self) -> bytes:
        b = self.boundary
        return (
            f'--{b}\r\nContent-Disposition: form-data; name="alert_id"\r\n\r\n{self.alert_id}\r\n'
            f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="bench.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode()

    @property
    def tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def length(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    async def body(self, file: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield self.head
        async for chunk in file:
            yield chunk
        yield self.tail


# --- clients ----------------------------------------------------------------------


@dataclass
class Uploader:
    """A user who registered, logged in and raised an alert, through the API."""

    id: str
    token: str
    refresh_token: str
    alert_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def new_uploader(http: httpx.AsyncClient, n: int, rng: random.Random) -> Uploader:
    email = f"bench-media-{uuid.uuid4().hex[:12]}@example.org"
    body = {"email": email, "password": PASSWORD, "full_name": f"Bench Media {n}"}
    registered = await http.post("/auth/register/user", json=body)
    registered.raise_for_status()
    login = await http.post("/auth/login/user", json={"email": email, "password": PASSWORD})
    login.raise_for_status()
    tokens = login.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    point = {"latitude": 52.52 + rng.uniform(-0.1, 0.1), "longitude": 13.4 + rng.uniform(-0.1, 0.1)}
    alert = await http.post("/alerts", json={**point, "alert_type": "panic"}, headers=headers)
    alert.raise_for_status()
    return Uploader(
        registered.json()["id"], tokens["access_token"], tokens["refresh_token"], alert.json()["id"]
    )


class Failed(Exception):
    """An answer other than the one expected."""


@dataclass(frozen=True)
class Upload:
    seconds: float
    media_id: str
    verified: bool


async def upload_raw(
    http: httpx.AsyncClient,
    who: Uploader,
    body: AsyncIterator[bytes],
    size: int,
    sha256: Callable[[], str],
) -> Upload:
    """A raw-body upload of ``size`` bytes; ``sha256()`` is the client's, once sent."""
    headers = {**who.headers, "Content-Type": "video/mp4", "Content-Length": str(size)}
    began = time.perf_counter()
    answer = await http.post(
        "/media/upload", params={"alert_id": who.alert_id}, content=body, headers=headers
    )
    seconds = time.perf_counter() - began
    if answer.status_code != 201:
        raise Failed(f"raw upload: {answer.status_code} {answer.text[:300]}")
    meta = answer.json()
    return Upload(seconds, meta["id"], meta["sha256"] == sha256() and meta["size"] == size)


async def upload_form(http: httpx.AsyncClient, who: Uploader, data: bytes, sha256: str) -> Upload:
    form = Multipart(who.alert_id, len(data))
    headers = {**who.headers, "Content-Type": form.content_type, "Content-Length": str(form.length)}
    began = time.perf_counter()
    answer = await http.post("/media/upload", content=form.body(chunks_of(data)), headers=headers)
    seconds = time.perf_counter() - began
    if answer.status_code != 201:
        raise Failed(f"multipart upload: {answer.status_code} {answer.text[:300]}")
    meta = answer.json()
    return Upload(seconds, meta["id"], meta["sha256"] == sha256 and meta["size"] == len(data))


def spread(name: str, seconds: list[float], mb: float) -> dict[str, Any]:
    """min/p50/max of ``seconds`` and MB/s at the p50."""
    if not seconds:
        return {}
    p50 = statistics.median(seconds)
    return {
        f"{name}_s": {
            "min": round(min(seconds), 3),
            "p50": round(p50, 3),
            "max": round(max(seconds), 3),
        },
        f"{name}_mb_per_s": round(mb / p50, 1),
    }


# --- phases -----------------------------------------------------------------------


@dataclass
class Run:
    http: httpx.AsyncClient
    pid: int
    data: bytes
    sha256: str
    args: argparse.Namespace
    users: list[Uploader]
    rng: random.Random
    verified: bool = True
    #: A 50 MB file of the uploads and its uploader, for the reads.
    stored: tuple[str, Uploader] | None = None

    async def uploader(self) -> Uploader:
        who = await new_uploader(self.http, len(self.users), self.rng)
        self.users.append(who)
        return who

    def check(self, upload: Upload) -> Upload:
        self.verified &= upload.verified
        return upload


async def single_uploads(run: Run) -> dict[str, Any]:
    raw_user, form_user = await run.uploader(), await run.uploader()
    raw: list[float] = []
    form: list[float] = []
    for n in range(run.args.repeat):
        progress("media", f"50 MB upload {n + 1}/{run.args.repeat}: raw body, then multipart")
        up = await upload_raw(
            run.http, raw_user, chunks_of(run.data), len(run.data), lambda: run.sha256
        )
        raw.append(run.check(up).seconds)
        run.stored = (up.media_id, raw_user)
        form.append(run.check(await upload_form(run.http, form_user, run.data, run.sha256)).seconds)
    return {
        **spread("upload_50mb", raw, SMALL_MB),
        **spread("upload_50mb_multipart", form, SMALL_MB),
    }


async def concurrent_uploads(run: Run) -> dict[str, Any]:
    users = [await run.uploader() for _ in range(4)]
    each: list[float] = []
    wall = 0.0
    for n in range(run.args.rounds):
        progress("media", f"4 concurrent 50 MB uploads, round {n + 1}/{run.args.rounds}")
        began = time.perf_counter()
        done = await asyncio.gather(
            *(
                upload_raw(run.http, u, chunks_of(run.data), len(run.data), lambda: run.sha256)
                for u in users
            )
        )
        wall += time.perf_counter() - began
        each += [run.check(up).seconds for up in done]
    return {
        "concurrent4_p50_s": round(percentile(each, 0.50), 3),
        "concurrent4_p99_s": round(percentile(each, 0.99), 3),
        "concurrent4_mb_per_s": round(4 * SMALL_MB * run.args.rounds / wall, 1),
    }


async def reads(run: Run) -> dict[str, Any]:
    if run.stored is None:
        raise Failed("no 50 MB file was stored to read")
    media_id, who = run.stored
    whole: list[float] = []
    for n in range(run.args.repeat):
        progress("media", f"reading the 50 MB file {n + 1}/{run.args.repeat}")
        digest = hashlib.sha256()
        began = time.perf_counter()
        async with run.http.stream("GET", f"/media/{media_id}", headers=who.headers) as answer:
            if answer.status_code != 200:
                raise Failed(f"read: {answer.status_code} {(await answer.aread())[:300]!r}")
            async for chunk in answer.aiter_raw():
                digest.update(chunk)
        whole.append(time.perf_counter() - began)
        run.verified &= digest.hexdigest() == run.sha256
    progress("media", f"{RANGES} reads of a 1 MB range")
    ranged: list[float] = []
    offsets = random.Random(run.args.seed).sample(range(len(run.data) - MB), RANGES)
    for start in offsets:
        headers = {**who.headers, "Range": f"bytes={start}-{start + MB - 1}"}
        began = time.perf_counter()
        answer = await run.http.get(f"/media/{media_id}", headers=headers)
        ranged.append((time.perf_counter() - began) * 1000)
        if answer.status_code != 206:
            raise Failed(f"ranged read: {answer.status_code} {answer.text[:300]}")
        run.verified &= answer.content == run.data[start : start + MB]
    return {
        **spread("read_50mb", whole, SMALL_MB),
        "range_1mb_p50_ms": round(percentile(ranged, 0.50), 1),
        "range_1mb_max_ms": round(percentile(ranged, 1.0), 1),
    }


class RssSampler:
    """The RSS of one process every ``RSS_EVERY_S``, in a thread of its own (the
    benchmark's event loop is busy sending)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.process.memory_info().rss)
            self._stop.wait(RSS_EVERY_S)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def big_upload(run: Run) -> dict[str, Any]:
    who = await run.uploader()
    total = run.args.big_mb * MB
    warm = run.data[:MB]
    warm_sha = hashlib.sha256(warm).hexdigest()
    run.check(await upload_raw(run.http, who, chunks_of(warm), MB, lambda: warm_sha))
    with RssSampler(run.pid) as before:
        await asyncio.sleep(1.0)
    baseline = statistics.median(before.samples)
    progress("media", f"{run.args.big_mb} MB upload, generated as sent, RSS sampled")
    digest = hashlib.sha256()
    with RssSampler(run.pid) as during:
        body = generated(total, run.args.seed, digest)
        up = await upload_raw(run.http, who, body, total, digest.hexdigest)
        await asyncio.sleep(0.5)  # what the gateway holds just after the answer
    run.check(up)
    peak = max(during.samples)
    return {
        "big_mb": run.args.big_mb,
        "upload_big_s": round(up.seconds, 2),
        "upload_big_mb_per_s": round(run.args.big_mb / up.seconds, 1),
        "rss_baseline_mb": round(baseline / MB, 1),
        "rss_peak_mb": round(peak / MB, 1),
        "rss_after_mb": round(during.samples[-1] / MB, 1),
        "rss_growth_mb_500mb_upload": round((peak - baseline) / MB, 1),
        "rss_samples": len(during.samples),
    }


def make_video(folder: Path) -> Path:
    """A 1080p 30 s H.264/AAC MP4 (testsrc2 and a 440 Hz tone), made with ffmpeg."""
    out = folder / "bench-1080p-30s.mp4"
    subprocess.run([*VIDEO_CMD, str(out)], check=True, timeout=600, stdin=subprocess.DEVNULL)
    return out


async def processing(run: Run, video: Path) -> dict[str, Any]:
    who = await run.uploader()
    data = await asyncio.to_thread(video.read_bytes)
    sha = hashlib.sha256(data).hexdigest()
    progress("media", f"uploading the 1080p video ({len(data) / MB:.1f} MB)")
    up = run.check(await upload_raw(run.http, who, chunks_of(data), len(data), lambda: sha))
    meta_url = f"/media/{up.media_id}/meta"
    began = time.perf_counter()
    first = await run.http.get(meta_url, headers=who.headers)
    if first.status_code != 200:
        raise Failed(f"meta: {first.status_code} {first.text[:300]}")
    state = first.json()["processing"]
    auto_queued = state != "none"
    if not auto_queued:
        began = time.perf_counter()
        asked = await run.http.post(f"/media/{up.media_id}/process", headers=who.headers)
        if asked.status_code != 202:
            raise Failed(f"process: {asked.status_code} {asked.text[:300]}")
        state = asked.json()["processing"]
    progress("media", f"processing ({state}); waiting up to {run.args.processing_timeout} s")
    seen = [(0.0, state)]
    meta: dict[str, Any] = first.json()
    while state not in ("done", "failed"):
        if time.perf_counter() - began > run.args.processing_timeout:
            break
        await asyncio.sleep(1.0)
        answer = await run.http.get(meta_url, headers=who.headers)
        if answer.status_code != 200:
            raise Failed(f"meta: {answer.status_code} {answer.text[:300]}")
        meta = answer.json()
        if meta["processing"] != state:
            state = meta["processing"]
            seen.append((round(time.perf_counter() - began, 1), state))
            progress("media", f"processing: {state}")
    finished = state in ("done", "failed")
    return {
        "video_mb": round(len(data) / MB, 1),
        "processing_1080p_30s_s": round(time.perf_counter() - began, 1) if finished else None,
        "processing_state": state,
        "processing_auto_queued": auto_queued,
        "processing_states_seen": seen,
        "processing_error": meta.get("processing_error"),
        "processing_renditions": [
            {k: r[k] for k in ("rendition", "content_type", "size")}
            for r in meta.get("renditions", [])
        ],
    }


# --- main -------------------------------------------------------------------------


async def phase(errors: dict[str, str], name: str, work: Any) -> dict[str, Any]:
    """``work``'s figures; a failure is recorded in ``errors`` and the run goes on."""
    try:
        result: dict[str, Any] = await work
        return result
    except Exception as exc:  # a benchmark reports, it does not stop
        progress("media", f"{name} failed: {type(exc).__name__}: {exc}")
        errors[name] = f"{type(exc).__name__}: {exc}"[:500]
        return {}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="50 MB uploads and reads, each")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of 4 concurrent uploads")
    parser.add_argument("--big-mb", type=int, default=500, help="the RSS upload's size")
    parser.add_argument("--skip-processing", action="store_true")
    parser.add_argument("--processing-timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    if args.repeat < 1 or args.rounds < 1 or args.big_mb < 1:
        parser.error("--repeat, --rounds and --big-mb are at least 1")

    folder = Path(tempfile.mkdtemp(prefix="panic-alert-bench-media-"))
    errors: dict[str, str] = {}
    result: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "repeat": args.repeat,
        "rounds": args.rounds,
        "target_upload_50mb_s": TARGET_UPLOAD_50MB_S,
        "target_rss_growth_mb": TARGET_RSS_GROWTH_MB,
    }
    video: Path | None = None
    try:
        if not args.skip_processing:
            progress("media", "making a 1080p 30 s video with ffmpeg (not timed)")
            try:
                video = await asyncio.to_thread(make_video, folder)
            except (OSError, subprocess.SubprocessError) as exc:
                errors["processing"] = f"ffmpeg: {type(exc).__name__}: {exc}"[:500]
        progress("media", "making the 50 MB file")
        data = small_payload(args.seed)
        # Each phase's user has an alert of its own; the largest is the big upload.
        per_file = (max(args.big_mb, SMALL_MB) + 100) * MB
        per_alert = max(per_file, (max(args.repeat, args.rounds) + 1) * SMALL_MB * MB)
        env = {
            "PANIC_MEDIA__ROOT": str(folder / "objects"),
            "PANIC_MEDIA__MAX_UPLOAD_BYTES": str(per_file),
            "PANIC_MEDIA__MAX_ALERT_BYTES": str(per_alert),
            "PANIC_RATE_LIMIT__KEY_PREFIX": f"bench-media-{uuid.uuid4().hex[:12]}:",
        }
        async with (
            live_gateway("media", users=0, agents=0, env=env) as live,
            httpx.AsyncClient(base_url=live.base_url, timeout=httpx.Timeout(600.0)) as http,
        ):
            sha256 = hashlib.sha256(data).hexdigest()
            run = Run(http, live.pid, data, sha256, args, [], random.Random(args.seed))
            try:
                at_ready = psutil.Process(live.pid).memory_info().rss
                result["rss_at_ready_mb"] = round(at_ready / MB, 1)
                result.update(await phase(errors, "rss", big_upload(run)))
                result.update(await phase(errors, "upload", single_uploads(run)))
                result.update(await phase(errors, "concurrent", concurrent_uploads(run)))
                result.update(await phase(errors, "read", reads(run)))
                if args.skip_processing:
                    result["processing_state"] = "skipped"
                elif video is not None:
                    result.update(await phase(errors, "processing", processing(run, video)))
                if "processing_state" not in result:
                    result["processing_state"] = "error"
                result["verified"] = run.verified
                result["load_after"] = [round(x, 2) for x in os.getloadavg()]
                result["errors"] = errors
                print(json.dumps(result), flush=True)
            finally:
                progress("media", "logging out and closing serve")
                for who in run.users:
                    ending = {"refresh_token": who.refresh_token}
                    await http.post("/auth/logout", headers=who.headers, json=ending)
                accounts = [Account(uuid.UUID(u.id), Role.USER, u.token) for u in run.users]
                await forget_accounts(Settings(), accounts)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
