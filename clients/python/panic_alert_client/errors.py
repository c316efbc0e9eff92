"""The client's errors: one root, :class:`ClientError`, each carrying ``retriable``.

Every 4xx/5xx of the API is RFC 9457 problem details; :func:`api_error` maps
an answer to the :class:`ApiError` subclass of its status once, here, so
callers catch by meaning (``NotFound``, ``Conflict``, ``RateLimited``) and
still read the problem's fields. Driver errors (httpx, websockets) are
translated at the edge into :class:`TransportError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class ClientError(Exception):
    """Root of every error this package raises."""

    #: True when the same call may succeed later unchanged (a 429, a 503, a dropped link).
    retriable: bool = False


class TransportError(ClientError):
    """The server could not be reached or the connection broke (nothing was answered)."""

    retriable = True


class ProtocolError(ClientError):
    """The server answered something this client cannot read (not the API's shape)."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One member of a 422's ``errors``: where (``loc``) and what (``msg``)."""

    loc: tuple[str | int, ...]
    msg: str


class ApiError(ClientError):
    """An HTTP error answer, with its RFC 9457 problem details.

    ``type``, ``title``, ``detail`` and ``errors`` are the problem's members
    (empty when the body was not problem details); ``body`` is the whole
    decoded body; ``retry_after`` the seconds of a ``Retry-After`` header.
    """

    def __init__(
        self,
        status: int,
        *,
        type: str = "about:blank",  # RFC 9457 names the member so
        title: str = "",
        detail: str = "",
        errors: Sequence[FieldError] = (),
        retry_after: float | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = tuple(errors)
        self.retry_after = retry_after
        self.body: Mapping[str, Any] = body or {}
        where = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in self.errors)
        message = f"{status} {title or 'error'}: {detail}".rstrip(": ")
        super().__init__(f"{message} ({where})" if where else message)

    @property
    def request_id(self) -> str | None:
        """The server's request id (quote it to support), when it sent one."""
        value = self.body.get("request_id")
        return value if isinstance(value, str) else None


class BadRequest(ApiError):
    """400: the request could not be read."""


class Unauthorized(ApiError):
    """401: missing, invalid or expired credentials (after one refresh was tried)."""


class SessionEnded(Unauthorized):
    """The session is over: the refresh token was spent, revoked or absent, or the
    server ended the session (logout, suspension, password change). Sign in again."""


class Forbidden(ApiError):
    """403: authenticated, but this role (or a wrong PIN or password) may not."""


class NotFound(ApiError):
    """404: absent, or someone else's (the API does not tell which)."""


class Conflict(ApiError):
    """409: an invalid state transition, a duplicate, or a stale view."""


class PayloadTooLarge(ApiError):
    """413: the body (or an alert's media budget) is over the limit."""


class UnsupportedMediaType(ApiError):
    """415: not a media type the server accepts."""


class ValidationFailed(ApiError):
    """422: a field is malformed or out of range (see ``errors``)."""


class RateLimited(ApiError):
    """429: too many requests; wait ``retry_after`` seconds."""

    retriable = True


class ServerError(ApiError):
    """5xx: the server failed; 502/503/504 are retriable."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    429: RateLimited,
}


def api_error(status: int, body: object, retry_after: str | None = None) -> ApiError:
    """The error for an answer of ``status`` with decoded ``body`` (any JSON, or None). Pure."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    error = cls(
        status,
        type=_text(problem.get("type")) or "about:blank",
        title=_text(problem.get("title")),
        detail=_text(problem.get("detail")),
        errors=_field_errors(problem.get("errors")),
        retry_after=_seconds(retry_after),
        body=problem,
    )
    if status in (502, 503, 504):
        error.retriable = True
    return error


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _field_errors(value: object) -> list[FieldError]:
    if not isinstance(value, list):
        return []
    found = []
    for item in value:
        if isinstance(item, Mapping):
            loc = item.get("loc")
            parts = (
                tuple(p for p in loc if isinstance(p, str | int)) if isinstance(loc, list) else ()
            )
            found.append(FieldError(parts, _text(item.get("msg"))))
    return found


def _seconds(header: str | None) -> float | None:
    """``Retry-After`` in seconds (the API sends delta-seconds; a date is not expected)."""
    if header is None:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        return None


class FrameRefused(ClientError):
    """The server answered a socket frame with an ``error`` frame (``code``, ``message``)."""

    def __init__(self, code: str, message: str, *, retriable: bool = False) -> None:
        self.code = code
        self.message = message
        self.retriable = retriable
        super().__init__(f"{code}: {message}")
