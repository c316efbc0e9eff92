"""Redis adapter on ``redis.asyncio``.

Redis holds only what may be lost: sessions, last-known locations, rate-limit
counters and the pub/sub channel that pushes to gateway sockets (at-most-once;
clients resync on reconnect). Key patterns are the seed's and are built by
the helpers below so every caller spells them the same way.
"""

from __future__ import annotations

import logging
from uuid import UUID

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, RedisError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config.settings import RedisSettings
from persistence.drivers.edge import DriverEdge
from persistence.errors import ConfigurationError, PersistenceError, ServiceUnavailable

log = logging.getLogger(__name__)


def translate_error(exc: BaseException) -> PersistenceError:
    """Map a redis-py exception to the package's errors (use with ``from exc``)."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        return ConfigurationError(f"redis refused us: {detail}")
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return ServiceUnavailable("redis", detail)
    if isinstance(exc, ResponseError) and detail.startswith(("LOADING", "BUSY", "MASTERDOWN")):
        return ServiceUnavailable("redis", detail)
    return PersistenceError(f"redis: {detail}")


#: Everything redis-py (or the socket under it) raises.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)

#: Maps every redis-py/OS error leaving a block (``with redis.EDGE: ...``).
EDGE = DriverEdge(DRIVER_ERRORS, translate_error)


def create_redis(settings: RedisSettings) -> aioredis.Redis:
    """A pooled client; connects lazily, so call ``ping`` to check it at start-up.

    Responses are decoded to ``str``. Every command is bounded by
    ``socket_timeout_s`` and retried at most once, so a down or hung server
    surfaces quickly (as ``ServiceUnavailable`` through ``translate_error``).
    """
    pool = aioredis.BlockingConnectionPool(
        host=settings.host,
        port=settings.port,
        db=settings.db,
        password=settings.password.get_secret_value() if settings.password else None,
        socket_timeout=settings.socket_timeout_s,
        socket_connect_timeout=settings.socket_timeout_s,
        health_check_interval=30,
        decode_responses=True,
        # One quick retry rides over a dropped connection; redis-py's default
        # (3 retries, backoff up to seconds) would stall a request or a
        # readiness probe for ~5 s when Redis is really down.
        retry=Retry(ExponentialWithJitterBackoff(cap=0.2, base=0.05), retries=1),
        # Blocking: a burst of more concurrent commands than connections waits
        # for one (up to the socket timeout) instead of failing at once with
        # "Too many connections" (redis-py 8's default pool holds 100).
        max_connections=settings.max_connections,
        timeout=settings.socket_timeout_s,
    )
    return aioredis.Redis.from_pool(pool)


def _unavailable(exc: BaseException) -> PersistenceError:
    return ServiceUnavailable("redis", str(exc) or type(exc).__name__)


_PING_EDGE = EDGE.with_translate(_unavailable)


async def ping(client: aioredis.Redis) -> None:
    """``PING``; raises ``ServiceUnavailable("redis")`` if there is no PONG."""
    with _PING_EDGE:
        ok = await client.ping()
    if not ok:
        raise ServiceUnavailable("redis", "PING was not answered with PONG")


def session_key(role: str, user_id: UUID | str) -> str:
    """``session:{role}:{user_id}``, e.g. ``session:user:<id>``."""
    return f"session:{role}:{user_id}"


def location_key(role: str, subject_id: UUID | str) -> str:
    """``location:{role}:{id}``: last known position of a user or agent."""
    return f"location:{role}:{subject_id}"


def rate_limit_key(identifier: str) -> str:
    """``rate_limit:{identifier}``."""
    return f"rate_limit:{identifier}"
