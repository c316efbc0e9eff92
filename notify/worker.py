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
crash anywhere re-reads the uncommitted events. ``run_notifier`` runs both
and restarts them after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from actors.alert_messages import NotificationOutcome
from config.settings import Settings
from notify.deliver import Deliverer, Outcome
from notify.plan import (
    TOPIC_OF,
    AlertEvent,
    Channel,
    NotificationRequest,
    Recipient,
    occasion_of,
    plan,
)
from notify.providers import HttpPush, HttpSms, Provider, SignedWebhook, SmtpEmail
from persistence.drivers.kafka import ConsumedEvent, KafkaConsumer, KafkaPublisher
from persistence.drivers.postgres import create_pool
from persistence.outbox.events import CloudEvent
from persistence.stores.accounts import get_account
from persistence.stores.contacts import list_contacts

log = logging.getLogger(__name__)

PLAN_GROUP = "panic-alert-notify-plan"
DELIVER_GROUP = "panic-alert-notify-deliver"
ALERT_TOPICS = ("panic-alerts", "alert-status-updates")
NOTIFICATION_TOPICS = ("email-notifications", "sms-notifications", "push-notifications")
REQUESTED = "notification.requested"
RETRY_S = 2.0

#: Reports an outcome to the alert's entity (its timeline).
Report = Callable[[NotificationRequest, Outcome], Awaitable[None]]


async def recipients(pool: asyncpg.Pool, user_id: UUID) -> tuple[str, list[Recipient]]:
    """The user's name ("" for an account gone or disabled) and emergency contacts."""
    account = await get_account(pool, user_id)
    contacts = [
        Recipient(c.id, c.name, c.phone, c.email, c.notify_via)
        for c in await list_contacts(pool, user_id)
    ]
    return ("" if account is None else account.full_name), contacts


def alert_event(consumed: ConsumedEvent) -> AlertEvent | None:
    """The planning view of an alert CloudEvent, or None when nobody is told of it."""
    event = consumed.event
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
    except (KeyError, ValueError):
        log.warning("notify: alert event %s without its ids; skipped", event.id)
        return None


def request_event(request: NotificationRequest, source: str) -> tuple[str, CloudEvent]:
    return TOPIC_OF[request.channel], CloudEvent(
        id=str(request.id),
        source=source,
        type=REQUESTED,
        subject=str(request.alert_id),
        time=datetime.now(UTC),
        data=request.to_json(),
    )


async def plan_batch(
    pool: asyncpg.Pool,
    publisher: KafkaPublisher,
    events: Sequence[ConsumedEvent],
    *,
    webhooks: Sequence[str],
    source: str,
) -> int:
    """Plan and publish the requests of ``events``; how many were published."""
    requests: list[NotificationRequest] = []
    for consumed in events:
        found = alert_event(consumed)
        if found is None:
            continue
        name, contacts = await recipients(pool, found.user_id)
        requests += plan(found, name, contacts, webhooks)
    if requests:
        await publisher.publish_many([request_event(r, source) for r in requests])
    return len(requests)


async def deliver_batch(
    deliverer: Deliverer, events: Sequence[ConsumedEvent], report: Report, concurrency: int
) -> list[Outcome]:
    """Deliver the requests of ``events`` (at most ``concurrency`` at once), report each."""
    gate = asyncio.Semaphore(concurrency)

    async def one(request: NotificationRequest) -> Outcome:
        async with gate:
            outcome = await deliverer.deliver(request)
        await report(request, outcome)
        return outcome

    requests = []
    for consumed in events:
        if consumed.event.type != REQUESTED:
            continue
        try:
            requests.append(NotificationRequest.from_json(consumed.event.data))
        except (KeyError, ValueError):
            log.warning("notify: malformed request %s; skipped", consumed.event.id)
    return list(await asyncio.gather(*(one(r) for r in requests)))


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
    consumer: KafkaConsumer, handle: Callable[[list[ConsumedEvent]], Awaitable[Any]]
) -> None:
    while True:
        events = await consumer.get_many(timeout_ms=500)
        if events:
            await handle(events)
            await consumer.commit()


async def run_notifier(
    settings: Settings,
    report: Report,
    *,
    offset_reset: str = "latest",
    group_suffix: str = "",
    ready: asyncio.Event | None = None,
) -> None:
    """Plan and deliver until cancelled; reconnects by itself after an outage.

    A consumer group seen for the first time starts from the newest events
    (``offset_reset``), so a new deployment never tells contacts of alerts
    long past; after that the committed offsets carry it across restarts.
    ``group_suffix`` separates consumer groups (tests sharing one broker);
    ``ready`` is set once both consumers hold their partitions.
    """
    while True:
        try:
            await _run(settings, report, offset_reset, group_suffix, ready)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # supervising loop: log and carry on
            log.warning("notifier stopped (%s); restarting in %.0fs", exc, RETRY_S)
            await asyncio.sleep(RETRY_S)


async def _run(
    settings: Settings,
    report: Report,
    offset_reset: str,
    group_suffix: str,
    ready: asyncio.Event | None,
) -> None:
    cfg = settings.notify
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(httpx.AsyncClient(timeout=10))
        pool = await create_pool(settings.postgres)
        stack.push_async_callback(pool.close)
        publisher = KafkaPublisher(settings.kafka)
        await publisher.start()
        stack.push_async_callback(publisher.stop)
        consumers = []
        for group, topics in ((PLAN_GROUP, ALERT_TOPICS), (DELIVER_GROUP, NOTIFICATION_TOPICS)):
            consumer = KafkaConsumer(
                settings.kafka,
                group_id=group + group_suffix,
                topics=topics,
                auto_offset_reset=offset_reset,
            )
            await consumer.start()
            stack.push_async_callback(consumer.stop)
            consumers.append(consumer)
        planner, delivery = consumers
        deliverer = Deliverer(
            pool,
            providers(settings, client),
            max_attempts=cfg.max_attempts,
            base_delay_s=cfg.base_delay_s,
            max_delay_s=cfg.max_delay_s,
        )

        async def plan_events(events: list[ConsumedEvent]) -> None:
            await plan_batch(
                pool, publisher, events, webhooks=cfg.webhooks, source=settings.kafka.source
            )

        async def deliver_events(events: list[ConsumedEvent]) -> None:
            await deliver_batch(deliverer, events, report, cfg.concurrency)

        if ready is not None:
            await asyncio.gather(planner.ready(), delivery.ready())
            ready.set()
        log.info("notifier started")
        await asyncio.gather(_consume(planner, plan_events), _consume(delivery, deliver_events))


def entity_report(tell: Callable[[UUID, object], Awaitable[object]]) -> Report:
    """A :data:`Report` that asks the alert entity to keep the outcome in its timeline."""

    async def report(request: NotificationRequest, outcome: Outcome) -> None:
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
