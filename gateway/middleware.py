"""Pure-ASGI middleware: request context (id, access log, metrics, crash guard) and body limit.

Pure ASGI rather than ``BaseHTTPMiddleware`` so that streaming bodies are not
buffered, context variables set here are visible to the endpoint, and the
matched route (``scope["route"]``) is visible here after the call.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from config.logging import correlation_scope
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


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413 problem details.

    Two checks: a declared ``Content-Length`` above the limit is refused
    before the endpoint runs (the body is never read); a body without one
    (chunked) or that lies about it is counted as it streams, and reading past
    the limit raises :class:`RequestBodyTooLarge` inside the endpoint, which
    the HTTPException handler renders. Routes that take larger bodies (media
    upload) get their own, larger limit in their own route module.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await problem_response(
                    400, detail="Invalid Content-Length header.", instance=instance_of(scope)
                )(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except RequestBodyTooLarge:
            # Reached only when the endpoint did not let the exception through
            # the HTTPException handler (e.g. it read the body after responding).
            if response_started:
                raise
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await problem_response(
            413,
            detail=_too_large_detail(self.max_bytes),
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
