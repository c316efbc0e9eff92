"""The notification workers: a planner and a deliverer, both Kafka consumers.

* The **planner** (group ``panic-alert-notify-plan``) reads ``panic-alerts``
  and ``alert-status-updates``; for each event that tells contacts
  (``notify.plan.occasion_of``) it loads the user's name and emergency
  contacts from PostgreSQL and publishes one ``notification.requested``
  CloudEvent per contact and channel (and webhook) onto the channel's topic,
  waiting for Kafka's acknowledgements before committing its offsets.
* The **deliverer** (group ``panic-alert-notify-deliver``) reads the three
  notification topics, delivers each request through its provider
  (``notify.deliver``: retries, dead letter, one record per request) and
  reports every outcome to the alert entity, which keeps it in the timeline
  (once per request). Offsets are committed after the batch is done.

Both are at-least-once end to end and idempotent by event / request id. A
crash anywhere re-reads the uncommitted events.

No event can stop a worker: an event that cannot be read or planned is
logged and skipped, a request that cannot be delivered is dead-lettered
with its reason (``notify.deliver``), each on its own, and the batch is
committed. Only a port that is down (an error whose ``retriable`` is true,
or a connection error) stops the workers, for the composition root to start
them again and re-read the batch: what stops them goes away by itself, so
they never restart on the same event forever. :func:`run_workers` runs
both over the ports of ``notify.ports``; the notifier's composition root
(``panic_alert.notifier_root``) opens those and restarts them after an outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from uuid import UUID

import httpx

from actors.alert_messages import NotificationOutcome
from config.settings import Settings
from notify.deliver import Deliverer, DeliveryOutcome, Status
from notify.plan import (
    TOPIC_OF,
    AlertEvent,
    Channel,
    NotificationRequest,
    occasion_of,
    plan,
)
from notify.ports import Consumer, Incoming, Outgoing, Publisher, Recipients
from notify.providers import HttpPush, HttpSms, Provider, SignedWebhook, SmtpEmail

log = logging.getLogger(__name__)

PLAN_GROUP = "panic-alert-notify-plan"
DELIVER_GROUP = "panic-alert-notify-deliver"
ALERT_TOPICS = ("panic-alerts", "alert-status-updates")
NOTIFICATION_TOPICS = ("email-notifications", "sms-notifications", "push-notifications")
REQUESTED = "notification.requested"

#: Reports an outcome to the alert's entity (its timeline).
Report = Callable[[NotificationRequest, DeliveryOutcome], Awaitable[None]]


def port_down(exc: Exception) -> bool:
    """Whether ``exc`` says a port is down (retry the batch later), not that an event is bad."""
    return bool(getattr(exc, "retriable", False)) or isinstance(exc, OSError)


def alert_event(event: Incoming) -> AlertEvent | None:
    """The planning view of an alert CloudEvent, or None when nobody is told of it."""
    occasion = occasion_of(event.type, event.data)
    if occasion is None:
        return None
    data = event.data
    try:
        return AlertEvent(
            event_id=event.id,
            occasion=occasion,
            alert_id=UUID(str(data.get("alert_id") or data["id"])),
            user_id=UUID(str(data["user_id"])),
            alert_type=data.get("alert_type"),
            latitude=data.get("latitude"),
            longitude=data.get("longitude"),
            at=event.time,
        )
    except (KeyError, ValueError, TypeError, AttributeError):
        log.warning("notify: alert event %s without its ids; skipped", event.id)
        return None


def request_event(request: NotificationRequest) -> Outgoing:
    return Outgoing(
        topic=TOPIC_OF[request.channel],
        id=str(request.id),
        type=REQUESTED,
        subject=str(request.alert_id),
        data=request.to_json(),
    )


async def plan_batch(
    recipients: Recipients,
    publisher: Publisher,
    events: Sequence[Incoming],
    *,
    webhooks: Sequence[str],
) -> int:
    """Plan and publish the requests of ``events``; how many were published."""
    requests: list[NotificationRequest] = []
    for event in events:
        try:
            found = alert_event(event)
            if found is None:
                continue
            name, contacts = await recipients.of(found.user_id)
            requests += plan(found, name, contacts, webhooks)
        except Exception as exc:
            if port_down(exc):
                raise
            log.error("notify: alert event %s not planned (%s); skipped", event.id, _kind(exc))
    if requests:
        await publisher.publish([request_event(r) for r in requests])
    return len(requests)


async def deliver_batch(
    deliverer: Deliverer, events: Sequence[Incoming], report: Report, concurrency: int
) -> list[DeliveryOutcome]:
    """Deliver the requests of ``events`` (at most ``concurrency`` at once), report each."""
    gate = asyncio.Semaphore(concurrency)

    async def one(request: NotificationRequest) -> DeliveryOutcome:
        try:
            async with gate:
                outcome = await deliverer.deliver(request)
            await report(request, outcome)
        except Exception as exc:
            if port_down(exc):
                raise
            # Not even recorded (the record refused it): logged, and the batch goes on.
            log.error("notification %s not handled (%s); skipped", request.id, _kind(exc))
            return DeliveryOutcome(
                str(request.id), Status.DEAD_LETTERED, 0, f"not handled ({_kind(exc)})"
            )
        return outcome

    requests = []
    for event in events:
        if event.type != REQUESTED:
            continue
        try:
            requests.append(NotificationRequest.from_json(event.data))
        except (KeyError, ValueError, TypeError, AttributeError):
            log.warning("notify: malformed request %s; skipped", event.id)
    return list(await asyncio.gather(*(one(r) for r in requests)))


def _kind(exc: Exception) -> str:
    # The type only: an exception's text may hold an address or a message (personal data).
    return type(exc).__name__


def providers(settings: Settings, client: httpx.AsyncClient) -> dict[Channel, Provider]:
    """The providers the settings configure (a channel left out dead-letters)."""
    cfg = settings.notify
    found: dict[Channel, Provider] = {
        Channel.WEBHOOK: SignedWebhook(client, settings.webhook_secret.get_secret_value())
    }
    if cfg.smtp_host:
        found[Channel.EMAIL] = SmtpEmail(
            host=cfg.smtp_host,
            port=cfg.smtp_port,
            sender=cfg.smtp_sender,
            username=cfg.smtp_username or None,
            password=cfg.smtp_password.get_secret_value() or None,
            start_tls=cfg.smtp_start_tls,
        )
    if cfg.sms_url:
        found[Channel.SMS] = HttpSms(
            client,
            url=cfg.sms_url,
            account=cfg.sms_account,
            token=cfg.sms_token.get_secret_value(),
            sender=cfg.sms_sender,
        )
    if cfg.push_url:
        found[Channel.PUSH] = HttpPush(
            client, url=cfg.push_url, key=cfg.push_key.get_secret_value()
        )
    return found


async def _consume(
    consumer: Consumer, handle: Callable[[Sequence[Incoming]], Awaitable[Any]]
) -> None:
    while True:
        events = await consumer.get_many(timeout_ms=500)
        if events:
            await handle(events)
            await consumer.commit()


async def run_workers(
    *,
    planner: Consumer,
    delivery: Consumer,
    recipients: Recipients,
    publisher: Publisher,
    deliverer: Deliverer,
    report: Report,
    webhooks: Sequence[str],
    concurrency: int,
    ready: asyncio.Event | None = None,
) -> None:
    """Plan and deliver until cancelled or a port fails (the caller restarts).

    ``ready`` is set once both consumers hold their partitions.
    """

    async def plan_events(events: Sequence[Incoming]) -> None:
        await plan_batch(recipients, publisher, events, webhooks=webhooks)

    async def deliver_events(events: Sequence[Incoming]) -> None:
        await deliver_batch(deliverer, events, report, concurrency)

    if ready is not None:
        await asyncio.gather(planner.ready(), delivery.ready())
        ready.set()
    log.info("notifier started")
    await asyncio.gather(_consume(planner, plan_events), _consume(delivery, deliver_events))


def entity_report(tell: Callable[[UUID, object], Awaitable[object]]) -> Report:
    """A :data:`Report` that asks the alert entity to keep the outcome in its timeline."""

    async def report(request: NotificationRequest, outcome: DeliveryOutcome) -> None:
        message = NotificationOutcome(
            request_id=request.id,
            channel=request.channel.value,
            occasion=request.occasion.value,
            contact_id=request.contact_id,
            status=outcome.status.value,
            attempts=outcome.attempts,
        )
        await tell(request.alert_id, message)

    return report
