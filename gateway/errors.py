"""The one mapping from domain errors to HTTP statuses.

Each package below the gateway has one error root whose instances carry
``retriable`` (``actors.store_errors.PersistenceError``, raised by the ports' adapters,
``cluster.errors.ClusterError``, ``actors.errors.ActorError``). Route code
lets them propagate; the handler installed here turns them into problem
details:

* the most specific class listed in :data:`STATUS_BY_ERROR` decides the status;
* a *retriable* error whose listed status is a 4xx becomes 503 instead (the
  client's request was fine, retrying it may succeed: a serialisation
  conflict, a lock timeout);
* an unlisted error is 503 when retriable, 500 otherwise;
* every 503 carries ``Retry-After``.

The ``detail`` of a domain problem is the error's ``public_detail`` attribute
when it has one (a message written for API clients), for an entity's
rejection a text built from its structured fields (:func:`actor_detail`);
otherwise a generic text for the status, never ``str(exc)``, which may hold
SQL, hosts or driver text.

Entity rejections (``actors.errors``): the ``Conflict`` family (invalid
transition, no pending offer, already assigned, already exists, a check-in
already running) is 409, ``EntityNotFound`` 404, ``NotPermitted`` 403,
``InvalidMessage`` 422; any other ``ActorError`` (an unknown message, an
undecodable snapshot) is a bug, 500. Routes that must not reveal whether an
alert exists check visibility *before* asking the entity and answer 404
themselves, so a ``NotPermitted`` reaching this handler concerns a resource
the caller may already see.
``cluster.client.AskTimeout`` is 503 with ``Retry-After``: the message may
still be processed, and retrying it is safe for idempotent messages.
WebSocket close codes are mapped here too when the socket layer lands.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from actors import errors as actor_errors
from actors.store_errors import (
    ConfigurationError,
    Conflict,
    EncodingError,
    MigrationError,
    PersistenceError,
    PublishError,
    ServiceUnavailable,
)
from cluster.client import AskTimeout
from cluster.errors import ClusterConfigurationError, ClusterError, ClusterUnavailable
from gateway.problems import instance_of, problem_response, problem_type
from media.errors import MediaError, NotMedia, TooLarge

log = logging.getLogger(__name__)

#: Roots of the domain error hierarchies the gateway knows how to render.
DOMAIN_ERROR_ROOTS: tuple[type[Exception], ...] = (
    PersistenceError,
    ClusterError,
    actor_errors.ActorError,
    MediaError,
)

#: Most specific first: the first ``isinstance`` match wins.
STATUS_BY_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (ServiceUnavailable, 503),
    (PublishError, 503),
    (Conflict, 409),
    (EncodingError, 500),
    (ConfigurationError, 500),
    (MigrationError, 500),
    (ClusterUnavailable, 503),
    (AskTimeout, 503),
    (ClusterConfigurationError, 500),
    (actor_errors.Conflict, 409),
    (actor_errors.EntityNotFound, 404),
    (actor_errors.NotPermitted, 403),
    (actor_errors.InvalidMessage, 422),
    (actor_errors.ActorError, 500),
    (NotMedia, 415),
    (TooLarge, 413),
    (MediaError, 500),
)

#: Seconds a client is told to wait before retrying a 503.
RETRY_AFTER_S = 5

_GENERIC_DETAIL = {
    403: "You are not allowed to do this to this resource.",
    404: "The resource was not found.",
    422: "The request is not valid for this resource.",
    409: "The request conflicts with the current state of the resource.",
    413: "The content is larger than allowed.",
    415: "The content's type is not accepted.",
    500: "An unexpected error occurred. Quote the request id when reporting it.",
    503: "A backing service is temporarily unavailable; retry later.",
}

_TYPE_SLUG = {
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    503: "temporarily-unavailable",
}

#: Problem ``type`` slugs of entity rejections that clients may want to tell apart.
_ACTOR_SLUG: tuple[tuple[type[actor_errors.ActorError], str], ...] = (
    (actor_errors.InvalidTransition, "invalid-transition"),
    (actor_errors.NoPendingOffer, "no-pending-offer"),
    (actor_errors.AlreadyAssigned, "already-assigned"),
    (actor_errors.AlreadyExists, "already-exists"),
    (actor_errors.CheckInRunning, "check-in-running"),
)


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


def actor_detail(exc: actor_errors.ActorError) -> str | None:
    """A client-safe ``detail`` for an entity's rejection, from its structured fields.

    Only values the client sent or may already see (statuses, ids of the
    resource it addressed) appear; None when there is nothing specific to say.
    """
    if isinstance(exc, actor_errors.InvalidTransition):
        text = f"cannot move {exc.entity} from {exc.current!r} to {exc.requested!r}"
        return text + (f": {exc.reason}" if exc.reason else "")
    if isinstance(exc, actor_errors.NoPendingOffer):
        return f"agent {exc.agent_id} has no pending offer for alert {exc.alert_id}"
    if isinstance(exc, actor_errors.AlreadyAssigned):
        return f"agent {exc.agent_id} already holds an active assignment"
    if isinstance(exc, actor_errors.AlreadyExists):
        return (
            f"{exc.entity} {exc.entity_id} already exists with different content; "
            "an Idempotency-Key may only be reused with the same request body"
        )
    if isinstance(exc, actor_errors.CheckInRunning):
        return f"check-in {exc.check_in_id} is already running; complete it first"
    if isinstance(exc, actor_errors.EntityNotFound):
        return f"{exc.entity} not found"
    if isinstance(exc, actor_errors.Conflict):
        return "The request conflicts with the current state of the resource."
    return None


def public_detail(exc: BaseException, status: int) -> str:
    """The client-facing ``detail``: the error's own ``public_detail`` or a generic text."""
    detail = getattr(exc, "public_detail", None)
    if detail is None and isinstance(exc, actor_errors.ActorError):
        detail = actor_detail(exc)
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
    for cls, actor_slug in _ACTOR_SLUG:
        if isinstance(exc, cls):
            slug = actor_slug
            break
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
