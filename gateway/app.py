"""The gateway application factory.

``create_app(settings, ports=..., backends=...)`` builds a FastAPI app from
what the composition root (``panic_alert.gateway_root``) made: the adapters
behind the gateway's ports (:class:`~gateway.ports.GatewayPorts`) and the
backends whose lifecycle the lifespan runs (opened at start-up, checked by
``/readyz``, closed on shutdown). Nothing here builds an adapter, reads
globals or the environment. Start-up tolerates any backend being down: the
process comes up, ``/healthz`` answers, ``/readyz`` reports what is missing
and reconnects on later checks.

Tests inject their own backends (``backends=[...]``, e.g. the fakes in
``tests/fakes/readiness.py``) and ports (fakes in ``tests/fakes``); a port
left out answers 503 ("not configured in this process").

Request path, outermost first::

    ServerErrorMiddleware (Starlette; backstop only)
    SecurityHeadersMiddleware nosniff, Referrer-Policy, CSP, HSTS (https), no-store on /auth
    RequestContextMiddleware  request id, access log, metrics, 500 guard
    ProblemCORSMiddleware     only when settings.http.cors_origins is set
    PathAccessMiddleware      /docs and /metrics only for settings.security's networks
    BodySizeLimitMiddleware   413 above settings.http.max_body_bytes
    ExceptionMiddleware       HTTPException / validation / domain errors -> problems
    router                    /healthz /readyz /metrics + gateway.routes
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from importlib import metadata
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware

from cluster.client import EntityClient
from config.heap import freeze_startup_heap
from config.settings import Settings
from gateway import health
from gateway.auth.passwords import PasswordHasher
from gateway.auth.pins import PinChecker
from gateway.console import router as console_router
from gateway.console import tile_sources
from gateway.errors import install_domain_error_handlers
from gateway.locations import LocationIngest
from gateway.metrics import HttpMetrics, metrics_router
from gateway.middleware import (
    REQUEST_ID_HEADER,
    BodySizeLimitMiddleware,
    PathAccessMiddleware,
    ProblemCORSMiddleware,
    RequestContextMiddleware,
    SecurityHeadersMiddleware,
)
from gateway.ports import BulkSpread, GatewayPorts
from gateway.problems import install_problem_handlers
from gateway.readiness import Backend, BackendSet
from gateway.routes import api_routers
from gateway.routes.media import FORM_OVERHEAD
from gateway.routes.media_tus import TUS_REQUEST_HEADERS, TUS_RESPONSE_HEADERS
from gateway.state import GatewayState
from gateway.ws.fleet_feed import FleetFeed
from gateway.ws.hub import PushHub
from gateway.ws.openapi import add_websocket_frames
from gateway.ws.presence import AgentSockets
from gateway.ws.protocol import Limits
from gateway.ws.reads import CoalescedOpenAlerts, CoalescedSessionCheck, CoalescedVetting
from gateway.ws.transport import FastWebSocketProtocol
from media.vault import media_keys

log = logging.getLogger(__name__)

#: How long a stopping gateway waits for its last tells to reach the shards.
_FLUSH_AT_STOP_S = 2.0


def _version() -> str:
    try:
        return metadata.version("panic-alert")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def create_app(
    settings: Settings,
    *,
    ports: GatewayPorts | None = None,
    backends: Sequence[Backend] = (),
    metrics: HttpMetrics | None = None,
    routers: Sequence[APIRouter] | None = None,
    background: Sequence[Callable[[], Coroutine[Any, Any, None]]] = (),
    entities: EntityClient | None = None,
    freeze_heap: bool = False,
    bulk_spread: BulkSpread | None = None,
) -> FastAPI:
    """Build the gateway app.

    ``ports``: the adapters behind the gateway's ports (default: none; each
    port then answers 503). ``backends``: what the lifespan opens and
    ``/readyz`` checks (the root passes the reconnecting backends the ports
    read from, and Ray's when the process runs it).
    ``routers``: resource routers; default :func:`gateway.routes.api_routers`.
    ``metrics``: a metrics object (default: a fresh registry per app).
    ``background``: coroutine factories run for the app's lifetime (the outbox
    relay in ``serve``); cancelled at shutdown.
    ``entities``: the client of the entity actors (``serve`` builds it after
    starting the shards); routes get it through ``gateway.deps.EntitiesDep``.
    ``freeze_heap``: once started, exempt the start-up objects from garbage
    collection (``config.heap``; ``serve`` sets it, tests that build many
    apps in one process do not).
    ``bulk_spread``: this process's bulk-feed sockets beside the other gateway
    processes' (``serve`` with several gateways; default: none, take them all).
    """
    wired = ports if ports is not None else GatewayPorts()
    backend_set = BackendSet(backends)
    http_metrics = metrics if metrics is not None else HttpMetrics()
    # /ws pushes: one pub/sub connection per process, opened when a socket needs it.
    ws_hub = PushHub(wired.push_subscriptions)
    hasher = PasswordHasher(settings.auth)
    state = GatewayState(
        ws_setups=asyncio.Semaphore(settings.http.ws_setup_concurrency),
        media_keys=media_keys(settings.media),
        agent_sockets=AgentSockets(ws_hub, lambda: entities),
        settings=settings,
        backends=backend_set,
        metrics=http_metrics,
        ws_hub=ws_hub,
        locations=LocationIngest(
            settings.geofence,
            latest=wired.latest_locations,
            entities=lambda: entities,
            history=wired.location_history,
            location_ttl_s=settings.http.ws_location_ttl_s,
        ),
        ports=wired,
        hasher=hasher,
        pins=PinChecker(hasher, workers=settings.pins.workers),
        resync_reads=CoalescedOpenAlerts(wired.open_alerts),
        vetting_reads=CoalescedVetting(wired.agent_vetting),
        session_checks=CoalescedSessionCheck(wired.sessions),
        entities=entities,
        fleet_feed=FleetFeed(wired.fleet, interval_s=settings.http.ws_fleet_interval_s),
        bulk_spread=bulk_spread,
    )

    http_metrics.locations.source = state.locations

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        log.info("gateway starting; backends: %s", ", ".join(backend_set.names) or "none")
        await backend_set.open_all(timeout_s=settings.http.startup_timeout_s)
        tasks = [
            asyncio.create_task(start())
            for start in (
                *background,
                ws_hub.run,
                state.locations.run,
                state.agent_sockets.listen,
                http_metrics.run,
            )
        ]
        if freeze_heap:
            freeze_startup_heap("gateway")
        try:
            yield
        finally:
            log.info("gateway stopping; closing backends")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if entities is not None:
                # Tells still gathering (heartbeats wait up to a second) go now.
                try:
                    await asyncio.wait_for(entities.flush(), _FLUSH_AT_STOP_S)
                except Exception as exc:
                    log.warning("gateway stopping: unsent tells to the shards (%s)", exc)
            if state.fleet_feed is not None:
                await state.fleet_feed.close()
            await backend_set.close_all()
            state.pins.close()

    app = FastAPI(
        title="Panic Alert",
        version=_version(),
        lifespan=lifespan,
        middleware=_middleware(settings, http_metrics),
    )
    app.state.gateway = state
    install_problem_handlers(app)
    install_domain_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics_router(http_metrics, reads=wired.metrics))
    for router in api_routers() if routers is None else routers:
        app.include_router(router)
    app.include_router(console_router)
    _document_websocket(app, Limits.of(settings.http))
    return app


def server_options(settings: Settings) -> dict[str, Any]:
    """What the HTTP server (uvicorn) is given by everything that serves the app
    (``panic-alert serve``, the integration tests).

    Forwarded headers: only ``settings.security.trusted_proxies`` may set the
    client address and scheme (``X-Forwarded-For``/``-Proto``); by default none
    may. uvicorn's own default trusts loopback, so a client on the same host, or
    behind a proxy that does not overwrite the header, could pick any address,
    and with it any rate-limit bucket.

    WebSockets: the implementation (``http.ws_impl``; ``auto`` is the gateway's
    fast reader, ``gateway.ws.transport``), no frame read larger than /ws accepts
    (uvicorn's default is 16 MiB), compression and server pings as set.
    """
    trusted = [str(network) for network in settings.security.trusted_proxies]
    http = settings.http
    return {
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted,
        "ws": FastWebSocketProtocol if http.ws_impl == "auto" else http.ws_impl,
        "ws_max_size": Limits.of(http).transport_max_bytes,
        "ws_per_message_deflate": http.ws_per_message_deflate,
        "ws_ping_interval": http.ws_ping_interval_s or None,
    }


def _document_websocket(app: FastAPI, limits: Limits) -> None:
    """The OpenAPI document also lists the ``/ws`` frames (``gateway.ws.openapi``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_websocket_frames(build(), limits)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _middleware(settings: Settings, http_metrics: HttpMetrics) -> list[Middleware]:
    stack = [
        # Outermost, so even the request-context guard's 500 carries them.
        Middleware(
            SecurityHeadersMiddleware,
            settings=settings.security.model_copy(
                update={
                    "csp_extra_sources": [
                        *settings.security.csp_extra_sources,
                        *tile_sources(settings.console),
                    ]
                }
            ),
        ),
        Middleware(RequestContextMiddleware, metrics=http_metrics),
    ]
    if settings.http.cors_origins:
        stack.append(
            Middleware(
                ProblemCORSMiddleware,
                allow_origins=list(settings.http.cors_origins),
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                allow_headers=[
                    "Authorization",
                    "Content-Type",
                    "Idempotency-Key",
                    REQUEST_ID_HEADER,
                    *TUS_REQUEST_HEADERS,
                ],
                expose_headers=[REQUEST_ID_HEADER, "Retry-After", *TUS_RESPONSE_HEADERS],
                allow_credentials=False,
                max_age=600,
            )
        )
    stack.append(Middleware(PathAccessMiddleware, settings=settings.security))
    media = settings.media
    stack.append(
        Middleware(
            BodySizeLimitMiddleware,
            max_bytes=settings.http.max_body_bytes,
            # Media routes stream their bodies and count them against the media
            # limits themselves; these bounds only stop what could never fit.
            larger=[
                ("/media/uploads/", media.max_upload_bytes),
                ("/media/upload", media.max_upload_bytes + FORM_OVERHEAD),
            ],
        )
    )
    return stack
