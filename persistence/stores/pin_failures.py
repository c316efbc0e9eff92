"""Cancel-PIN attempts (``gateway.ports.PinFailures``): table ``pin_failures`` (0009).

Every attempt is claimed (a row) *before* its PIN is checked, and the counts
read after that row is committed; an attempt whose PIN turns out right is
released (its row deleted). So concurrent guesses cannot all read a count
below the limit: the k-th claim to commit reads at least k. Rows older than
the window are deleted as new ones come, so the table holds about one window
of refusals per user.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from persistence.drivers import postgres

_FORGET = "DELETE FROM pin_failures WHERE user_id = $1 AND at < $2"

_CLAIM = "INSERT INTO pin_failures (user_id, alert_id, at) VALUES ($1, $2, $3) RETURNING id"

_COUNT = """
SELECT count(*) FILTER (WHERE user_id = $1) AS by_user,
       count(*) FILTER (WHERE alert_id = $2) AS by_alert
  FROM pin_failures
 WHERE (user_id = $1 OR alert_id = $2) AND at >= $3
"""


class PostgresPinFailures:
    """``gateway.ports.PinFailures`` on one pool."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def claim_attempt(
        self, user_id: UUID, alert_id: UUID, at: datetime, since: datetime
    ) -> tuple[int, int, int]:
        with postgres.EDGE:
            async with self._pool.acquire() as connection:
                # Three statements, each committed: the count must see this claim
                # and every claim committed before it.
                await connection.execute(_FORGET, user_id, since)
                attempt_id = await connection.fetchval(_CLAIM, user_id, alert_id, at)
                row = await connection.fetchrow(_COUNT, user_id, alert_id, since)
        assert row is not None
        return int(attempt_id), int(row["by_user"]), int(row["by_alert"])

    async def release_attempt(self, attempt_id: int) -> None:
        with postgres.EDGE:
            await self._pool.execute("DELETE FROM pin_failures WHERE id = $1", attempt_id)
