"""Prometheus metrics of the HTTP surface, exposed at ``GET /metrics``.

Requests are labelled by **route template** (``/alerts/{alert_id}``), never
by raw path, so an id in a URL cannot create a new time series; requests that
matched no route share the label ``<unmatched>``. Methods outside the standard
set share ``OTHER``. Each app owns its registry, so several apps in one
process (tests) do not collide.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Scope

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
    """Request counter, latency histogram and in-flight gauge on one registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        if registry is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        labels = ("method", "route", "status")
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by route template, method and status.",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the end of the response body.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being served, by method.",
            ("method",),
            registry=self.registry,
        )

    def started(self, method: str) -> None:
        self.in_progress.labels(method_label(method)).inc()

    def finished(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Record one answered request (call exactly once per ``started``)."""
        labels = (method_label(method), route, str(status))
        self.in_progress.labels(labels[0]).dec()
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(duration_s)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_router(http_metrics: HttpMetrics) -> APIRouter:
    """``GET /metrics`` serving ``http_metrics``'s registry (bound at app construction)."""
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition of this process's metrics."""
        return Response(
            content=http_metrics.exposition(),
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )

    return router
