"""Benchmark of geofencing through the gateway: prints one JSON object.

  .venv/bin/python bench/geofence.py [--zones 10000] [--subjects 10000] [--rate 10000]
                                     [--seconds 20] [--probes 20]
                                     [--gateways 0] [--warmup 10] [--set PANIC_X=VALUE]...

On a scratch database: ``--zones`` zones (circles and squares of 50-800 m
over a 40 km square city) imported with ``panic-alert import-zones`` (its
time is reported), then ``panic-alert serve``; ``--subjects`` users each
hold a ``/ws`` socket and walk straight lines at 1-15 m/s, their
``location`` frames sent round-robin at ``--rate`` per second in total by a
sender process of its own (bench/fixes.py). Measured:

- ``carried_out_per_s``: location fixes the gateway carried out per second
  while the sender sent (its ``geofence_fixes_total{outcome="carried_out"}``:
  stored in Redis and handed to the subject entities), with the backlog left
  at the end and how long it took to drain; the sender is open loop, so a
  gateway that cannot keep up shows as backlog (kernel socket buffers hold
  a lot), not as a slower sender; ``carried_per_second``, the same for each
  second from the first fix sent (the warm-up's too; ``null`` for a second
  the gateways were too busy to answer ``/metrics`` around), and
  ``behind_at_window``, about how many fixes sent in the warm-up were not
  yet carried when the window began (the window's first fixes queue behind
  them);
- ``update_to_event_ms``: ``--probes`` more users, each repeatedly stepping
  into a danger zone of its own that notifies the subject: from sending the
  fix to receiving the ``geofence.alert`` frame, which comes after the
  event is committed (p50 / p99), measured while the load runs, and
  ``update_to_event_slowest``: the five slowest as ``[ms, seconds into the
  window the fix was sent]`` (a tail from one moment shows as neighbours);
- memory: the gateway's and the shards' RSS at the end.

Fixes are sent for ``--warmup`` seconds before the measured ``--seconds``
(each subject's first fix activates its entity from the database: 10,000
loads that a running system has long done); the probes set up their sockets
and send a first fix in the warm-up too (set up at the window's start, 20
probes' logins stalled the shard ~100 ms just as their first entries came,
and those were the p99); the carried-out rate and the probes count only
the measured window.

``--feed bulk`` (issue 20) sends the same fixes through the bulk feed
instead: an integration key issued by an admin, ``--connections`` (4)
``/ws/locations`` sockets, subject ``i`` always on socket ``i % 4`` (its
fixes stay in order), everything due sent every ``--interval-ms`` (5) as
one ``locations`` frame per socket (bench/fixes.py ``send_batches``); each
probe sends its fixes over a bulk socket of its own and hears the alert on
its ``/ws``. After
the run it waits for the outbox and counts the run's geofence events in
the outbox, Kafka and the event store (``events``, bench/durability.py).

Both feeds report ``cpu_cores`` (cores each group of processes used over
the measured window: the gateways, the shards, the rest of Ray, Redis,
PostgreSQL, Kafka, FerretDB; from their own CPU times) and
``cpu_us_per_fix`` (the same per fix carried), ``sender_cores``, and
``machine_cpu``: the share of the machine's CPU busy over the window, and
the share the hypervisor gave to other tenants (``stolen``; a busy host
slows every process here without their own CPU times showing it).
``slow_collections`` lists the gateways' garbage collections that paused
one 100 ms or more (from serve's log: seconds into the window, process,
generation, ms paused, ms of its CPU), and ``other_warnings`` counts serve's
other warnings.

``refused``: the fixes the gateways refused as overload (their
``geofence_fixes_total{outcome="refused"}``, over the run); ``refused_told``,
those their answers told the sender of (``unavailable`` error frames, each
telling its ``refused`` count, or the bulk feed's ``locations.ok``). A socket's
refusals are told together every ``http.ws_refusal_notice_s`` (5 s), so on the
phone path the last seconds' may be left untold.

Every socket (the subjects', the probes', the bulk feed's) is kept as the
apps keep theirs (API.md): it sends ``ping`` every third of ``auth.ok``'s
``heartbeat_timeout_s`` (±10 %, the first at a random point of the first
interval), and one the gateway closes is opened again after a back-off with
full jitter (1 s doubling to 30 s), as ``bench/dispatch.py``'s agents do;
``pings``, ``reconnects`` and ``failed_reconnects`` count them (the probes
are not reopened: a probe's socket closing shows as missed entries).

``--gateways N`` has serve run N gateway processes on its port (0, the
default, is serve's own default: one per core); the kernel spreads the
sockets over them, and the figures are those of all of them.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import itertools
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

_ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(_ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

import httpx
import psutil
import websockets

from bench.cpu import cpu_over, machine_over
from bench.durability import EventCounts, count_events, kafka_end_offsets
from bench.fixes import (
    M_PER_DEG_LAT,
    SendReport,
    authenticated_socket,
    batch_frame,
    fix_json,
    open_bulk,
    send_batches,
    send_fixes,
    walkers,
)
from bench.live import (
    PING_TEXT,
    PingSchedule,
    add_settings_flag,
    live_gateway,
    percentile,
    progress,
    settings_of,
)
from config.settings import Settings
from panic_alert.compiled import compiled
from tests.integration.api.accounts import Account
from tests.local import PANIC_ALERT

ORIGIN = (52.52, 13.405)
SPAN_M = 40_000.0


def offset(east_m: float, north_m: float) -> tuple[float, float]:
    """(latitude, longitude) of a point east/north of ORIGIN, in metres."""
    lat = ORIGIN[0] + north_m / M_PER_DEG_LAT
    lon = ORIGIN[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(ORIGIN[0])))
    return lat, lon


def zone_feature(rng: random.Random, index: int) -> dict[str, Any]:
    east, north = rng.uniform(-SPAN_M / 2, SPAN_M / 2), rng.uniform(-SPAN_M / 2, SPAN_M / 2)
    kind = "danger" if rng.random() < 0.3 else "safe"
    properties: dict[str, Any] = {"name": f"zone {index}", "kind": kind}
    if rng.random() < 0.7:
        lat, lon = offset(east, north)
        properties["radius_m"] = rng.uniform(50, 400)
        geometry: dict[str, Any] = {"type": "Point", "coordinates": [lon, lat]}
    else:
        half = rng.uniform(50, 400)
        corners = [(-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1)]
        ring = [offset(east + e * half, north + n * half) for e, n in corners]
        geometry = {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in ring]]}
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def probe_feature(centre: tuple[float, float], zone_id: UUID) -> dict[str, Any]:
    lat, lon = centre
    return {
        "type": "Feature",
        "id": str(zone_id),
        "properties": {
            "name": "probe",
            "kind": "danger",
            "radius_m": 100,
            "rules": {"notify_subject": True},
        },
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
    }


async def import_zones(path: Path, env: dict[str, str]) -> float:
    began = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        PANIC_ALERT,
        "import-zones",
        str(path),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"import-zones failed ({proc.returncode}): {out.decode()[-500:]}")
    return time.perf_counter() - began


class Probe:
    """A user stepping in and out of its own danger zone; times each entry's alert.

    Its fixes go over its own ``/ws`` socket, or, given ``bulk`` (the
    ``/ws/locations`` URL and an integration key), over a bulk socket of its
    own, one fix per batch, as a Tile38 probe's SETs go over a connection of
    their own. The ``geofence.alert`` comes on its ``/ws`` socket either way.
    """

    def __init__(
        self,
        account: Account,
        centre: tuple[float, float],
        zone_id: UUID,
        bulk: tuple[str, str] | None = None,
    ) -> None:
        self.token = account.token
        self.subject_id = str(account.id)
        self.centre = centre
        self.zone_id = str(zone_id)
        self.bulk = bulk
        self.latencies: list[float] = []
        #: When each timed fix was sent (``perf_counter``), beside ``latencies``.
        self.sent_at: list[float] = []
        self.missed = 0
        self._entered: asyncio.Future[float] | None = None
        self._feed: Any = None
        #: Socket set-ups retried after a 1013 (the gateway shedding set-ups).
        self.setup_retries = 0
        self.pings = 0
        self._rng = random.Random(self.subject_id)  # back-off jitter only

    async def connect(self, ws_url: str, stack: contextlib.AsyncExitStack) -> None:
        """Open and authenticate its sockets and send one fix outside its zone
        (which activates its subject entity), all in the warm-up: the window
        times entries, not sockets being set up. Closed with ``stack``."""
        # A fix sent before auth.ok waits for the socket's setup (its subscriptions
        # and resync, over a second with 10,000 sockets sending): wait for it.
        ws, retries, heartbeat_s = await authenticated_socket(ws_url, self.token, rng=self._rng)
        stack.push_async_callback(ws.close)
        self.setup_retries += retries
        self._feed = ws
        stack.callback(asyncio.create_task(self._keepalive(ws, heartbeat_s)).cancel)
        if self.bulk is not None:
            self._feed, retries, heartbeat_s = await open_bulk(*self.bulk, self._rng)
            self.setup_retries += retries
            stack.push_async_callback(self._feed.close)
            stack.callback(asyncio.create_task(_drain(self._feed)).cancel)
            stack.callback(asyncio.create_task(self._keepalive(self._feed, heartbeat_s)).cancel)
        stack.callback(asyncio.create_task(self._read(ws)).cancel)
        await self._fix(self._feed, self._outside())

    async def _keepalive(self, ws: Any, heartbeat_s: float) -> None:
        """Ping as the apps do (``bench.live.PingSchedule``), until ``ws`` closes."""
        schedule = PingSchedule[None](self._rng)
        schedule.watch(None, heartbeat_s, time.monotonic())
        with contextlib.suppress(websockets.ConnectionClosed):
            while (at := schedule.next_at()) is not None:
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                now = time.monotonic()
                for _key, interval in schedule.due(now):
                    await ws.send(PING_TEXT)
                    self.pings += 1
                    schedule.again(None, interval, now)

    def _outside(self) -> tuple[float, float]:
        lat, lon = self.centre
        return lat + 600 / M_PER_DEG_LAT, lon

    async def run(self, until: float) -> None:
        """Step out of its zone and into it again, timing each entry, until ``until``."""
        feed = self._feed
        assert feed is not None, "connect first"
        while time.perf_counter() < until:
            await self._fix(feed, self._outside())
            await asyncio.sleep(0.5)
            self._entered = asyncio.get_running_loop().create_future()
            sent = time.perf_counter()
            await self._fix(feed, self.centre)
            try:
                got = await asyncio.wait_for(asyncio.shield(self._entered), 10)
                self.latencies.append((got - sent) * 1000)
                self.sent_at.append(sent)
            except TimeoutError:
                self.missed += 1
            await asyncio.sleep(0.5)

    async def _fix(self, ws: Any, point: tuple[float, float]) -> None:
        recorded = datetime.now(UTC).isoformat()
        if self.bulk is not None:
            await ws.send(batch_frame([fix_json(self.subject_id, *point, recorded)]).decode())
            return
        data = {
            "latitude": point[0],
            "longitude": point[1],
            "accuracy_m": 5,
            "recorded_at": recorded,
        }
        await ws.send(json.dumps({"type": "location", "data": data}))

    async def _read(self, ws: Any) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if (
                frame.get("type") == "geofence.alert"
                and frame["data"].get("zone_id") == self.zone_id
                and frame["data"].get("event") == "enter"
                and self._entered is not None
                and not self._entered.done()
            ):
                self._entered.set_result(time.perf_counter())


async def _drain(ws: Any) -> None:
    with contextlib.suppress(websockets.ConnectionClosed):
        async for _ in ws:
            pass


async def fix_counts(http: httpx.AsyncClient, base_url: str) -> tuple[float, float]:
    """``geofence_fixes_total`` with ``outcome`` ``carried_out`` and ``refused``, summed
    over the gateway processes by whichever one answers (serve's metrics are
    summed over them)."""
    return fixes_in((await http.get(f"{base_url}/metrics")).text)


def fixes_in(metrics: str) -> tuple[float, float]:
    """The carried-out and refused fixes in a ``/metrics`` text (0 when not listed)."""
    counts = {"carried_out": 0.0, "refused": 0.0}
    for line in metrics.splitlines():
        for outcome in counts:
            if line.startswith(f'geofence_fixes_total{{outcome="{outcome}"}}'):
                counts[outcome] = float(line.rsplit(" ", 1)[1])
    return counts["carried_out"], counts["refused"]


#: Samples further apart than this leave the seconds between them unknown (a
#: gateway too busy to answer ``/metrics``), rather than spread evenly over them.
SAMPLE_GAP_S = 1.5


def carried_timeline(
    samples: list[tuple[float, float]], start: float, baseline: float, seconds: float
) -> list[int | None]:
    """Fixes carried out in each whole second of the ``seconds`` after ``start``,
    from the ``(perf_counter, carried_out)`` samples (about two a second), read
    at each second's boundary between the samples either side of it. A
    boundary with no sample within ``SAMPLE_GAP_S`` either side makes its
    seconds None; the timeline stops at the last sample."""

    def at(t: float) -> float | None:
        before = [(ts, n) for ts, n in samples if ts <= t]
        after = [(ts, n) for ts, n in samples if ts >= t]
        if not after:
            return None
        if not before:
            return baseline if after[0][0] - t <= SAMPLE_GAP_S else None
        (t0, n0), (t1, n1) = before[-1], after[0]
        if t1 - t0 > SAMPLE_GAP_S:
            return None
        return n0 if t1 == t0 else n0 + (n1 - n0) * (t - t0) / (t1 - t0)

    if not samples:
        return []
    last = min(start + seconds, samples[-1][0])
    bounds = [at(start + k) for k in range(int(last - start) + 1)]
    return [
        None if low is None or high is None else round(high - low)
        for low, high in itertools.pairwise(bounds)
    ]


def slow_collections(warnings: list[dict[str, Any]], began_at: float) -> list[list[Any]]:
    """The gateways' slow garbage collections from serve's log records (the fields
    ``config.heap`` gives them), each ``[seconds into the window, process,
    generation, ms paused, ms of its CPU]``; wall and CPU apart mean the process
    waited for a core, not for the collection."""
    found: list[list[Any]] = []
    for record in warnings:
        if record.get("logger") != "config.heap" or "gc_paused_ms" not in record:
            continue
        try:
            at = datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00")).timestamp()
        except (KeyError, ValueError):
            continue
        found.append(
            [
                round(at - began_at, 2),
                record.get("gc_process"),
                record.get("gc_generation"),
                record["gc_paused_ms"],
                record.get("gc_cpu_ms"),
            ]
        )
    return found


async def integration_key(base_url: str, admin: Account) -> str:
    """A new integration key, issued by ``admin`` (``POST /admin/integrations``)."""
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.post(
            f"{base_url}/admin/integrations", json={"name": "bench"}, headers=admin.headers
        )
        answer.raise_for_status()
        return str(answer.json()["key"])


def rss_mb(pids: list[int]) -> tuple[float, list[float]]:
    """The gateway processes' RSS (summed) and each shard actor's."""
    gateway = sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20
    shards = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("ray::ShardActor"):
            with contextlib.suppress(psutil.Error):
                shards.append(round(proc.memory_info().rss / 2**20, 1))
    return round(gateway, 1), shards


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", type=int, default=10_000)
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="the measured window")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10.0,
        help="seconds of sending before the window (each subject's first fix loads its entity)",
    )
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--ws-impl", default="auto", help="PANIC_HTTP__WS_IMPL for serve")
    parser.add_argument(
        "--gateways", type=int, default=0, help="serve's gateway processes (0: serve's default)"
    )
    parser.add_argument(
        "--feed",
        choices=("phone", "bulk"),
        default="phone",
        help="phone: a /ws socket per subject; bulk: batches over --connections /ws/locations "
        "sockets with an integration key (issue 20)",
    )
    parser.add_argument("--connections", type=int, default=4, help="bulk feed sockets")
    parser.add_argument(
        "--interval-ms", type=float, default=5.0, help="bulk feed: a batch per socket this often"
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="add every probe entry as [s into the window, ms] (where a tail comes from)",
    )
    add_settings_flag(parser)
    args = parser.parse_args()
    bulk = args.feed == "bulk"
    env = {"PANIC_HTTP__WS_IMPL": args.ws_impl, **settings_of(parser, args.set)}

    rng = random.Random(args.seed)
    probe_zones = [
        (offset(-SPAN_M / 2 - 2000 - 1500 * i, -SPAN_M / 2 - 2000), uuid4())
        for i in range(args.probes)
    ]
    features = [zone_feature(rng, i) for i in range(args.zones - args.probes)]
    features += [probe_feature(centre, zone_id) for centre, zone_id in probe_zones]
    result: dict[str, Any] = {
        "cpus": os.cpu_count(),
        # Whether serve runs the hot path compiled (``panic_alert.compiled``; it
        # refuses a stale build, so the tree's state is serve's).
        "compiled": compiled(),
        "feed": args.feed,
        "gateways": args.gateways,
        "settings": args.set,
        "zones": len(features),
    }

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "zones.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))

        async def before_serve(env: dict[str, str]) -> None:
            progress("geofence", f"importing {len(features)} zones")
            result["zone_import_s"] = round(await import_zones(path, env), 2)

        users = args.subjects + args.probes
        async with live_gateway(
            "geofence",
            users=users,
            agents=0,
            env=env,
            before_serve=before_serve,
            gateways=args.gateways,
            admins=1 if bulk else 0,
        ) as live:
            result["gateways"] = len(live.gateway_pids)
            subjects = walkers(
                [u.token for u in live.users[: args.subjects]], ORIGIN, SPAN_M, args.seed
            )
            bulk_url = live.ws_url + "/locations"
            key = await integration_key(live.base_url, live.admins[0]) if bulk else ""
            probes = [
                Probe(u, centre, zone_id, (bulk_url, key) if bulk else None)
                for u, (centre, zone_id) in zip(
                    live.users[args.subjects :], probe_zones, strict=True
                )
            ]
            settings = Settings()
            offsets = await kafka_end_offsets(settings) if bulk else {}
            progress(
                "geofence",
                f"{len(subjects)} subject sockets, {args.rate}/s for {args.seconds}s, "
                f"{len(probes)} probes",
            )
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                async with httpx.AsyncClient(timeout=10) as http:
                    # Before any fix is sent.
                    baseline, refused_before = await fix_counts(http, live.base_url)
                marker = Path(scratch) / "sending"
                if bulk:
                    sending = asyncio.get_running_loop().run_in_executor(
                        pool,
                        send_batches,
                        bulk_url,
                        key,
                        subjects,
                        [str(u.id) for u in live.users[: args.subjects]],
                        args.rate,
                        args.warmup + args.seconds,
                        str(marker),
                        args.connections,
                        args.interval_ms,
                        settings.geofence.bulk_max_fixes,
                    )
                else:
                    sending = asyncio.get_running_loop().run_in_executor(
                        pool,
                        send_fixes,
                        live.ws_url,
                        subjects,
                        args.rate,
                        args.warmup + args.seconds,
                        str(marker),
                    )
                # Probes start once the sender is sending (its sockets take a while).
                while not marker.exists():
                    if sending.done():
                        sending.result()  # raises what stopped the sender
                    await asyncio.sleep(0.2)
                async with httpx.AsyncClient(timeout=10) as http:
                    samples: list[tuple[float, float]] = []
                    refused_now = [refused_before]

                    async def sample() -> None:
                        while True:
                            with contextlib.suppress(httpx.HTTPError):  # a busy gateway
                                done, refused_now[0] = await fix_counts(http, live.base_url)
                                samples.append((time.perf_counter(), done))
                            await asyncio.sleep(0.5)

                    sampler = asyncio.create_task(sample())
                    sending_began = time.perf_counter()
                    if args.warmup > 0:
                        progress("geofence", f"warming up for {args.warmup}s")
                    async with contextlib.AsyncExitStack() as probing:
                        # The probes' sockets are set up while the subjects' fixes warm
                        # up (with no warm-up, before the window all the same).
                        await asyncio.gather(*(p.connect(live.ws_url, probing) for p in probes))
                        warm = sending_began + args.warmup - time.perf_counter()
                        await asyncio.sleep(max(0.0, warm))
                        progress("geofence", f"measuring for {args.seconds}s")
                        gateway_pids = live.gateway_pids
                        cpu_window = asyncio.create_task(cpu_over(args.seconds, gateway_pids))
                        machine_window = asyncio.create_task(machine_over(args.seconds))
                        began = time.perf_counter()
                        began_at = time.time()  # the same moment, as serve's log gives it
                        until = began + args.seconds * 0.8
                        await asyncio.gather(*(p.run(until) for p in probes))
                    report: SendReport = await sending
                    ended = sending_began + report.seconds
                    # Whatever the gateway still holds (its queue, its sockets' buffers).
                    drain_began = time.perf_counter()
                    while time.perf_counter() - drain_began < 60:
                        refused = int(refused_now[0] - refused_before)
                        if samples and samples[-1][1] - baseline >= report.sent - refused:
                            break
                        await asyncio.sleep(0.5)
                    sampler.cancel()
                    refused = int(refused_now[0] - refused_before)
                    in_window = [d for t, d in samples if began <= t <= ended]
                    if len(in_window) >= 2:
                        spanned = [t for t, _ in samples if began <= t <= ended]
                        result["carried_out_per_s"] = round(
                            (in_window[-1] - in_window[0]) / (spanned[-1] - spanned[0])
                        )
                    result["backlog_drain_s"] = round(time.perf_counter() - drain_began, 1)
                    result["carried_out_total"] = int(samples[-1][1] - baseline)
                    timeline = carried_timeline(
                        samples, sending_began, baseline, args.warmup + args.seconds
                    )
                    result["carried_per_second"] = timeline
                    # Sent in the warm-up but not yet carried when the window began: a
                    # backlog the window's first fixes (the probes' too) queue behind.
                    warm = timeline[: int(args.warmup)]
                    result["behind_at_window"] = (
                        max(0, round(args.rate * args.warmup) - sum(n or 0 for n in warm))
                        if len(warm) == int(args.warmup) and None not in warm
                        else None
                    )
                    result["cpu_cores"] = await cpu_window
                    result["machine_cpu"] = await machine_window
                    carried = result.get("carried_out_per_s") or 0
                    if carried:
                        result["cpu_us_per_fix"] = {
                            name: round(cores * 1e6 / carried, 1)
                            for name, cores in result["cpu_cores"].items()
                        }
            gateway_mb, shards_mb = rss_mb(live.gateway_pids)
            if bulk:
                progress("geofence", "waiting for the outbox, then counting events")
                events: EventCounts = await count_events(settings, live.database, offsets)
                result["events"] = events.as_json()

    result["slow_collections"] = slow_collections(live.warnings, began_at)
    result["other_warnings"] = sum(r.get("logger") != "config.heap" for r in live.warnings)
    latencies = [ms for p in probes for ms in p.latencies]
    timed = sorted(
        ((ms, at - began) for p in probes for ms, at in zip(p.latencies, p.sent_at, strict=True)),
        reverse=True,
    )
    result.update(
        {
            "subjects": len(subjects),
            "offered_rate": args.rate,
            "warmup_s": args.warmup,
            "seconds": args.seconds,
            "sending_s": round(report.seconds, 2),
            "sockets": report.sockets,
            "interval_ms": args.interval_ms if bulk else None,
            "sent": report.sent,
            "sent_per_s": round(report.sent / report.seconds) if report.seconds else 0,
            # Counted by the gateways; ``refused_told``, by their answers (a phone's
            # refusals are told together, so the last seconds' may be untold).
            "refused": refused,
            "refused_told": report.refused,
            "errors": report.errors,
            "sender_cpu_s": round(report.cpu_s, 1),
            "sender_cores": round(report.cpu_s / report.seconds, 3) if report.seconds else 0,
            # Socket set-ups the gateway shed with 1013 and the bench tried again.
            "setup_retries": report.setup_retries + sum(p.setup_retries for p in probes),
            # The apps' pings (API.md: a third of auth.ok's heartbeat timeout
            # apart), and sockets the gateway closed that were opened again.
            "pings": report.pings + sum(p.pings for p in probes),
            "reconnects": report.reconnects,
            "failed_reconnects": report.failed_reconnects,
            "probe_entries": len(latencies),
            "probe_missed": sum(p.missed for p in probes),
            "update_to_event_p50_ms": percentile(latencies, 0.50),
            "update_to_event_p99_ms": percentile(latencies, 0.99),
            # The slowest entries and when their fix was sent (s into the window):
            # a tail from one moment (a pause) shows as neighbours here.
            "update_to_event_slowest": [[round(ms, 1), round(s, 2)] for ms, s in timed[:5]],
            "gateway_rss_mb": gateway_mb,
            "shards_rss_mb": shards_mb,
        }
    )
    if args.timeline:
        result["update_to_event_timeline"] = [
            [round(s, 3), round(ms, 1)] for ms, s in sorted(timed, key=lambda t: t[1])
        ]
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
