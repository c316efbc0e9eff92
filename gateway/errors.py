"""The one mapping from domain errors to HTTP statuses.

Each package below the gateway has one error root whose instances carry
``retriable`` (``persistence.errors.PersistenceError``,
``cluster.errors.ClusterError``). Route code lets them propagate; the handler
installed here turns them into problem details:

* the most specific class listed in :data:`STATUS_BY_ERROR` decides the status;
* a *retriable* error whose listed status is a 4xx becomes 503 instead (the
  client's request was fine, retrying it may succeed: a serialisation
  conflict, a lock timeout);
* an unlisted error is 503 when retriable, 500 otherwise;
* every 503 carries ``Retry-After``.

The ``detail`` of a domain problem is the error's ``public_detail`` attribute
when it has one (a message written for API clients); otherwise a generic text
for the status, never ``str(exc)``, which may hold SQL, hosts or driver text.
WebSocket close codes are mapped here too when the socket layer lands.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from cluster.errors import ClusterConfigurationError, ClusterError, ClusterUnavailable
from gateway.problems import instance_of, problem_response, problem_type
from persistence.errors import (
    ConfigurationError,
    Conflict,
    EncodingError,
    MigrationError,
    PersistenceError,
    PublishError,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

#: Roots of the domain error hierarchies the gateway knows how to render.
DOMAIN_ERROR_ROOTS: tuple[type[Exception], ...] = (PersistenceError, ClusterError)

#: Most specific first: the first ``isinstance`` match wins.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (ServiceUnavailable, 503),
    (PublishError, 503),
    (Conflict, 409),
    (EncodingError, 500),
    (ConfigurationError, 500),
    (MigrationError, 500),
    (ClusterUnavailable, 503),
    (ClusterConfigurationError, 500),
)

#: Seconds a client is told to wait before retrying a 503.
RETRY_AFTER_S = 5

_GENERIC_DETAIL = {
    409: "The request conflicts with the current state of the resource.",
    500: "An unexpected error occurred. Quote the request id when reporting it.",
    503: "A backing service is temporarily unavailable; retry later.",
}

_TYPE_SLUG = {409: "conflict", 503: "temporarily-unavailable"}


def is_retriable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retriable", False))


def status_for(exc: BaseException) -> int:
    """The HTTP status for a domain error (see the module docstring for the rules)."""
    retriable = is_retriable(exc)
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            if retriable and status < 500:
                return 503
            return status
    return 503 if retriable else 500


def public_detail(exc: BaseException, status: int) -> str:
    """The client-facing ``detail``: the error's own ``public_detail`` or a generic text."""
    detail = getattr(exc, "public_detail", None)
    if isinstance(detail, str) and detail and status < 500:
        return detail
    return _GENERIC_DETAIL.get(status, _GENERIC_DETAIL[500])


def domain_problem(exc: Exception, request: Request) -> Response:
    """The problem-details response for a domain error raised while serving ``request``."""
    status = status_for(exc)
    if status >= 500:
        log.log(
            logging.WARNING if status == 503 else logging.ERROR,
            "%s on %s %s -> %s: %s",
            type(exc).__name__,
            request.method,
            instance_of(request.scope),
            status,
            exc,
            exc_info=status != 503,
        )
    slug = _TYPE_SLUG.get(status)
    return problem_response(
        status,
        detail=public_detail(exc, status),
        type_=problem_type(slug) if slug else "about:blank",
        instance=instance_of(request.scope),
        headers={"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None,
    )


async def domain_error_handler(request: Request, exc: Exception) -> Response:
    return domain_problem(exc, request)


def install_domain_error_handlers(app: FastAPI) -> None:
    """Render every domain error root as problem details with its mapped status."""
    for root in DOMAIN_ERROR_ROOTS:
        app.add_exception_handler(root, domain_error_handler)
