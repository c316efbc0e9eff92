"""Delivering notification requests: retries with back-off, a dead letter, once each.

:meth:`Deliverer.deliver` sends a request through its channel's provider.
A retriable failure is tried again after an exponential back-off (with
jitter) up to ``max_attempts`` in all; a failure that cannot get better, or
the last attempt's, dead-letters the request. Either outcome is recorded in
``notification_deliveries`` under the request's id, and a request already
recorded is not sent again: a request consumed twice is delivered once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from notify.plan import NotificationRequest
from notify.providers import DeliveryFailed, Providers
from persistence.drivers import postgres

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a request ended; ``repeated`` when it had ended before (not sent again)."""

    request_id: str
    status: Status
    attempts: int
    error: str | None = None
    repeated: bool = False


def backoff_s(attempt: int, *, base_s: float, ceiling_s: float, jitter: float = 0.2) -> float:
    """Wait before attempt ``attempt + 1``: base * 2^(attempt-1), capped, +-jitter."""
    delay: float = min(ceiling_s, base_s * 2.0 ** (attempt - 1))
    return delay * (1.0 + random.uniform(-jitter, jitter))


_RECORD = """
INSERT INTO notification_deliveries
       (request_id, alert_id, channel, occasion, contact_id, status, attempts, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (request_id) DO NOTHING
"""


class Deliverer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: Providers,
        *,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._pool = pool
        self._providers = providers
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep

    async def deliver(self, request: NotificationRequest) -> Outcome:
        """Send ``request`` unless it was already delivered or dead-lettered."""
        done = await self._recorded(request)
        if done is not None:
            return done
        provider = self._providers.get(request.channel)
        if provider is None:
            return await self._record(request, Status.DEAD_LETTERED, 1, "no provider configured")
        error = "not attempted"
        for attempt in range(1, self._max_attempts + 1):
            try:
                await provider.send(request)
            except DeliveryFailed as exc:
                error = str(exc)
                log.info(
                    "notification %s (%s) attempt %d failed: %s",
                    request.id,
                    request.channel.value,
                    attempt,
                    error,
                )
                if not exc.retriable or attempt == self._max_attempts:
                    return await self._record(request, Status.DEAD_LETTERED, attempt, error)
                await self._sleep(
                    backoff_s(attempt, base_s=self._base_delay_s, ceiling_s=self._max_delay_s)
                )
                continue
            return await self._record(request, Status.DELIVERED, attempt, None)
        return await self._record(request, Status.DEAD_LETTERED, self._max_attempts, error)

    async def _recorded(self, request: NotificationRequest) -> Outcome | None:
        try:
            row = await self._pool.fetchrow(
                "SELECT status, attempts, last_error FROM notification_deliveries "
                "WHERE request_id = $1",
                request.id,
            )
        except postgres.DRIVER_ERRORS as exc:
            raise postgres.translate_error(exc) from exc
        if row is None:
            return None
        return Outcome(
            str(request.id), Status(row["status"]), row["attempts"], row["last_error"], True
        )

    async def _record(
        self, request: NotificationRequest, status: Status, attempts: int, error: str | None
    ) -> Outcome:
        try:
            await self._pool.execute(
                _RECORD,
                request.id,
                request.alert_id,
                request.channel.value,
                request.occasion.value,
                request.contact_id,
                status.value,
                attempts,
                None if error is None else error[:500],
            )
        except postgres.DRIVER_ERRORS as exc:
            raise postgres.translate_error(exc) from exc
        if status is Status.DEAD_LETTERED:
            log.warning(
                "notification %s (%s) dead-lettered after %d attempts: %s",
                request.id,
                request.channel.value,
                attempts,
                error,
            )
        return Outcome(str(request.id), status, attempts, error)
