"""Figures ``/metrics`` reads from PostgreSQL (``gateway.ports.MetricsReads``).

Alert response times are in the ``alerts`` projection, one column per
milestone (migration 0004), so every gateway replica serves the same
histogram. The query scans ``alerts``; the gateway reads it at most every
few seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from actors.alert_state import ResponseStage
from persistence.drivers import postgres


def response_query(stages: Sequence[str], buckets: Sequence[int]) -> str:
    """Per stage (an ``actors.alert_state.ResponseStage``, each a column of the
    ``alerts`` projection): ``count``, ``sum``, then one cumulative count per
    bucket bound."""
    parts = []
    for stage in stages:
        column = ResponseStage(stage).column
        parts += [f"count({column})", f"coalesce(sum({column}), 0)"]
        parts += [f"count(*) FILTER (WHERE {column} <= {int(b)})" for b in buckets]
    return "SELECT " + ", ".join(parts) + " FROM alerts"  # noqa: S608 (fixed fragments)


class PostgresMetricsReads:
    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def response_times(
        self, stages: Sequence[str], buckets: Sequence[int]
    ) -> tuple[float, ...] | None:
        """The figures in the order of :func:`response_query`; read-only."""
        with postgres.EDGE:
            row = await self._pool.fetchrow(response_query(stages, buckets))
        return None if row is None else tuple(float(v) for v in row)
