"""The notification workers' adapters (``notify.ports``): the recipients and
the delivery record on PostgreSQL, the event consumer and publisher on Kafka;
for web push, the alert's flags (PostgreSQL) and the accounts' presence (Redis).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import redis.asyncio as aioredis

from actors.effects import push_channel
from notify.plan import Recipient
from notify.ports import Incoming, Outgoing, Recorded
from notify.webpush_plan import AlertFlags, Audience
from persistence.drivers import postgres
from persistence.drivers import redis as redis_driver
from persistence.drivers.kafka import KafkaConsumer, KafkaPublisher
from persistence.outbox.events import CloudEvent
from persistence.stores.accounts import get_account
from persistence.stores.contacts import list_contacts

_RECORDED = """
SELECT status, attempts, last_error FROM notification_deliveries WHERE request_id = $1
"""

_RECORD = """
INSERT INTO notification_deliveries
       (request_id, alert_id, channel, occasion, contact_id, status, attempts, last_error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (request_id) DO NOTHING
"""


_DELIVERED_TO = """
SELECT count(*) FROM notification_deliveries
 WHERE contact_id = $1 AND status = 'delivered'
   AND finished_at > now() - make_interval(secs => $2)
   AND request_id <> ALL($3::uuid[])
"""


class PostgresRecipients:
    """``notify.ports.Recipients`` on the accounts and contacts tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def of(self, user_id: UUID) -> tuple[str, list[Recipient]]:
        account = await get_account(self._pool, user_id)
        contacts = [
            Recipient(c.id, c.name, c.phone, c.email, c.notify_via)
            for c in await list_contacts(self._pool, user_id)
        ]
        return ("" if account is None else account.full_name), contacts


class PostgresDeliveries:
    """``notify.ports.DeliveryRecord`` on ``notification_deliveries``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def recorded(self, request_id: UUID) -> Recorded | None:
        with postgres.EDGE:
            row = await self._pool.fetchrow(_RECORDED, request_id)
        if row is None:
            return None
        return Recorded(row["status"], row["attempts"], row["last_error"])

    async def record(
        self,
        *,
        request_id: UUID,
        alert_id: UUID,
        channel: str,
        occasion: str,
        contact_id: UUID | None,
        status: str,
        attempts: int,
        error: str | None,
    ) -> None:
        with postgres.EDGE:
            await self._pool.execute(
                _RECORD,
                request_id,
                alert_id,
                channel,
                occasion,
                contact_id,
                status,
                attempts,
                None if error is None else error[:500],
            )

    async def delivered_to(
        self, contact_id: UUID, *, within_s: int, excluding: Collection[UUID] = ()
    ) -> int:
        with postgres.EDGE:
            count: int = await self._pool.fetchval(
                _DELIVERED_TO, contact_id, float(within_s), list(excluding)
            )
        return count


class KafkaIncoming:
    """``notify.ports.Consumer``: a consumer group member handing out CloudEvents."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer

    async def get_many(self, timeout_ms: int = 1000) -> Sequence[Incoming]:
        return [c.event for c in await self._consumer.get_many(timeout_ms=timeout_ms)]

    async def commit(self) -> None:
        await self._consumer.commit()

    async def ready(self, timeout_s: float = 30.0) -> None:
        await self._consumer.ready(timeout_s)


class KafkaOutgoing:
    """``notify.ports.Publisher``: each event a CloudEvent from ``source``."""

    def __init__(self, publisher: KafkaPublisher, *, source: str) -> None:
        self._publisher = publisher
        self._source = source

    async def publish(self, events: Sequence[Outgoing]) -> None:
        await self._publisher.publish_many(
            [
                (
                    e.topic,
                    CloudEvent(
                        id=e.id,
                        source=self._source,
                        type=e.type,
                        subject=e.subject,
                        time=datetime.now(UTC),
                        data=dict(e.data),
                    ),
                )
                for e in events
            ]
        )


# --- issue 19, web push: the alert's flags and the accounts' presence ---


class PostgresAlertFlags:
    """``notify.ports.AlertFlagsReader`` on the ``alerts`` projection."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def flags(self, alert_id: UUID) -> AlertFlags | None:
        with postgres.EDGE:
            row = await self._pool.fetchrow(
                "SELECT alert_type, silent, duress FROM alerts WHERE id = $1", alert_id
            )
        if row is None:
            return None
        return AlertFlags(row["alert_type"], row["silent"], row["duress"])


class RedisPresence:
    """``notify.ports.Presence``: a gateway holding a socket of the account is
    subscribed to its push channel (``gateway.ws.hub``), so ``PUBSUB NUMSUB``
    of ``ws:{kind}:{id}`` counts the gateways where its app is open."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client

    async def online(self, audience: Audience, account_id: UUID) -> bool:
        channel = push_channel(audience.value, str(account_id))
        with redis_driver.EDGE:
            counts = await self._client.pubsub_numsub(channel)
        return any(int(n) > 0 for _name, n in counts)
