"""PostgreSQL store of the entity runtime: snapshots, timers, outbox, projections.

The pool's codec (``persistence.drivers.postgres``) encodes jsonb parameters: pass
Python mappings, never pre-encoded strings.

Implements ``actors.ports.EntityStore``. One :meth:`PostgresEntityStore.commit`
is one statement, so one transaction: the fired and cancelled timers are
removed (unless the batch writes them again), new timers written, snapshots
upserted (a snapshot never replaces a newer one), the ``alerts`` / ``agents``
rows brought in line with their snapshots, and the events written to the
outbox. Either all of it is committed or none.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from actors.alert_state import TERMINAL, ResponseStage
from actors.effects import EntityKind, Persist
from actors.ports import CommitBatch, StoredTimer
from persistence.drivers import postgres
from persistence.outbox.writer import OutboxEvent, insert_statement

log = logging.getLogger(__name__)

_DELETE_TIMERS = """
DELETE FROM entity_timers t
 USING unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
       AS d(kind, entity_id, timer_id, due_at)
 WHERE t.kind = d.kind AND t.entity_id = d.entity_id AND t.timer_id = d.timer_id
   AND (d.due_at IS NULL OR t.due_at = d.due_at)
"""

_UPSERT_TIMERS = """
INSERT INTO entity_timers (kind, entity_id, timer_id, name, due_at, payload)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])
ON CONFLICT (kind, entity_id, timer_id)
DO UPDATE SET name = EXCLUDED.name, due_at = EXCLUDED.due_at, payload = EXCLUDED.payload
"""

_UPSERT_SNAPSHOTS = """
INSERT INTO entity_snapshots AS s (kind, entity_id, version, state, open)
SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::jsonb[], $5::boolean[])
ON CONFLICT (kind, entity_id) DO UPDATE
   SET version = EXCLUDED.version, state = EXCLUDED.state, open = EXCLUDED.open, updated_at = now()
 WHERE s.version < EXCLUDED.version
"""

_PROJECT_ALERTS = """
INSERT INTO alerts AS a (id, user_id, alert_type, status, latitude, longitude, accuracy_m,
                         description, silent, assigned_agent_id, version, created_at, resolved_at,
                         duress, offer_s, accept_s, on_scene_s, resolve_s,
                         idempotency_key, request_hash, user_status)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[], $6::float8[],
                     $7::float8[], $8::text[], $9::boolean[], $10::uuid[], $11::bigint[],
                     $12::timestamptz[], $13::timestamptz[], $14::boolean[], $15::float8[],
                     $16::float8[], $17::float8[], $18::float8[], $19::text[], $20::bytea[],
                     $21::text[])
ON CONFLICT (id) DO UPDATE
   SET status = EXCLUDED.status, assigned_agent_id = EXCLUDED.assigned_agent_id,
       user_status = EXCLUDED.user_status,
       version = EXCLUDED.version, resolved_at = EXCLUDED.resolved_at, duress = EXCLUDED.duress,
       offer_s = EXCLUDED.offer_s, accept_s = EXCLUDED.accept_s,
       on_scene_s = EXCLUDED.on_scene_s, resolve_s = EXCLUDED.resolve_s
 WHERE a.version < EXCLUDED.version
"""

_PROJECT_AGENTS = """
UPDATE agents AS g
   SET status = p.status,
       last_location = CASE WHEN p.lat IS NULL THEN g.last_location
                       ELSE ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326)::geography END,
       last_accuracy_m = COALESCE(p.accuracy, g.last_accuracy_m),
       last_seen_at = COALESCE(p.seen, g.last_seen_at)
  FROM unnest($1::uuid[], $2::text[], $3::float8[], $4::float8[], $5::float8[], $6::timestamptz[])
       AS p(id, status, lat, lon, accuracy, seen)
 WHERE g.id = p.id
"""


def _ts(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


def _is_open(persist: Persist) -> bool:
    return persist.kind is EntityKind.ALERT and persist.snapshot.get("status") not in TERMINAL


class PostgresEntityStore:
    """``EntityStore`` on asyncpg. Safe to share between tasks (uses a pool)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        source: str,
        new_event_id: Callable[[], UUID] = uuid4,
    ) -> None:
        self._pool = pool
        self._source = source
        self._new_event_id = new_event_id

    async def load_snapshot(self, kind: EntityKind, entity_id: str) -> Mapping[str, Any] | None:
        with postgres.EDGE:
            state = await self._pool.fetchval(
                "SELECT state FROM entity_snapshots WHERE kind = $1 AND entity_id = $2",
                kind.value,
                entity_id,
            )
        return None if state is None else dict(state)

    async def load_snapshots(
        self, kind: EntityKind, entity_ids: Sequence[str]
    ) -> Mapping[str, Mapping[str, Any]]:
        """The last committed snapshot of each of ``entity_ids`` that has one, by id
        (one query: ``persistence.stores.group_load``)."""
        with postgres.EDGE:
            rows = await self._pool.fetch(
                "SELECT entity_id, state FROM entity_snapshots"
                " WHERE kind = $1 AND entity_id = ANY($2::text[])",
                kind.value,
                list(entity_ids),
            )
        return {row["entity_id"]: dict(row["state"]) for row in rows}

    async def commit(self, batch: CommitBatch) -> None:
        if not batch:
            return
        statement, args = self._statement(batch)
        with postgres.EDGE:
            await self._pool.execute(statement, *args)

    def _statement(self, batch: CommitBatch) -> tuple[str, list[Any]]:
        """The whole batch as ONE statement (see the module note), and its arguments."""
        parts: list[tuple[str, list[Any]]] = []
        upserted = {(t.kind, t.entity_id, t.timer_id) for t in batch.timers}
        removed: list[tuple[str, str, str, datetime | None]] = [
            (t.kind.value, t.entity_id, t.timer_id, t.due_at)
            for t in batch.fired
            if (t.kind, t.entity_id, t.timer_id) not in upserted
        ]
        removed += [
            (k.value, e, t, None) for k, e, t in batch.cancelled if (k, e, t) not in upserted
        ]
        if removed:
            parts.append((_DELETE_TIMERS, _columns(removed)))
        if batch.timers:
            latest = {(t.kind, t.entity_id, t.timer_id): t for t in batch.timers}  # one per key
            rows = [
                (t.kind.value, t.entity_id, t.timer_id, t.name, t.due_at, dict(t.payload))
                for t in latest.values()
            ]
            parts.append((_UPSERT_TIMERS, _columns(rows)))
        if batch.snapshots:
            parts += _snapshot_parts(batch.snapshots)
        if batch.events:
            parts.append(
                insert_statement(
                    [
                        OutboxEvent(
                            self._new_event_id(),
                            e.topic.value,
                            e.key,
                            e.type.value,
                            e.subject,
                            e.data,
                            e.time,
                        )
                        for e in batch.events
                    ],
                    source=self._source,
                )
            )
        return _one_statement(parts)

    async def load_timers(self) -> Sequence[StoredTimer]:
        with postgres.EDGE:
            rows = await self._pool.fetch(
                "SELECT kind, entity_id, timer_id, name, due_at, payload FROM entity_timers"
            )
        return [
            StoredTimer(
                EntityKind(r["kind"]),
                r["entity_id"],
                r["timer_id"],
                r["name"],
                r["due_at"],
                dict(r["payload"]),
            )
            for r in rows
        ]

    async def open_alert_ids(self) -> Sequence[str]:
        with postgres.EDGE:
            rows = await self._pool.fetch(
                "SELECT entity_id FROM entity_snapshots WHERE kind = 'alert' AND open"
            )
        return [r["entity_id"] for r in rows]


def _columns(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Rows as the per-column arrays ``unnest`` takes."""
    return list(map(list, zip(*rows, strict=True)))


def _snapshot_parts(snapshots: Sequence[Persist]) -> list[tuple[str, list[Any]]]:
    latest: dict[tuple[EntityKind, str], Persist] = {}
    for p in snapshots:
        key = (p.kind, str(p.entity_id))
        if key not in latest or latest[key].version < p.version:
            latest[key] = p
    rows = [
        (p.kind.value, str(p.entity_id), p.version, dict(p.snapshot), _is_open(p))
        for p in latest.values()
    ]
    parts = [(_UPSERT_SNAPSHOTS, _columns(rows))]
    alerts = [p.snapshot for p in latest.values() if p.kind is EntityKind.ALERT]
    if alerts:
        parts.append((_PROJECT_ALERTS, _alert_columns(alerts)))
    agents = [p.snapshot for p in latest.values() if p.kind is EntityKind.AGENT]
    if agents:
        parts.append((_PROJECT_AGENTS, _agent_columns(agents)))
    return parts


_PARAMETER = re.compile(r"\$(\d+)")


def _shift(match: re.Match[str], *, base: int) -> str:
    return f"${int(match.group(1)) + base}"


def _one_statement(parts: Sequence[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    """Data-modifying statements joined into one, as ``WITH`` clauses.

    One statement is one implicit transaction and ONE round trip, where
    BEGIN, a statement per part and COMMIT were up to seven; it was most of
    the cost of a commit. The parts touch different rows (``_statement`` drops
    the removal of a timer it also upserts), as statements in one ``WITH``
    must: they all see the same snapshot of the tables. Each part keeps its
    own ``$n`` numbering, shifted here.
    """
    clauses: list[str] = []
    args: list[Any] = []
    for index, (sql, part_args) in enumerate(parts):
        base = len(args)
        shifted = _PARAMETER.sub(functools.partial(_shift, base=base), sql.strip())
        clauses.append(f"p{index} AS ({shifted})")
        args.extend(part_args)
    return "WITH " + ",\n".join(clauses) + "\nSELECT 1", args


def _alert_columns(snapshots: Sequence[Mapping[str, Any]]) -> list[Any]:
    rows = [
        (
            UUID(s["id"]),
            UUID(s["user_id"]),
            s["alert_type"],
            s["status"],
            s["latitude"],
            s["longitude"],
            s.get("accuracy_m"),
            s.get("description"),
            bool(s.get("silent")),
            None if s.get("assigned_agent_id") is None else UUID(s["assigned_agent_id"]),
            s["version"],
            _ts(s["created_at"]),
            _ts(s["updated_at"]) if s["status"] == "resolved" else None,
            s.get("duress_at") is not None,
            *(_response_s(s, stage) for stage in ResponseStage),
            # The create's Idempotency-Key, claimed in this commit (written once:
            # the update on conflict leaves it).
            s.get("idempotency_key"),
            None if s.get("request_hash") is None else bytes.fromhex(s["request_hash"]),
            # What the alert's user is shown (derived in the snapshot; actors.alert_view).
            s.get("user_status", s["status"]),
        )
        for s in snapshots
    ]
    return _columns(rows)


def _response_s(snapshot: Mapping[str, Any], stage: str) -> float | None:
    value = (snapshot.get("response_s") or {}).get(stage)
    return None if value is None else float(value)


def _agent_columns(snapshots: Sequence[Mapping[str, Any]]) -> list[Any]:
    rows = []
    for s in snapshots:
        fix = s.get("location") or {}
        rows.append(
            (
                UUID(s["id"]),
                s["availability"],
                fix.get("latitude"),
                fix.get("longitude"),
                fix.get("accuracy_m"),
                _ts(s.get("last_heartbeat_at")),
            )
        )
    return _columns(rows)
