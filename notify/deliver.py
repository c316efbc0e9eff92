"""Delivering notification requests: retries with back-off, a dead letter, once each.

:meth:`Deliverer.deliver` sends a request through its channel's provider.
A retriable failure is tried again after an exponential back-off (with
jitter) up to ``max_attempts`` in all; a failure that cannot get better, or
the last attempt's, dead-letters the request. Either outcome is recorded
(``notify.ports.DeliveryRecord``: ``notification_deliveries``) under the
request's id, and a request already recorded is not sent again: a request
consumed twice is delivered once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from notify.plan import NotificationRequest
from notify.ports import DeliveryRecord
from notify.providers import DeliveryFailed, Providers

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    DELIVERED = "delivered"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
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


class Deliverer:
    def __init__(
        self,
        record: DeliveryRecord,
        providers: Providers,
        *,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._record_store = record
        self._providers = providers
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep

    async def deliver(self, request: NotificationRequest) -> DeliveryOutcome:
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

    async def _recorded(self, request: NotificationRequest) -> DeliveryOutcome | None:
        found = await self._record_store.recorded(request.id)
        if found is None:
            return None
        return DeliveryOutcome(
            str(request.id), Status(found.status), found.attempts, found.error, True
        )

    async def _record(
        self, request: NotificationRequest, status: Status, attempts: int, error: str | None
    ) -> DeliveryOutcome:
        await self._record_store.record(
            request_id=request.id,
            alert_id=request.alert_id,
            channel=request.channel.value,
            occasion=request.occasion.value,
            contact_id=request.contact_id,
            status=status.value,
            attempts=attempts,
            error=error,
        )
        if status is Status.DEAD_LETTERED:
            log.warning(
                "notification %s (%s) dead-lettered after %d attempts: %s",
                request.id,
                request.channel.value,
                attempts,
                error,
            )
        return DeliveryOutcome(str(request.id), status, attempts, error)
