"""Delivering notification requests: retries with back-off, a dead letter, once each.

:meth:`Deliverer.deliver` sends a request through its channel's provider.
A retriable failure is tried again after an exponential back-off (with
jitter) up to ``max_attempts`` in all; a failure that cannot get better, or
the last attempt's, dead-letters the request. Either outcome is recorded
(``notify.ports.DeliveryRecord``: ``notification_deliveries``) under the
request's id, and a request already recorded is not sent again: a request
consumed twice is delivered once.

No request can stop the others: whatever a provider raises (a bug, a
message it cannot build) dead-letters that request alone, with its reason;
a request to a contact past its daily cap (``notify.caps``) is dead-lettered
unsent. Only the delivery record's own failures (the database down) escape,
for the worker to be restarted and read the batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from notify.caps import DAY_S, ContactCap, cap_refusal
from notify.plan import NotificationRequest
from notify.ports import DeliveryRecord
from notify.providers import DeliveryFailed, Provider, Providers

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
        cap: ContactCap | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._record_store = record
        self._providers = providers
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._cap = cap
        self._sleep = sleep
        # Counting a contact's messages and reserving one is one step (one
        # notifier per cluster: a lock in this process is enough).
        self._cap_lock = asyncio.Lock()
        #: Each contact's requests being sent now (reserved, not yet released).
        self._in_flight: dict[UUID, set[UUID]] = {}

    async def deliver(self, request: NotificationRequest) -> DeliveryOutcome:
        """Send ``request`` unless it was already delivered or dead-lettered."""
        done = await self._recorded(request)
        if done is not None:
            return done
        provider = self._providers.get(request.channel)
        if provider is None:
            return await self._record(request, Status.DEAD_LETTERED, 1, "no provider configured")
        async with self._reserved(request) as refused:
            if refused is not None:
                return await self._record(request, Status.DEAD_LETTERED, 1, refused)
            return await self._send(request, provider)

    @contextlib.asynccontextmanager
    async def _reserved(self, request: NotificationRequest) -> AsyncIterator[str | None]:
        """Yields why the cap refuses ``request``, or None with a place reserved for it."""
        contact = request.contact_id
        if self._cap is None or contact is None:
            yield None
            return
        async with self._cap_lock:
            # Each request counted once: those in flight by their reservation,
            # not also as delivered (one recorded while its release waits for
            # this lock was counted twice, and the cap refused one too many).
            sending = frozenset(self._in_flight.get(contact, ()))
            delivered = await self._record_store.delivered_to(
                contact, within_s=DAY_S, excluding=sending
            )
            refused = cap_refusal(self._cap, contact, delivered, len(sending))
            if refused is None:
                self._in_flight.setdefault(contact, set()).add(request.id)
        try:
            yield refused
        finally:
            if refused is None:
                # Under the lock too: a count taken before this delivery was
                # recorded must still see it in flight when it reads the number.
                async with self._cap_lock:
                    in_flight = self._in_flight[contact]
                    in_flight.discard(request.id)
                    if not in_flight:
                        del self._in_flight[contact]

    async def _send(self, request: NotificationRequest, provider: Provider) -> DeliveryOutcome:
        error = "not attempted"
        for attempt in range(1, self._max_attempts + 1):
            try:
                await provider.send(request)
            except Exception as exc:  # any failure is this request's alone
                failed = (
                    exc
                    if isinstance(exc, DeliveryFailed)
                    else DeliveryFailed(f"provider error ({type(exc).__name__})", retriable=False)
                )
                error = str(failed)
                log.info(
                    "notification %s (%s) attempt %d failed: %s",
                    request.id,
                    request.channel.value,
                    attempt,
                    error,
                )
                if not failed.retriable or attempt == self._max_attempts:
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
