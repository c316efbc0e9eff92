"""PostgreSQL (+PostGIS) adapter on asyncpg.

Every connection the pool hands out decodes ``json``/``jsonb`` to Python
objects and encodes Python objects on the way in, so callers never call
``json.dumps`` themselves. Driver errors are translated here into
``persistence.errors``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from config.settings import PostgresSettings
from persistence.drivers.edge import DriverEdge
from persistence.errors import (
    ConfigurationError,
    Conflict,
    PersistenceError,
    SchemaNotMigrated,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

#: A connection as callers hold it: dedicated, or borrowed from a pool.
Connection = asyncpg.Connection | PoolConnectionProxy

#: Everything asyncpg (or the socket under it) raises; translate with ``translate_error``.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

#: Connect timeout; a down server must fail fast rather than hang start-up.
CONNECT_TIMEOUT_S = 5.0

#: SQLSTATE classes that mean "the server is not (yet) serving us"; retriable.
_UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "57P", "53")


class Binds:
    """The arguments of a query built from fixed fragments: calling it with a
    value appends the value and answers its placeholder (``$1``, ``$2``, ...)."""

    def __init__(self, *values: Any) -> None:
        self.values: list[Any] = list(values)

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def _json_dumps(value: Any) -> str:
    # Compact separators: jsonb does not keep whitespace, so sending it is waste.
    return json.dumps(value, separators=(",", ":"), default=str)


async def init_connection(conn: Connection) -> None:
    """Register the JSON codecs on one connection (used as the pool's ``init``)."""
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=_json_dumps,
            decoder=json.loads,
            schema="pg_catalog",
            format="text",
        )


def translate_error(exc: BaseException, *, detail: str = "") -> PersistenceError:
    """Map an asyncpg/OS exception to the package's error hierarchy.

    Use as ``raise translate_error(exc) from exc`` at the adapter edge.
    """
    message = detail or str(exc) or type(exc).__name__
    if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.ExclusionViolationError):
        return Conflict(message)
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return Conflict(message, retriable=True)
    if isinstance(
        exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidCatalogNameError
    ):
        return ConfigurationError(message)
    if isinstance(exc, asyncpg.UndefinedTableError):
        # A table the code reads is not there: the schema is behind the code (a
        # database not migrated yet). The server cannot serve, as /readyz says: a
        # 503 a client may retry, not a 500.
        return SchemaNotMigrated(message)
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.InterfaceError
        | asyncpg.ConnectionDoesNotExistError
        | asyncpg.CannotConnectNowError
        | asyncpg.TooManyConnectionsError,
    ):
        return ServiceUnavailable("postgres", message)
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", "") or ""
        if sqlstate.startswith(_UNAVAILABLE_SQLSTATE_PREFIXES):
            return ServiceUnavailable("postgres", message)
    return PersistenceError(message)


#: Maps every asyncpg/OS error leaving a block (``with EDGE: ...``).
EDGE = DriverEdge(DRIVER_ERRORS, translate_error)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """A pool ``reset`` that leaves the session as it is (see ``create_pool``)."""


async def create_pool(
    settings: PostgresSettings,
    *,
    database: str | None = None,
    reset_sessions: bool = True,
) -> asyncpg.Pool:
    """Open a connection pool to ``database`` (default: ``settings.database``).

    Opens ``pool_min`` connections before returning, so a down server or bad
    credentials surface here as ``ServiceUnavailable("postgres")`` or
    ``ConfigurationError`` instead of on the first query.

    ``reset_sessions=False`` skips the server round trip that resets session
    state (settings, LISTEN, advisory locks) on every release; an open
    transaction is still ended. Only for pools whose users never change
    session state, such as the entity store's, where that round trip was a
    fifth of the cost of a commit.
    """
    where = f"{settings.host}:{settings.port}/{database or settings.database}"
    edge = EDGE.with_translate(
        lambda exc: translate_error(exc, detail=f"cannot open pool to {where}: {exc}")
    )
    with edge:
        pool = await asyncpg.create_pool(
            dsn=settings.dsn(database),
            min_size=settings.pool_min,
            max_size=max(settings.pool_max, settings.pool_min),
            command_timeout=settings.command_timeout_s,
            timeout=CONNECT_TIMEOUT_S,
            init=init_connection,
            reset=None if reset_sessions else _keep_session,
        )
    log.info(
        "postgres pool open: %s:%s/%s (min=%s max=%s)",
        settings.host,
        settings.port,
        database or settings.database,
        settings.pool_min,
        settings.pool_max,
    )
    return pool


async def connect(dsn: str) -> asyncpg.Connection:
    """One dedicated connection (for LISTEN or advisory locks), JSON codecs registered."""
    with EDGE:
        conn = await asyncpg.connect(dsn=dsn, timeout=CONNECT_TIMEOUT_S)
        await init_connection(conn)
    return conn


def _unavailable(exc: BaseException) -> PersistenceError:
    return ServiceUnavailable("postgres", str(exc) or type(exc).__name__)


_PING_EDGE = EDGE.with_translate(_unavailable)


async def ping(pool: asyncpg.Pool, *, timeout_s: float = 2.0) -> None:
    """Round-trip ``SELECT 1``; raises ``ServiceUnavailable("postgres")`` on any failure."""
    with _PING_EDGE:
        async with asyncio.timeout(timeout_s):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
