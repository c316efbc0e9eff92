"""Pure-ASGI middleware: request context (id, access log, metrics, crash guard),
body limit, security headers, and who may read the docs and metrics.

Pure ASGI rather than ``BaseHTTPMiddleware`` so that streaming bodies are not
buffered, context variables set here are visible to the endpoint, and the
matched route (``scope["route"]``) is visible here after the call.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging import correlation_scope
from config.settings import SecuritySettings
from gateway.metrics import HttpMetrics, route_template
from gateway.problems import (
    ProblemHTTPException,
    instance_of,
    internal_error_response,
    problem_response,
    problem_type,
)

log = logging.getLogger(__name__)
access_log = logging.getLogger("gateway.access")

REQUEST_ID_HEADER: Final = "X-Request-ID"

#: An incoming request id is kept only if it is 1-128 of these characters;
#: anything else (too long, spaces, control or non-ASCII characters that could
#: forge log lines or headers) is replaced by a fresh UUID4.
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def accept_request_id(candidate: str | None) -> str:
    """``candidate`` if it is a safe request id, otherwise a new UUID4 string."""
    if candidate is not None and REQUEST_ID_PATTERN.fullmatch(candidate):
        return candidate
    return str(uuid.uuid4())


class RequestContextMiddleware:
    """Outermost layer of every HTTP request.

    * takes (validated) or generates the request id, binds it as the logging
      correlation id and echoes it in the ``X-Request-ID`` response header;
    * turns an unhandled exception into a generic 500 problem (traceback
      logged), so even a crash answers with problem details and a request id;
    * records metrics and writes exactly one JSON access-log line.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
                with correlation_scope(request_id):
                    await self.app(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return

        request_id = accept_request_id(Headers(scope=scope).get(REQUEST_ID_HEADER))
        method = str(scope.get("method", "GET"))
        status = 500
        response_started = False
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = int(message["status"])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        with correlation_scope(request_id):
            self.metrics.started(method)
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                log.exception("unhandled exception on %s %s", method, instance_of(scope))
                status = 500
                if not response_started:
                    await internal_error_response(scope)(scope, receive, send_with_id)
                # Otherwise the response is half-sent: returning ends it and the
                # server closes the connection; re-raising would only log twice.
            finally:
                duration = time.perf_counter() - started
                route = route_template(scope)
                self.metrics.finished(method, route, status, duration)
                access_log.log(
                    logging.WARNING if status >= 500 else logging.INFO,
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "path": instance_of(scope),
                        "route": route,
                        "status": status,
                        "duration_ms": round(duration * 1000, 2),
                    },
                )


BODY_TOO_LARGE_TYPE: Final = problem_type("body-too-large")


def _too_large_detail(limit: int) -> str:
    return f"The request body exceeds the limit of {limit} bytes."


class RequestBodyTooLarge(ProblemHTTPException):
    """Raised from ``receive`` once a streamed body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=_too_large_detail(limit), type_=BODY_TOO_LARGE_TYPE)
        self.limit = limit


#: Bytes of an unread request body read and dropped before an early answer (a
#: refusal of an upload), so the client reads the answer instead of a reset.
DRAIN_BYTES: Final = 16 * 1024 * 1024


async def drain(receive: Receive, limit: int) -> None:
    """Read and drop up to ``limit`` bytes of the rest of a request body."""
    dropped = 0
    while dropped <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        dropped += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413 problem details.

    Two checks: a declared ``Content-Length`` above the limit is refused
    before the endpoint runs (the body is never read); a body without one
    (chunked) or that lies about it is counted as it streams, and reading past
    the limit raises :class:`RequestBodyTooLarge` inside the endpoint, which
    the HTTPException handler renders. Routes that take larger bodies (media
    upload) get their own, larger limit in their own route module.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, larger: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        #: ``(path prefix, limit)``: routes that stream large bodies (media uploads)
        #: and count them against their own limits; the first matching prefix wins.
        self.larger = tuple(larger)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.larger:
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(str(scope.get("path", "")))
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem_response(
                    400, detail="Invalid Content-Length header.", instance=instance_of(scope)
                )(scope, receive, send)
                return
            if int(declared) > max_bytes:
                if int(declared) <= max_bytes + DRAIN_BYTES:
                    await drain(receive, int(declared))
                await self._too_large(scope, receive, send, max_bytes)
                return

        received = 0
        response_started = False
        body_done = False

        async def counting_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > max_bytes:
                    raise RequestBodyTooLarge(max_bytes)
            else:
                body_done = True
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started, body_done
            if message["type"] == "http.response.start":
                response_started = True
                if not body_done:
                    # Answering while the client still sends resets the connection
                    # before it reads the answer: read (and drop) a bounded rest.
                    await drain(receive, DRAIN_BYTES)
                    body_done = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestBodyTooLarge:
            # Reached only when the endpoint did not let the exception through
            # the HTTPException handler (e.g. it read the body after responding).
            if response_started:
                raise
            await self._too_large(scope, receive, send, max_bytes)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        await problem_response(
            413,
            detail=_too_large_detail(limit),
            type_=BODY_TOO_LARGE_TYPE,
            instance=instance_of(scope),
            # The unread body stays on the connection; ask the client not to reuse it.
            headers={"Connection": "close"},
        )(scope, receive, send)


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware, with a refused preflight answered as problem details."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in {"content-length", "content-type"}
        }
        return problem_response(
            response.status_code,
            detail=bytes(response.body).decode("utf-8", "replace"),
            headers=headers,
        )


# ------------------------------------------------------ security headers, access

#: The console's policy: its own scripts and styles only; MapLibre draws with
#: workers and images made from blobs and data URLs; the API and ``/ws`` on
#: this origin (plus ``csp_extra_sources``, e.g. the map tile server).
CONSOLE_CSP: Final = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:{extra}",
    "font-src 'self'",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    "child-src 'self' blob:",
    "connect-src 'self'{ws}{extra}",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)
#: FastAPI's /docs (Swagger UI) and /redoc pages: an inline start-up script and
#: their assets from a CDN, and nothing else.
DOCS_CSP: Final = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "font-src 'self' https://fonts.gstatic.com",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS: Final = ("/docs", "/redoc", "/openapi.json")
METRICS_PATHS: Final = ("/metrics",)
#: Responses that carry tokens (login, refresh, register) and every other /auth answer.
NO_STORE_PREFIX: Final = "/auth/"

#: A ``Host`` header is echoed into ``connect-src`` only if it is plainly a host
#: and port; anything else (``;``, spaces) could add directives.
_HOST_PATTERN: Final = re.compile(r"(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_SOURCE_PATTERN: Final = re.compile(r"[^\s;,']+")


def under(path: str, prefixes: tuple[str, ...]) -> bool:
    """``path`` is one of ``prefixes`` or below one of them."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def content_security_policy(
    path: str, scheme: str, host: str | None, extra_sources: Sequence[str] = ()
) -> str:
    """The CSP of one response: the docs pages' own, else the console's, whose
    ``connect-src`` names this origin's WebSocket URL (``'self'`` does not
    cover ``ws:``/``wss:`` in every browser)."""
    if under(path, DOCS_PATHS[:2]):
        return DOCS_CSP
    ws = ""
    if host is not None and _HOST_PATTERN.fullmatch(host):
        ws = f" {'wss' if scheme == 'https' else 'ws'}://{host}"
    extra = "".join(f" {s}" for s in extra_sources if _SOURCE_PATTERN.fullmatch(s))
    return "; ".join(part.format(ws=ws, extra=extra) for part in CONSOLE_CSP)


def security_headers(
    path: str, scheme: str, host: str | None, settings: SecuritySettings
) -> dict[str, str]:
    """Headers every HTTP response gets (a header the endpoint set itself wins)."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": content_security_policy(
            path, scheme, host, settings.csp_extra_sources
        ),
    }
    if scheme == "https" and settings.hsts_max_age_s > 0:
        headers["Strict-Transport-Security"] = f"max-age={settings.hsts_max_age_s}"
    if path.startswith(NO_STORE_PREFIX):
        # Tokens must not be kept by a browser or proxy cache (RFC 6749 5.1).
        headers["Cache-Control"] = "no-store"
        headers["Pragma"] = "no-cache"
    return headers


class SecurityHeadersMiddleware:
    """Adds :func:`security_headers` to every HTTP response, errors included.

    HSTS only when the request came over TLS (scheme ``https``, which a
    trusted proxy may set with ``X-Forwarded-Proto``), since a browser ignores
    it over plain HTTP and a development server must stay reachable.
    """

    def __init__(self, app: ASGIApp, *, settings: SecuritySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                added = security_headers(
                    str(scope.get("path", "")),
                    str(scope.get("scheme", "http")),
                    Headers(scope=scope).get("host"),
                    self.settings,
                )
                for name, value in added.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def client_allowed(client: str | None, networks: Sequence[IPv4Network | IPv6Network]) -> bool:
    """``client`` (an address, as the server saw it) is inside one of ``networks``."""
    if client is None:
        return False
    try:
        address = ip_address(client)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


class PathAccessMiddleware:
    """``/docs`` (and ``/redoc``, ``/openapi.json``) and ``/metrics`` only for
    the networks the settings allow; to anyone else they do not exist (404).

    ``None`` in the settings: open to everyone (development); ``[]``: to nobody.
    """

    def __init__(self, app: ASGIApp, *, settings: SecuritySettings) -> None:
        self.app = app
        self.rules: list[tuple[tuple[str, ...], list[IPv4Network | IPv6Network]]] = [
            (paths, list(networks))
            for paths, networks in (
                (DOCS_PATHS, settings.docs_allowed_networks),
                (METRICS_PATHS, settings.metrics_allowed_networks),
            )
            if networks is not None
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.rules:
            path = str(scope.get("path", ""))
            client = scope.get("client")
            host = str(client[0]) if client else None
            for paths, networks in self.rules:
                if under(path, paths) and not client_allowed(host, networks):
                    await problem_response(404, detail="Not Found", instance=instance_of(scope))(
                        scope, receive, send
                    )
                    return
        await self.app(scope, receive, send)
