"""Snapshots of the open alerts a socket must hear about on (re)connect.

Implements ``gateway.ws.resync.OpenAlertSource`` on the entity snapshots
(``entity_snapshots``): the state the alert actors last committed, which is
never older than anything they pushed (pushes follow the commit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import asyncpg

from persistence.drivers import postgres

# Alerts holding an offer to the agent (only dispatching and escalated ones
# can), and open alerts assigned to it: each through its index of migration 0015, whose comment says
# why neither "open" nor the kind is named here. An alert in both (it cannot
# be, by AlertState's invariants) would come once from each; the caller keeps one.
_FOR_AGENT = """
SELECT entity_id, state FROM entity_snapshots
 WHERE state->'offered_to' @> jsonb_build_array(jsonb_build_object('agent_id', $1::text))
   AND state->>'status' IN ('dispatching', 'escalated')
UNION ALL
SELECT entity_id, state FROM entity_snapshots
 WHERE state->>'assigned_agent_id' = $1::text
   AND state->>'status' NOT IN ('resolved', 'cancelled')
"""

# The user's open alerts, found through the (indexed) alerts projection.
_FOR_USER = """
SELECT s.state FROM alerts a
  JOIN entity_snapshots s ON s.kind = 'alert' AND s.entity_id = a.id::text
 WHERE a.user_id = $1 AND s.open
 ORDER BY a.created_at, a.id
"""


class PostgresOpenAlerts:
    """Read-only; safe to share between tasks (uses the pool)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        rows = await self._fetch(_FOR_AGENT, str(agent_id))
        found = {str(r["entity_id"]): dict(r["state"]) for r in rows}
        return [found[alert_id] for alert_id in sorted(found)]

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        return [dict(r["state"]) for r in await self._fetch(_FOR_USER, user_id)]

    async def _fetch(self, query: str, arg: object) -> list[asyncpg.Record]:
        with postgres.EDGE:
            return await self._pool.fetch(query, arg)
