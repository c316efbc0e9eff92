"""Response-time figures over the ``alerts`` projection (``gateway.ports.Analytics``).

The seconds from an alert's creation to each milestone are columns of the
projection (migration 0004: ``offer_s``, ``accept_s``, ``on_scene_s``,
``resolve_s``; NULL until reached), kept by the entity store from each
snapshot. One query groups the alerts created in the window by bucket
(``date_trunc`` in UTC) and type, plus one all-types row per bucket
(``GROUPING SETS``), and computes each milestone's count, median and 90th
percentile (``percentile_cont``: interpolated, NULLs ignored, NULL when no
alert reached it), rounded to milliseconds in SQL.

The window is a range scan of ``alerts_created_idx``; the caller bounds its
span (``gateway.analytics``). Read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from actors.alert_state import AlertType, ResponseStage
from persistence.drivers import postgres

#: ``alert_type`` of the row summing every type of its bucket (``gateway.ports.ALL_TYPES``).
ALL_TYPES: Final = "all"

#: The widths ``date_trunc`` is asked for; anything else is refused before SQL.
BUCKETS: Final = frozenset({"hour", "day", "week"})


def _stage_columns(stage: ResponseStage) -> str:
    column = stage.column
    return (
        f"count({column}) AS {stage.value}_count, "
        f"round((percentile_cont(0.5) WITHIN GROUP (ORDER BY {column}))::numeric, 3)::float8 "
        f"AS {stage.value}_p50_s, "
        f"round((percentile_cont(0.9) WITHIN GROUP (ORDER BY {column}))::numeric, 3)::float8 "
        f"AS {stage.value}_p90_s"
    )


#: $1 since (inclusive), $2 until (exclusive), $3 the bucket width, $4 one type or NULL.
RESPONSE_TIMES: Final = f"""
WITH scoped AS (
    SELECT date_trunc($3::text, created_at, 'UTC') AS bucket_start, alert_type AS kind,
           offer_s, accept_s, on_scene_s, resolve_s
      FROM alerts
     WHERE created_at >= $1 AND created_at < $2 AND ($4::text IS NULL OR alert_type = $4::text)
)
SELECT bucket_start,
       CASE WHEN grouping(kind) = 1 THEN '{ALL_TYPES}' ELSE kind END AS alert_type,
       count(*) AS count,
       {", ".join(_stage_columns(stage) for stage in ResponseStage)}
  FROM scoped
 GROUP BY GROUPING SETS ((bucket_start, kind), (bucket_start))
 ORDER BY bucket_start, grouping(kind) DESC, kind
"""  # noqa: S608 (fixed fragments; every value is a bind parameter)


@dataclass(frozen=True, slots=True)
class StageRecord:
    count: int
    p50_s: float | None
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class ResponseTimeRecord:
    bucket_start: datetime
    #: An ``AlertType`` value, or :data:`ALL_TYPES`.
    alert_type: str
    count: int
    offer: StageRecord
    accept: StageRecord
    on_scene: StageRecord
    resolve: StageRecord


def _stage(row: asyncpg.Record, stage: ResponseStage) -> StageRecord:
    name = stage.value
    return StageRecord(row[f"{name}_count"], row[f"{name}_p50_s"], row[f"{name}_p90_s"])


def _record(row: asyncpg.Record) -> ResponseTimeRecord:
    return ResponseTimeRecord(
        bucket_start=row["bucket_start"],
        alert_type=row["alert_type"],
        count=row["count"],
        offer=_stage(row, ResponseStage.OFFER),
        accept=_stage(row, ResponseStage.ACCEPT),
        on_scene=_stage(row, ResponseStage.ON_SCENE),
        resolve=_stage(row, ResponseStage.RESOLVE),
    )


async def response_times(
    pool: asyncpg.Pool,
    *,
    since: datetime,
    until: datetime,
    bucket: str,
    alert_type: str | None,
) -> list[ResponseTimeRecord]:
    """The figures of the alerts created in ``[since, until)`` (see the module note)."""
    if bucket not in BUCKETS:
        raise ValueError(f"unknown bucket {bucket!r}")
    with postgres.EDGE:
        rows = await pool.fetch(RESPONSE_TIMES, since, until, bucket, alert_type)
    return [_record(row) for row in rows]


class PostgresAnalytics:
    """``gateway.ports.Analytics`` on one pool (cheap to make; the root makes one per use)."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def response_times(
        self,
        *,
        since: datetime,
        until: datetime,
        bucket: str,
        alert_type: AlertType | None,
    ) -> Sequence[ResponseTimeRecord]:
        return await response_times(
            self._pool,
            since=since,
            until=until,
            bucket=str(bucket),
            alert_type=None if alert_type is None else alert_type.value,
        )
