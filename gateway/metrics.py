"""Prometheus metrics of the HTTP surface, exposed at ``GET /metrics``.

Requests are labelled by **route template** (``/alerts/{alert_id}``), never
by raw path, so an id in a URL cannot create a new time series; requests that
matched no route share the label ``<unmatched>``. Methods outside the standard
set share ``OTHER``. Each app owns its registry, so several apps in one
process (tests) do not collide.

Several gateway processes on one port (``serve`` with ``http.gateways`` > 1)
answer ``/metrics`` from whichever process accepted the connection, so there
the figures are summed over all of them: prometheus_client's multiprocess mode
(``HttpMetrics(multiprocess_dir=...)``; each process writes its values to
files in that directory, and any process's exposition merges them). That mode
is chosen when ``prometheus_client`` is imported, from ``PROMETHEUS_MULTIPROC_DIR``
(the command line sets it, ``panic_alert.gateway_procs``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import values as prometheus_values
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

from actors.alert_state import ResponseStage
from actors.store_errors import PersistenceError
from cluster.client import FIX_BATCH_OUTCOMES
from gateway.ports import MetricsReads

log = logging.getLogger(__name__)

UNMATCHED_ROUTE: Final = "<unmatched>"

_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: Seconds; dense below 100 ms where the API is expected to answer.
LATENCY_BUCKETS: Final = (
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def route_template(scope: Scope) -> str:
    """The matched route's path template, or ``<unmatched>``.

    Valid once the router has handled ``scope``: FastAPI and Starlette store
    the matched route in ``scope["route"]``.
    """
    route = scope.get("route")
    if isinstance(route, BaseRoute):
        path = getattr(route, "path", None)
        if isinstance(path, str) and path:
            return path
    return UNMATCHED_ROUTE


def method_label(method: str) -> str:
    upper = method.upper()
    return upper if upper in _METHODS else "OTHER"


class HttpMetrics:
    """Request counter, latency histogram and in-flight gauge on one registry.

    ``multiprocess_dir``: the figures of every gateway process sharing that
    directory, summed (the in-flight gauges summed over the live processes).
    The exposition registry is then a ``MultiProcessCollector`` plus the
    collectors any process answers alike (``ResponseTimes`` reads the
    database); the process, platform and garbage-collector metrics are left
    out, as they describe one process and the multiprocess mode cannot sum
    them. Requires prometheus_client's multiprocess mode (``RuntimeError``
    otherwise), and :meth:`run` (the app's lifespan runs it) to carry the
    location ingest's counts into the shared files.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, *, multiprocess_dir: str | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.multiprocess = multiprocess_dir is not None
        # In multiprocess mode the values live in files; the registry only exposes.
        values: CollectorRegistry | None = self.registry
        if multiprocess_dir is not None:
            if not getattr(prometheus_values.ValueClass, "_multiprocess", False):
                raise RuntimeError(
                    "prometheus_client is not in multiprocess mode "
                    "(PROMETHEUS_MULTIPROC_DIR was not set when it was imported)"
                )
            MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]
            values = None
        elif registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template, method and status.",
            labels,
            registry=values,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response body.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=values,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being served, by method.",
            ("method",),
            registry=values,
            multiprocess_mode="livesum",
        )
        self.response_times = ResponseTimes(self.registry)
        self.locations: LocationCounts | SharedLocationCounts = (
            SharedLocationCounts() if self.multiprocess else LocationCounts(self.registry)
        )

    async def run(self, interval_s: float = 1.0) -> None:
        """Carry the location ingest's counts into the shared files every
        ``interval_s``, for the life of the app (multiprocess mode only; a
        no-op otherwise). Not per fix: tens of thousands a second go through it."""
        if not self.multiprocess:
            return
        while True:
            self.sync()
            await asyncio.sleep(interval_s)

    def started(self, method: str) -> None:
        self.in_progress.labels(method_label(method)).inc()

    def finished(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Record one answered request (call exactly once per ``started``)."""
        labels = (method_label(method), route, str(status))
        self.in_progress.labels(labels[0]).dec()
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(duration_s)

    def sync(self) -> None:
        """Carry the location ingest's counts into the shared files now (multiprocess
        mode; a no-op otherwise). Call it on the event loop, never in a thread."""
        if isinstance(self.locations, SharedLocationCounts):
            self.locations.sync()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


#: Seconds from an alert's creation to a response milestone.
RESPONSE_BUCKETS: Final = (5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600)
#: Milestones, as ``stage`` labels (each a column of the ``alerts`` projection).
RESPONSE_STAGES: Final = tuple(stage.value for stage in ResponseStage)


class ResponseTimes(Collector):
    """``alert_response_seconds{stage}``: every alert's time to each milestone.

    The figures are in the ``alerts`` projection (one column per stage), so
    every gateway replica serves the same histogram; it is read at most once
    per ``max_age_s`` when ``/metrics`` is scraped, and the last figures are
    kept while PostgreSQL does not answer. Only the first read is waited for:
    later ones run beside the scrape, which answers with the figures it has,
    so a busy or unreachable PostgreSQL never holds ``/metrics`` (the location
    counts an operator watches under load come from this process alone).
    All-time counts, so the series only grow, as Prometheus histograms must;
    the query scans ``alerts``.
    """

    def __init__(self, registry: CollectorRegistry, *, max_age_s: float = 10.0) -> None:
        self._max_age_s = max_age_s
        self._read_at = float("-inf")
        self._row: tuple[float, ...] | None = None
        self._reading: asyncio.Task[None] | None = None
        registry.register(self)

    async def refresh(self, reads: MetricsReads) -> None:
        """Read the figures again when they are ``max_age_s`` old: the first time
        before returning, later in the background (one read at a time)."""
        if time.monotonic() - self._read_at < self._max_age_s:
            return
        if self._row is None:
            await self._read(reads)
        elif self._reading is None or self._reading.done():
            self._reading = asyncio.get_running_loop().create_task(self._read(reads))
            self._reading.add_done_callback(_log_failure)

    async def _read(self, reads: MetricsReads) -> None:
        try:
            row = await reads.response_times(RESPONSE_STAGES, RESPONSE_BUCKETS)
        except PersistenceError as exc:
            log.warning("metrics: cannot read alert response times (%s)", exc)
            return
        if row is not None:
            self._row = row
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "alert_response_seconds",
            "Seconds from an alert's creation to its first offer, accept, on scene, resolved.",
            labels=["stage"],
        )
        if self._row is not None:
            width = 2 + len(RESPONSE_BUCKETS)
            for index, stage in enumerate(RESPONSE_STAGES):
                count, total, *cumulative = self._row[index * width : (index + 1) * width]
                buckets = [
                    (str(float(b)), c) for b, c in zip(RESPONSE_BUCKETS, cumulative, strict=True)
                ]
                family.add_metric([stage], [*buckets, ("+Inf", count)], total)
        yield family


def _log_failure(task: asyncio.Task[None]) -> None:
    """A background read's failure other than PostgreSQL's (those ``_read`` logs)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("metrics: reading alert response times failed: %r", exc)


_BATCHES_HELP: Final = (
    "Batches of location fixes sent to the shards, by outcome: streamed (over a shard's "
    "fix stream), called (as a Ray call), failed (either way: lost or not sent)."
)


class LocationCounts(Collector):
    """``geofence_fixes_total{outcome}`` and ``geofence_fixes_waiting`` of this process's
    location ingest (``gateway.locations``): fixes taken, refused as overload, and
    carried out (to Redis, the subject entities and the history); and
    ``geofence_fix_batches_total{outcome}``, its batches to the shards by way."""

    def __init__(self, registry: CollectorRegistry) -> None:
        #: Set by ``create_app`` to the app's ``LocationIngest``.
        self.source: Any = None
        registry.register(self)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        counts = CounterMetricFamily(
            "geofence_fixes", "Location fixes by outcome in this process.", labels=["outcome"]
        )
        waiting = GaugeMetricFamily(
            "geofence_fixes_waiting", "Location fixes taken and not yet carried out."
        )
        batches = CounterMetricFamily("geofence_fix_batches", _BATCHES_HELP, labels=["outcome"])
        source = self.source
        if source is not None:
            counts.add_metric(["accepted"], source.accepted)
            counts.add_metric(["refused"], source.refused)
            counts.add_metric(["carried_out"], source.carried_out)
            waiting.add_metric([], source.waiting)
            for outcome, done in source.batches.items():
                batches.add_metric([outcome], done)
        yield counts
        yield waiting
        yield batches


class SharedLocationCounts:
    """:class:`LocationCounts` summed over gateway processes (multiprocess mode):
    real metrics, set from the ingest's own counters by :meth:`sync` (about once
    a second, and at each exposition), never per fix. ``geofence_fixes_waiting``
    is summed over the live processes only."""

    def __init__(self) -> None:
        #: Set by ``create_app`` to the app's ``LocationIngest``.
        self.source: Any = None
        self._fixes = Counter(
            "geofence_fixes",
            "Location fixes by outcome in the gateway processes.",
            ("outcome",),
            registry=None,
        )
        self._waiting = Gauge(
            "geofence_fixes_waiting",
            "Location fixes taken and not yet carried out.",
            registry=None,
            multiprocess_mode="livesum",
        )
        self._batches = Counter("geofence_fix_batches", _BATCHES_HELP, ("outcome",), registry=None)
        self._synced = {"accepted": 0, "refused": 0, "carried_out": 0}
        self._batches_synced = dict.fromkeys(FIX_BATCH_OUTCOMES, 0)
        # Every outcome exposed from the start, as zero.
        for outcome in self._synced:
            self._fixes.labels(outcome)
        for outcome in self._batches_synced:
            self._batches.labels(outcome)

    def sync(self) -> None:
        """Add what the ingest counted since the last call; set the waiting gauge."""
        source = self.source
        if source is None:
            return
        now_counts = {outcome: int(getattr(source, outcome)) for outcome in self._synced}
        _add_since(self._fixes, self._synced, now_counts)
        _add_since(self._batches, self._batches_synced, source.batches)
        self._waiting.set(source.waiting)


def _add_since(counter: Counter, synced: dict[str, int], counts: Mapping[str, int]) -> None:
    """Add to ``counter`` by outcome what ``counts`` has beyond ``synced`` (a count
    that went back, a process's client made anew, adds nothing until it passes)."""
    for outcome, done in synced.items():
        now = int(counts.get(outcome, 0))
        if now > done:
            counter.labels(outcome).inc(now - done)
            synced[outcome] = now


def _no_reads() -> MetricsReads | None:
    return None


def metrics_router(
    http_metrics: HttpMetrics, reads: Callable[[], MetricsReads | None] = _no_reads
) -> APIRouter:
    """``GET /metrics`` serving ``http_metrics``'s registry (bound at app construction);
    ``reads`` gives the port the response-time histogram is read from (None while
    its database is not connected)."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition of this process's metrics (of all the gateway
        processes on this port, in multiprocess mode)."""
        found = reads()
        if found is not None:
            await http_metrics.response_times.refresh(found)
        http_metrics.sync()  # this process's own location counts as of now
        # In a thread: the process collector lists /proc/self/fd, ~10 ms with
        # 10,000 sockets open, which would stall every socket's frames (and
        # the multiprocess collector reads every process's file).
        return Response(
            content=await asyncio.to_thread(http_metrics.exposition),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    return router
