"""Web push to the apps: the VAPID sender and the worker (consumer group
``panic-alert-notify-webpush`` on ``alert-responses`` and ``alert-status-updates``).

For each event the worker asks ``notify.webpush_plan`` whom it tells
(:func:`~notify.webpush_plan.target_of`), reads the alert's flags and the
account's presence (a live socket on any gateway: the Redis pub/sub channel
``ws:{user|agent}:{id}`` has a subscriber), and when the app is not open
sends the message to each of the account's web devices.

Delivery: each device gets the payload encrypted for its subscription
(RFC 8291 ``aes128gcm``, pywebpush) with a VAPID ``Authorization`` (RFC
8292), over the notifier's HTTP client. A retriable failure (a connection
error, 408, 429, 5xx) is tried again with the notifier's exponential
back-off up to ``max_attempts``; a failure that cannot get better, or the
last attempt's, dead-letters that push (logged with the device id, never the
endpoint or the payload). A 404 or 410 from the push service means the
subscription is gone: the device is deleted, not retried.

At-least-once, like the other workers: a batch re-read after a crash pushes
again, which the device shows as one notification (``tag`` = alert id). No
event can stop the worker; only a port that is down does (the caller
restarts it and the batch is read again).
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol
from uuid import UUID

import httpx
from pywebpush import WebPusher, WebPushException

from notify import vapid
from notify.deliver import backoff_s
from notify.ports import AlertFlagsReader, Consumer, Incoming, Presence, WebDevice, WebDevices
from notify.providers import DeliveryFailed
from notify.webpush_plan import Urgency, WebPushMessage, message_for, targets_of, wanted
from notify.worker import port_down

log = logging.getLogger(__name__)

WEBPUSH_GROUP: Final = "panic-alert-notify-webpush"
WEBPUSH_TOPICS: Final = ("alert-responses", "alert-status-updates")


class SubscriptionGone(Exception):
    """The push service no longer knows the subscription (404/410): forget the device."""


class Sender(Protocol):
    async def send(self, subscription: Mapping[str, Any], payload: bytes, urgency: Urgency) -> None:
        """Push ``payload`` to one subscription; raises :class:`SubscriptionGone`
        or ``DeliveryFailed`` (``retriable`` says whether a retry may work)."""
        ...


class VapidWebPush:
    """:class:`Sender` over HTTP: ``aes128gcm`` payloads signed with a VAPID key."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        private_key: str,
        subject: str,
        ttl_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        vapid.public_key(private_key)  # refuse a bad key at once, not at the first push
        self._client = client
        self._private_key = private_key
        self._subject = subject
        self._ttl_s = ttl_s
        self._clock = clock

    async def send(self, subscription: Mapping[str, Any], payload: bytes, urgency: Urgency) -> None:
        endpoint = str(subscription["endpoint"])
        try:
            body = WebPusher(dict(subscription)).encode(payload, "aes128gcm")["body"]
        except (WebPushException, ValueError, TypeError) as exc:
            raise DeliveryFailed("subscription keys unusable", retriable=False) from exc
        headers = {
            "Authorization": vapid.authorization(
                self._private_key, endpoint, self._subject, self._clock()
            ),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(self._ttl_s),
            "Urgency": urgency.value,
        }
        try:
            response = await self._client.post(endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:  # connect errors, timeouts: it may recover
            raise DeliveryFailed(type(exc).__name__) from exc
        if response.status_code in (404, 410):
            raise SubscriptionGone(response.status_code)
        if response.is_success:
            return
        retriable = response.status_code >= 500 or response.status_code in (408, 429)
        raise DeliveryFailed(f"HTTP {response.status_code}", retriable=retriable)


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"
    DEAD_LETTERED = "dead_lettered"


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """How one push to one device ended."""

    device_id: UUID
    alert_id: UUID
    frame: str
    outcome: Outcome
    attempts: int
    error: str | None = None


class WebPushWorker:
    """Turns alert events into web pushes; see the module docstring."""

    def __init__(
        self,
        *,
        flags: AlertFlagsReader,
        presence: Presence,
        devices: WebDevices,
        sender: Sender,
        max_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 60.0,
        concurrency: int = 16,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._flags = flags
        self._presence = presence
        self._devices = devices
        self._sender = sender
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._gate = asyncio.Semaphore(concurrency)
        self._sleep = sleep

    async def handle(self, events: Sequence[Incoming]) -> list[PushOutcome]:
        """Push what ``events`` call for; every push's outcome. Each device gets its
        pushes in the order of ``events``; a device found gone gets no more."""
        messages: list[WebPushMessage] = []
        for event in events:
            try:
                messages += await self._messages(event)
            except Exception as exc:
                if port_down(exc):
                    raise
                log.error("webpush: event %s not planned (%s); skipped", event.id, _kind(exc))
        # One device's pushes go in event order (a later status must not be
        # replaced by an earlier one: they share the alert's tag); devices at once.
        queues: dict[UUID, list[tuple[WebPushMessage, WebDevice]]] = {}
        for message in messages:
            for device in await self._devices.web_devices(message.account_id):
                queues.setdefault(device.id, []).append((message, device))

        async def in_order(queue: list[tuple[WebPushMessage, WebDevice]]) -> list[PushOutcome]:
            done = []
            for message, device in queue:
                outcome = await self._push(message, device)
                done.append(outcome)
                if outcome.outcome is Outcome.GONE:
                    break
            return done

        per_device = await asyncio.gather(*(in_order(q) for q in queues.values()))
        return [outcome for done in per_device for outcome in done]

    async def _messages(self, event: Incoming) -> list[WebPushMessage]:
        targets = targets_of(event.type, event.data)
        if not targets:
            return []
        flags = await self._flags.flags(targets[0].alert_id)
        if flags is None:
            return []
        found = []
        for target in targets:
            message = message_for(target, flags)
            if message is None:
                continue
            online = await self._presence.online(message.audience, message.account_id)
            if wanted(message, online):
                found.append(message)
        return found

    async def _push(self, message: WebPushMessage, device: WebDevice) -> PushOutcome:
        def ended(outcome: Outcome, attempts: int, error: str | None = None) -> PushOutcome:
            if outcome is Outcome.DEAD_LETTERED:
                log.warning(
                    "webpush %s for alert %s to device %s dead-lettered after %d attempts: %s",
                    message.frame,
                    message.alert_id,
                    device.id,
                    attempts,
                    error,
                )
            return PushOutcome(device.id, message.alert_id, message.frame, outcome, attempts, error)

        try:
            subscription = json.loads(device.subscription)
        except ValueError:
            return ended(Outcome.DEAD_LETTERED, 1, "stored subscription is not JSON")
        error = "not attempted"
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._gate:
                    await self._sender.send(subscription, message.payload(), message.urgency)
            except SubscriptionGone:
                await self._devices.forget(device.id)
                log.info("webpush: device %s is gone; forgotten", device.id)
                return ended(Outcome.GONE, attempt)
            except Exception as exc:  # this push's alone
                failed = (
                    exc
                    if isinstance(exc, DeliveryFailed)
                    else DeliveryFailed(f"sender error ({_kind(exc)})", retriable=False)
                )
                error = str(failed)
                if not failed.retriable or attempt == self._max_attempts:
                    return ended(Outcome.DEAD_LETTERED, attempt, error)
                await self._sleep(
                    backoff_s(attempt, base_s=self._base_delay_s, ceiling_s=self._max_delay_s)
                )
                continue
            return ended(Outcome.DELIVERED, attempt)
        return ended(Outcome.DEAD_LETTERED, self._max_attempts, error)


def _kind(exc: Exception) -> str:
    return type(exc).__name__


async def run_webpush(
    consumer: Consumer, worker: WebPushWorker, ready: asyncio.Event | None = None
) -> None:
    """Consume and push until cancelled or a port fails (the caller restarts);
    offsets are committed after each batch is done."""
    if ready is not None:
        await consumer.ready()
        ready.set()
    while True:
        events = await consumer.get_many(timeout_ms=500)
        if events:
            await worker.handle(events)
            await consumer.commit()
