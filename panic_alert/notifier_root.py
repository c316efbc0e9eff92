"""The notifier's composition root: the emergency-contact workers
(``notify.worker``) wired to PostgreSQL, Kafka and their providers, and to
the alert entities that keep each outcome; and the web push worker
(``notify.webpush``) wired to PostgreSQL (devices, alert flags, the VAPID
key), Redis (presence) and Kafka.

``NotifierRunner(settings)`` is what ``cluster.notifier.start_notifier_actor``
sends to the cluster's notifier actor, which calls it in its own process;
:func:`run_notifier` opens the ports and restarts the workers after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import asyncpg
import httpx

from cluster.notifier import AlertTell, start_notifier_actor
from config.settings import Settings
from notify.caps import ContactCap
from notify.deliver import Deliverer
from notify.webpush import WEBPUSH_GROUP, WEBPUSH_TOPICS, VapidWebPush, WebPushWorker, run_webpush
from notify.worker import (
    ALERT_TOPICS,
    DELIVER_GROUP,
    NOTIFICATION_TOPICS,
    PLAN_GROUP,
    Report,
    entity_report,
    providers,
    run_workers,
)
from panic_alert.supervise import restarting
from persistence.drivers.kafka import KafkaConsumer, KafkaPublisher
from persistence.drivers.postgres import create_pool
from persistence.drivers.redis import create_redis
from persistence.notifications import (
    KafkaIncoming,
    KafkaOutgoing,
    PostgresAlertFlags,
    PostgresDeliveries,
    PostgresRecipients,
    RedisPresence,
)
from persistence.stores.devices import PostgresDevices, PostgresVapidKeys

log = logging.getLogger(__name__)


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
    ``ready`` is set once the three consumers (planner, deliverer, web push)
    hold their partitions.
    """
    await restarting("notifier", lambda: _run(settings, report, offset_reset, group_suffix, ready))


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
            consumers.append(KafkaIncoming(consumer))
        planner, delivery = consumers
        webpush = KafkaConsumer(
            settings.kafka,
            group_id=WEBPUSH_GROUP + group_suffix,
            topics=WEBPUSH_TOPICS,
            auto_offset_reset=offset_reset,
        )
        await webpush.start()
        stack.push_async_callback(webpush.stop)
        redis = create_redis(settings.redis)
        stack.push_async_callback(redis.aclose)
        devices = PostgresDevices(pool)
        keys = PostgresVapidKeys(pool, cfg.vapid_private_key.get_secret_value())
        pusher = WebPushWorker(
            flags=PostgresAlertFlags(pool),
            presence=RedisPresence(redis),
            devices=devices,
            sender=VapidWebPush(
                client,
                private_key=await keys.private_key(),
                subject=cfg.vapid_subject,
                ttl_s=cfg.webpush_ttl_s,
            ),
            max_attempts=cfg.max_attempts,
            base_delay_s=cfg.base_delay_s,
            max_delay_s=cfg.max_delay_s,
            concurrency=cfg.concurrency,
        )
        contacts_ready, push_ready = asyncio.Event(), asyncio.Event()

        async def all_ready() -> None:
            await contacts_ready.wait()
            await push_ready.wait()
            if ready is not None:
                ready.set()

        # A task group: one worker failing stops the others before the ports close.
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                _contact_workers(
                    settings, pool, client, planner, delivery, publisher, report, contacts_ready
                )
            )
            tasks.create_task(run_webpush(KafkaIncoming(webpush), pusher, push_ready))
            tasks.create_task(all_ready())


async def _contact_workers(
    settings: Settings,
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    planner: KafkaIncoming,
    delivery: KafkaIncoming,
    publisher: KafkaPublisher,
    report: Report,
    ready: asyncio.Event,
) -> None:
    """The emergency-contact planner and deliverer (``notify.worker``)."""
    cfg = settings.notify
    await run_workers(
        planner=planner,
        delivery=delivery,
        recipients=PostgresRecipients(pool),
        publisher=KafkaOutgoing(publisher, source=settings.kafka.source),
        deliverer=Deliverer(
            PostgresDeliveries(pool),
            providers(settings, client),
            max_attempts=cfg.max_attempts,
            base_delay_s=cfg.base_delay_s,
            max_delay_s=cfg.max_delay_s,
            cap=ContactCap(cfg.max_per_contact_per_day),
        ),
        report=report,
        webhooks=cfg.webhooks,
        concurrency=cfg.concurrency,
        ready=ready,
    )


@dataclass(frozen=True, slots=True)
class NotifierRunner:
    """Runs the workers until cancelled (``cluster.notifier.RunNotifier``); pickles."""

    settings: Settings

    async def __call__(self, tell: AlertTell) -> None:
        await run_notifier(self.settings, entity_report(tell))


def start(settings: Settings, shard_count: int) -> None:
    """The cluster's notifier actor, created once however many gateways ask."""
    start_notifier_actor(
        NotifierRunner(settings),
        shard_count=shard_count,
        namespace=settings.ray.namespace,
        ask_timeout_s=settings.actors.ask_timeout_s,
    )
