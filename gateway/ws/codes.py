"""Every WebSocket close code and ``error`` frame code of ``/ws``, in one place.

Close codes end the socket; error codes go in ``{"type": "error", "data":
{"code", "message", "ref"?}}`` frames and leave the socket open. Domain
errors raised by the entities keep their own stable ``ActorError.code``
(``invalid_transition``, ``no_pending_offer``, ``not_permitted``, ...);
:func:`describe_error` turns any exception the session meets into a code and
a message a client may see (never a traceback).
"""

from __future__ import annotations

import enum

from actors.errors import ActorError
from actors.store_errors import PersistenceError
from cluster.client import AskTimeout
from cluster.errors import ClusterError


class CloseCode(enum.IntEnum):
    """The codes the gateway closes a socket with (RFC 6455's and ours, 4xxx)."""

    #: More client frames than the socket's token bucket allows
    #: (``http.ws_frame_rate`` a second, ``http.ws_frame_burst`` at once); sent
    #: after an ``error`` frame ``rate_limited``. On ``/ws/locations``, before
    #: ``auth.ok``: the key already holds ``http.ws_max_bulk_sockets_per_key``
    #: sockets on this gateway process (reason ``gateway.ws.bulk.KEY_CAP_REASON``). On
    #: ``/ws``, an open socket: a newer socket of its account made the account hold more
    #: than ``http.ws_max_sockets_per_account`` on this process, and the oldest goes
    #: (reason ``gateway.ws.account_sockets.REPLACED_REASON``).
    POLICY_VIOLATION = 1008
    #: A client frame above ``http.ws_max_frame_bytes`` (before authentication:
    #: ``http.ws_max_auth_frame_bytes``).
    TOO_BIG = 1009
    #: A bug on our side.
    INTERNAL = 1011
    #: A backend (Redis, PostgreSQL) is down, or the socket fell too far behind its
    #: pushes; reconnect later (the app resyncs on reconnect).
    TRY_AGAIN_LATER = 1013
    #: No valid ``auth`` frame in time, or its token is invalid, expired or revoked;
    #: or, on an open socket, its access token expired (reason ``token expired``) or
    #: its login session ended (``session revoked``: logout, refresh-token reuse,
    #: every session of the account closed). Reconnect with a fresh token.
    UNAUTHENTICATED = 4401
    #: Nothing received for ``http.ws_heartbeat_timeout_s`` (send ``ping``).
    IDLE_TIMEOUT = 4408


class ErrorCode(enum.StrEnum):
    #: Not JSON, not an object, or ``type`` / ``id`` / ``data`` of the wrong kind.
    BAD_FRAME = "bad_frame"
    UNKNOWN_TYPE = "unknown_type"
    #: ``data`` fails the frame's schema (wrong field types, out-of-range values).
    INVALID_DATA = "invalid_data"
    #: Only text frames carry JSON.
    BINARY_UNSUPPORTED = "binary_unsupported"
    #: The frame type is not for this principal's role (a user sending agent frames).
    FORBIDDEN = "forbidden"
    ALREADY_AUTHENTICATED = "already_authenticated"
    #: A backend did not answer; the same frame may succeed later.
    UNAVAILABLE = "unavailable"
    #: The entity did not answer in time; the frame may still take effect.
    TIMEOUT = "timeout"
    #: Too many frames (see ``CloseCode.POLICY_VIOLATION``); the socket is closed next.
    RATE_LIMITED = "rate_limited"
    INTERNAL = "internal"


def describe_error(exc: BaseException) -> tuple[str, str, bool]:
    """``(code, message, retriable)`` for an error met while carrying out a frame."""
    if isinstance(exc, ActorError):
        return exc.code, str(exc), exc.retriable
    if isinstance(exc, AskTimeout):
        return ErrorCode.TIMEOUT.value, "the entity did not answer in time", True
    if isinstance(exc, ClusterError | PersistenceError):
        return ErrorCode.UNAVAILABLE.value, "a backend is unavailable; retry later", True
    return ErrorCode.INTERNAL.value, "internal error", False
