"""Structured JSON logging on the standard ``logging`` module.

Every record becomes one JSON object on one line::

    {"time": "2026-01-01T12:00:00.123Z", "level": "INFO", "logger": "gateway.access",
     "message": "GET /alerts/{alert_id} 200", "correlation_id": "3f2c...", "alert_id": "..."}

Context travels in :mod:`contextvars`, so it follows a request or a message
through ``await`` points and ``asyncio`` tasks without being passed around:

* :func:`correlation_scope` sets the correlation id (the request id of an
  HTTP request, the event id of a consumed message);
* :func:`bind` adds fields such as ``alert_id`` or ``agent_id`` to every
  record logged inside its ``with`` block.

Privacy guarantee: fields whose name marks them as personal or secret
(email, phone, password, token, ...) are replaced by ``"[redacted]"`` at every
level, and coordinates are rounded to two decimals (about 1 km) unless the
record is DEBUG. This applies to bound context and to ``extra=`` fields; it
cannot see into free text, so never format such values into the message.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

#: The correlation id of the unit of work being handled, or None outside one.
correlation_id_var: ContextVar[str | None] = ContextVar("panic_correlation_id", default=None)

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context_var: ContextVar[Mapping[str, Any]] = ContextVar("panic_log_context", default=_EMPTY)

REDACTED = "[redacted]"

#: Field names never logged verbatim (compared lowercased).
SENSITIVE_KEYS = frozenset(
    {
        "email",
        "phone",
        "password",
        "password_hash",
        "pin",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "secret",
        "jwt",
        "api_key",
    }
)

#: Field names holding coordinates; coarsened above DEBUG.
COORDINATE_KEYS = frozenset({"latitude", "longitude", "lat", "lon", "lng"})

#: Decimals kept for coordinates above DEBUG (2 decimals ~ 1.1 km at the equator).
COORDINATE_DECIMALS = 2

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}
)


def get_correlation_id() -> str | None:
    """The correlation id bound to the current context, if any."""
    return correlation_id_var.get()


@contextmanager
def correlation_scope(correlation_id: str) -> Iterator[str]:
    """Bind ``correlation_id`` for the duration of the block (restored after)."""
    token = correlation_id_var.set(correlation_id)
    try:
        yield correlation_id
    finally:
        correlation_id_var.reset(token)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged inside the block (nested binds merge)."""
    token = _context_var.set(MappingProxyType({**_context_var.get(), **fields}))
    try:
        yield
    finally:
        _context_var.reset(token)


def scrub(key: str, value: Any, levelno: int) -> Any:
    """The value of field ``key`` as it may appear in a log line of level ``levelno``."""
    lowered = key.lower()
    if lowered in SENSITIVE_KEYS:
        return REDACTED
    if lowered in COORDINATE_KEYS and levelno > logging.DEBUG:
        try:
            return round(float(value), COORDINATE_DECIMALS)
        except (TypeError, ValueError):
            return REDACTED
    return value


# Terminal colour codes some libraries (Ray) put in messages; noise in JSON.
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def _format_time(created: float) -> str:
    stamp = datetime.fromtimestamp(created, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON; never raises on odd field values."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": _format_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": _ANSI_ESCAPE.sub("", record.getMessage()),
            "correlation_id": correlation_id_var.get(),
        }
        for key, value in _context_var.get().items():
            payload.setdefault(key, scrub(key, value, record.levelno))
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRS and not key.startswith("_"):
                payload.setdefault(key, scrub(key, value, record.levelno))
        if record.exc_info and record.exc_info[0] is not None:
            payload["exc_type"] = record.exc_info[0].__name__
            payload["exception"] = "".join(traceback.format_exception(*record.exc_info))
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = record.stack_info
        return json.dumps(payload, default=str, ensure_ascii=False, separators=(",", ":"))


#: Marks the handler installed by :func:`configure_logging`, so a second call
#: replaces it instead of adding a duplicate.
_HANDLER_NAME = "panic-alert-json"

#: Third-party loggers that are chatty at INFO.
_QUIET_LOGGERS = ("aiokafka", "asyncio", "pymongo", "urllib3", "filelock")


def configure_logging(level: str | int = "INFO", *, stream: IO[str] | None = None) -> None:
    """Route every logger to one JSON handler on ``stream`` (default: stderr).

    Idempotent: calling it again replaces the handler and level. Uvicorn's
    loggers are made to propagate to the root so they are JSON too (its own
    access log is expected to be switched off: the gateway writes one).
    """
    resolved = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(resolved, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(resolved)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "ray"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(resolved, logging.WARNING))
