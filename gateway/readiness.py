"""Backends the gateway depends on, and the readiness checks over them.

A :class:`Backend` is one external dependency (PostgreSQL, Redis, MongoDB,
Kafka, Ray) with a three-call lifecycle: ``open`` at start-up, ``check`` for
``/readyz``, ``close`` at shutdown. :func:`gateway.app.create_app` takes any
sequence of them, so tests pass fakes and the composition root
(``panic_alert.gateway_root``) passes the reconnecting backends of
``persistence.drivers.reconnecting`` (and ``cluster.readiness.RayBackend``).

Guarantees of :class:`BackendSet`:

* ``open_all`` never raises: a backend that is down at start-up is logged and
  left for ``check`` to reconnect, so the process always comes up and
  ``/healthz`` answers;
* ``check_all`` runs every check concurrently, each bounded by its own
  timeout, so one hung dependency costs ``timeout_s``, not the sum;
* state changes (ok -> failing -> ok) are logged once, not on every probe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar, runtime_checkable

from actors.store_errors import SchemaNotMigrated

log = logging.getLogger(__name__)


@runtime_checkable
class Backend(Protocol):
    """One external dependency of the gateway."""

    @property
    def name(self) -> str:
        """Stable short name used in ``/readyz`` (``postgres``, ``redis``, ...)."""
        ...

    async def open(self) -> None:
        """Connect. May raise; the caller tolerates failure."""
        ...

    async def check(self) -> None:
        """Reconnect if needed, then prove the dependency answers; raise if not."""
        ...

    async def close(self) -> None:
        """Release connections. Must not raise; safe to call twice or unopened."""
        ...


class CheckStatus(StrEnum):
    OK = "ok"
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    #: PostgreSQL answers, but ``panic-alert migrate`` has not run for this build.
    NOT_MIGRATED = "not_migrated"


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: CheckStatus
    #: Why it failed, for logs only (never sent to clients: may name hosts).
    reason: str | None
    duration_s: float

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.OK


B = TypeVar("B")


class BackendSet:
    """The gateway's backends, by name, with concurrent lifecycle and checks."""

    def __init__(self, backends: Sequence[Backend]) -> None:
        names = [b.name for b in backends]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate backend names: {', '.join(duplicates)}")
        self._backends = tuple(backends)
        self._last_ok: dict[str, bool] = {}

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._backends)

    def __len__(self) -> int:
        return len(self._backends)

    @property
    def names(self) -> list[str]:
        return [b.name for b in self._backends]

    def find(self, kind: type[B]) -> B | None:
        """The first backend that is an instance of ``kind``, if any."""
        for backend in self._backends:
            if isinstance(backend, kind):
                return backend
        return None

    async def open_all(self, *, timeout_s: float) -> list[CheckResult]:
        """Open every backend concurrently; never raises. Returns what happened."""
        results = await asyncio.gather(
            *(_timed(b.name, b.open(), timeout_s) for b in self._backends)
        )
        for result in results:
            self._last_ok[result.name] = result.ok
            if result.ok:
                log.info("%s connected in %.0f ms", result.name, result.duration_s * 1000)
            else:
                log.warning(
                    "%s not available at start-up (%s: %s); /readyz will retry",
                    result.name,
                    result.status.value,
                    result.reason,
                )
        return results

    async def check_all(self, *, timeout_s: float) -> list[CheckResult]:
        """Check every backend concurrently, each within ``timeout_s``."""
        results = await asyncio.gather(
            *(_timed(b.name, b.check(), timeout_s) for b in self._backends)
        )
        for result in results:
            previous = self._last_ok.get(result.name)
            self._last_ok[result.name] = result.ok
            if result.ok and previous is False:
                log.info("%s is ready again", result.name)
            elif not result.ok and previous is not False:
                log.warning(
                    "%s is not ready (%s: %s)", result.name, result.status.value, result.reason
                )
        return results

    async def close_all(self, *, timeout_s: float = 10.0) -> None:
        """Close every backend concurrently; never raises."""
        results = await asyncio.gather(
            *(_timed(b.name, b.close(), timeout_s) for b in self._backends)
        )
        for result in results:
            if not result.ok:
                log.warning("%s did not close cleanly: %s", result.name, result.reason)


async def _timed(name: str, call: object, timeout_s: float) -> CheckResult:
    """Await ``call`` within ``timeout_s`` and describe the outcome; never raises."""
    assert asyncio.iscoroutine(call)
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await call
    except TimeoutError:
        return CheckResult(
            name, CheckStatus.TIMEOUT, f"no answer within {timeout_s:g}s", _since(started)
        )
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        status = (
            CheckStatus.NOT_MIGRATED
            if isinstance(exc, SchemaNotMigrated)
            else CheckStatus.UNAVAILABLE
        )
        return CheckResult(name, status, reason, _since(started))
    return CheckResult(name, CheckStatus.OK, None, _since(started))


def _since(started: float) -> float:
    return time.perf_counter() - started
