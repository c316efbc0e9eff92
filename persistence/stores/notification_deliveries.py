"""An alert's emergency-contact delivery outcomes, for the console
(``gateway.ports.AlertNotifications``).

``notification_deliveries`` (migrations 0005 and 0010) holds one row per
notification request, written once by the notifier when the request is
finished (``persistence.notifications.PostgresDeliveries``): ``delivered``,
or ``dead_lettered`` with the last error (retries spent, or the contact's
daily cap reached). The row keeps no message text and no address; the
contact it went to is joined as it is now (a deleted contact, and a webhook,
have none). Read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

import asyncpg

from persistence.drivers import postgres

#: The alert's row, with one row per delivery (NULL delivery columns when it has
#: none): no row at all means no such alert, in one round trip.
DELIVERIES_OF: Final = """
SELECT d.request_id, d.channel, d.occasion, d.contact_id, c.name AS contact_name,
       c.phone AS contact_phone, c.email AS contact_email, d.status, d.attempts,
       d.last_error, d.finished_at
  FROM alerts a
  LEFT JOIN notification_deliveries d ON d.alert_id = a.id
  LEFT JOIN emergency_contacts c ON c.id = d.contact_id
 WHERE a.id = $1
 ORDER BY d.finished_at, d.request_id
"""


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    request_id: UUID
    channel: str
    occasion: str
    contact_id: UUID | None
    contact_name: str | None
    contact_phone: str | None
    contact_email: str | None
    status: str
    attempts: int
    last_error: str | None
    finished_at: datetime


def _record(row: asyncpg.Record) -> DeliveryRecord:
    return DeliveryRecord(
        request_id=row["request_id"],
        channel=row["channel"],
        occasion=row["occasion"],
        contact_id=row["contact_id"],
        contact_name=row["contact_name"],
        contact_phone=row["contact_phone"],
        contact_email=row["contact_email"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        finished_at=row["finished_at"],
    )


async def deliveries_of(pool: asyncpg.Pool, alert_id: UUID) -> list[DeliveryRecord] | None:
    """The alert's deliveries, oldest first; None when there is no such alert."""
    with postgres.EDGE:
        rows = await pool.fetch(DELIVERIES_OF, alert_id)
    if not rows:
        return None
    return [_record(row) for row in rows if row["request_id"] is not None]


class PostgresAlertNotifications:
    """``gateway.ports.AlertNotifications`` on one pool (cheap to make)."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def deliveries_of(self, alert_id: UUID) -> Sequence[DeliveryRecord] | None:
        return await deliveries_of(self._pool, alert_id)
