"""RFC 9457 problem details: the one shape of every 4xx/5xx body.

A problem is ``{"type", "title", "status", "detail", "instance"}`` served as
``application/problem+json``, plus extension members: ``request_id`` on
every problem (so a user can quote it to support), ``errors: [{loc, msg}]``
on validation failures.

Guarantees of the handlers installed by :func:`install_problem_handlers`:

* a 5xx body never carries an exception message, class name or traceback;
  the traceback is logged, tagged with the request id;
* a 422 body never echoes the submitted values (they may be passwords), only
  where (``loc``) and what (``msg``) is wrong.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, compile_path
from starlette.types import Scope

from config.logging import get_correlation_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

#: Prefix of this API's problem ``type`` URIs (RFC 9457 §3.1.1 allows URNs).
PROBLEM_TYPE_PREFIX = "urn:panic-alert:problem:"

#: ``type`` of a problem that says nothing beyond its HTTP status.
ABOUT_BLANK = "about:blank"

GENERIC_500_DETAIL = "An unexpected error occurred. Quote the request id when reporting it."


def problem_type(slug: str) -> str:
    """The ``type`` URI of a problem kind, e.g. ``problem_type("validation")``."""
    return PROBLEM_TYPE_PREFIX + slug


def status_title(status: int) -> str:
    """The standard reason phrase of ``status`` (``"Content Too Large"`` for 413)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


class ProblemHTTPException(StarletteHTTPException):
    """An ``HTTPException`` with its own problem ``type`` and, optionally, a ``title``
    other than the status phrase (rendered by the handler below)."""

    def __init__(
        self,
        status_code: int,
        *,
        detail: str | None = None,
        type_: str = ABOUT_BLANK,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, detail=detail, headers=headers)
        self.type_ = type_
        self.title = title


def problem_body(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    type_: str = ABOUT_BLANK,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON members of a problem; extensions never override the standard members."""
    body: dict[str, Any] = dict(extensions or {})
    body.update(
        type=type_,
        title=title or status_title(status),
        status=status,
        detail=detail if detail is not None else status_title(status),
    )
    if instance is not None:
        body["instance"] = instance
    request_id = get_correlation_id()
    if request_id is not None:
        body["request_id"] = request_id
    return body


def problem_response(
    status: int,
    *,
    detail: str | None = None,
    title: str | None = None,
    type_: str = ABOUT_BLANK,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    """A ready ``application/problem+json`` response."""
    return ProblemResponse(
        problem_body(
            status,
            detail=detail,
            title=title,
            type_=type_,
            instance=instance,
            extensions=extensions,
        ),
        status_code=status,
        headers=dict(headers) if headers else None,
    )


def instance_of(scope: Scope) -> str:
    """The ``instance`` member for a request: its path, without the query string."""
    return str(scope.get("root_path", "")) + str(scope.get("path", ""))


def validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """``[{loc, msg}]`` from pydantic/FastAPI errors, dropping ``input`` and ``ctx``."""
    out: list[dict[str, Any]] = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        out.append({"loc": loc, "msg": str(error.get("msg", "invalid value"))})
    return out


#: The detail FastAPI gives the HTTPException(400) it raises for an undecodable body.
_BODY_PARSE_ERROR = "There was an error parsing the body"


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Starlette/FastAPI ``HTTPException`` (including router 404/405) as a problem."""
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if status == 400 and detail == _BODY_PARSE_ERROR:
        # FastAPI's answer to a body it cannot decode (not JSON, not UTF-8).
        # API.md: a malformed body is a validation failure, 422.
        return problem_response(
            422,
            detail="The request body is not valid JSON.",
            type_=problem_type("validation"),
            instance=instance_of(request.scope),
            extensions={"errors": [{"loc": ["body"], "msg": "malformed JSON body"}]},
        )
    if status >= 500:
        # An HTTPException(5xx) raised by our own code may carry internals.
        detail = None
    headers = exc.headers
    if status == 405:
        # Starlette's 405 names only the first route matching the path; a path
        # served by several routes (GET in one, PUT in another) needs them all.
        allowed = allowed_methods(request.app.router.routes, request.scope["path"])
        if allowed:
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    type_ = exc.type_ if isinstance(exc, ProblemHTTPException) else ABOUT_BLANK
    title = exc.title if isinstance(exc, ProblemHTTPException) else None
    return problem_response(
        status,
        detail=detail,
        title=title,
        type_=type_,
        instance=instance_of(request.scope),
        headers=headers,
    )


def allowed_methods(routes: Sequence[BaseRoute], path: str) -> list[str]:
    """Every method some route serves at ``path``, sorted: the RFC 9110
    ``Allow`` of a 405 there."""
    found: set[str] = set()
    for route in iter_route_contexts(routes):
        if route.methods and route.path and _path_regex(route.path).match(path):
            found |= route.methods
    return sorted(found)


@lru_cache(maxsize=512)
def _path_regex(template: str) -> re.Pattern[str]:
    return compile_path(template)[0]


async def validation_exception_handler(request: Request, exc: Exception) -> Response:
    """Request validation failure: 422 with ``errors: [{loc, msg}]``."""
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    return problem_response(
        422,
        detail="The request is invalid; see errors for each offending field.",
        type_=problem_type("validation"),
        instance=instance_of(request.scope),
        extensions={"errors": errors},
    )


def internal_error_response(scope: Scope) -> Response:
    """The 500 sent for an unhandled exception; deliberately says nothing specific."""
    return problem_response(500, detail=GENERIC_500_DETAIL, instance=instance_of(scope))


async def unhandled_exception_handler(request: Request, exc: Exception) -> Response:
    """Backstop for exceptions that reach Starlette's outermost error middleware."""
    log.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        instance_of(request.scope),
        exc_info=exc,
    )
    return internal_error_response(request.scope)


def install_problem_handlers(app: FastAPI) -> None:
    """Render HTTP errors, validation errors and crashes as problem details."""
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_exception_handler)
    app.add_exception_handler(Exception, unhandled_exception_handler)


def invalid(loc: tuple[str, ...], msg: str) -> RequestValidationError:
    """A 422 for a check pydantic cannot make, rendered like every other validation
    failure (problem details with ``errors``)."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"}])
