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

# For each agent of $1: the alerts holding an offer to it (only dispatching
# and escalated ones can), and the open alerts assigned to it, each through
# its index of migration 0015, whose comment says why neither "open" nor the
# kind is named here. One statement serves the agents of many sockets
# reconnecting at once (gateway.ws.reads); LATERAL keeps it a loop of index
# lookups per agent. An alert in both parts (it cannot be, by AlertState's
# invariants) would come once from each; the caller keeps one.
_FOR_AGENTS = """
SELECT w.agent_id, s.entity_id, s.state
  FROM unnest($1::text[]) AS w(agent_id)
 CROSS JOIN LATERAL (
   SELECT entity_id, state FROM entity_snapshots
    WHERE state->'offered_to' @> jsonb_build_array(jsonb_build_object('agent_id', w.agent_id))
      AND state->>'status' IN ('dispatching', 'escalated')
   UNION ALL
   SELECT entity_id, state FROM entity_snapshots
    WHERE state->>'assigned_agent_id' = w.agent_id
      AND state->>'status' NOT IN ('resolved', 'cancelled')
 ) s
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
        return (await self.for_agents([agent_id]))[0]

    async def for_agents(self, agent_ids: Sequence[UUID]) -> list[list[Mapping[str, Any]]]:
        """:meth:`for_agent` of each of ``agent_ids`` (in that order), in one statement."""
        wanted = [str(agent_id) for agent_id in agent_ids]
        found: dict[str, dict[str, dict[str, Any]]] = {agent_id: {} for agent_id in wanted}
        for row in await self._fetch(_FOR_AGENTS, wanted):
            found[row["agent_id"]][str(row["entity_id"])] = dict(row["state"])
        return [
            [alerts[alert_id] for alert_id in sorted(alerts)]
            for alerts in (found[agent_id] for agent_id in wanted)
        ]

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        return [dict(r["state"]) for r in await self._fetch(_FOR_USER, user_id)]

    async def _fetch(self, query: str, arg: object) -> list[asyncpg.Record]:
        with postgres.EDGE:
            return await self._pool.fetch(query, arg)
