"""Refused cancel PINs (``gateway.ports.PinFailures``): table ``pin_failures`` (0009).

One row per refusal; counted per user and per alert since a time, in one
statement. Rows older than the window a count asks about are deleted when a
new one is recorded, so the table holds about one window of refusals.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from persistence.drivers import postgres

_COUNT = """
SELECT count(*) FILTER (WHERE user_id = $1) AS by_user,
       count(*) FILTER (WHERE alert_id = $2) AS by_alert
  FROM pin_failures
 WHERE (user_id = $1 OR alert_id = $2) AND at >= $3
"""

_RECORD = """
WITH gone AS (DELETE FROM pin_failures WHERE user_id = $1 AND at < $4)
INSERT INTO pin_failures (user_id, alert_id, at) VALUES ($1, $2, $3)
"""


class PostgresPinFailures:
    """``gateway.ports.PinFailures`` on one pool."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def count_failures(
        self, user_id: UUID, alert_id: UUID, since: datetime
    ) -> tuple[int, int]:
        with postgres.EDGE:
            row = await self._pool.fetchrow(_COUNT, user_id, alert_id, since)
        assert row is not None
        return int(row["by_user"]), int(row["by_alert"])

    async def record_failure(
        self, user_id: UUID, alert_id: UUID, at: datetime, forget_before: datetime
    ) -> None:
        with postgres.EDGE:
            await self._pool.execute(_RECORD, user_id, alert_id, at, forget_before)
