"""Read side of alerts: listing, loading and who may see what.

The ``alerts`` table is a projection of the alert snapshots in
``entity_snapshots``, written in the same transaction as each snapshot (see
``persistence.stores.entities``), so both are read here as committed truth; nothing
in this module changes an alert's state.

Visibility is one rule, kept here in its two forms (SQL for listings,
:func:`visible_to` for one loaded alert) so they cannot drift apart:

* a user sees the alerts they raised;
* an agent sees the alerts assigned to them and those offered to them, now
  (``offered_to`` in the snapshot) or earlier (an ``offered`` timeline entry
  naming them);
* an admin (and the platform) sees every alert.

Listings are newest first with keyset pagination on ``(created_at, id)``;
the cursor is opaque to clients (base64url of a small JSON array) and a
malformed one raises :class:`InvalidCursor`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from actors.alert_state import ActorRole, AlertState, AlertStatus, AlertType, TimelineType
from persistence.drivers import postgres
from persistence.drivers.postgres import Binds
from persistence.stores.cursors import (
    CursorPage,
    InvalidCursor,
    decode_parts,
    encode_parts,
    page_of,
    parse_id,
    parse_time,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after the last item of a page: its ``(created_at, id)``."""

    created_at: datetime
    id: UUID

    def encode(self) -> str:
        return encode_parts([self.created_at.isoformat(), str(self.id)])

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse a cursor from :meth:`encode`; raises :class:`InvalidCursor`."""
        at, ident = decode_parts(text, 2)
        cursor = cls(parse_time(at), parse_id(ident))
        if cursor.encode() != text:
            raise InvalidCursor("cursor is not in canonical form")
        return cursor


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is reading: the caller's id and role (``ActorRole``)."""

    id: UUID
    role: ActorRole


@dataclass(frozen=True, slots=True)
class AlertFilter:
    status: AlertStatus | None = None
    alert_type: AlertType | None = None
    #: ``created_at >= since``
    since: datetime | None = None
    #: ``created_at < until``
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One row of the ``alerts`` projection, as the listing shows it."""

    id: UUID
    user_id: UUID
    alert_type: AlertType
    status: AlertStatus
    latitude: float
    longitude: float
    accuracy_m: float | None
    description: str | None
    silent: bool
    assigned_agent_id: UUID | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AlertPage:
    items: tuple[AlertRecord, ...]
    next_cursor: Cursor | None


def visible_to(state: AlertState, viewer: Viewer) -> bool:
    """Whether ``viewer`` may see ``state`` (the rule in the module docstring)."""
    if viewer.role in (ActorRole.ADMIN, ActorRole.SYSTEM):
        return True
    if viewer.role is ActorRole.USER:
        return state.user_id == viewer.id
    if state.assigned_agent_id == viewer.id or state.offer_for(viewer.id) is not None:
        return True
    agent = str(viewer.id)
    return any(
        entry.type == TimelineType.OFFERED.value and entry.data.get("agent_id") == agent
        for entry in state.timeline
    )


# $1 is the viewer's id (uuid) in every visibility clause.
_AGENT_SEES = """(
    a.assigned_agent_id = $1
    OR EXISTS (
        SELECT 1 FROM entity_snapshots s
         WHERE s.kind = 'alert' AND s.entity_id = a.id::text
           AND (s.state -> 'offered_to' @> jsonb_build_array(
                    jsonb_build_object('agent_id', $1::text))
                OR s.state -> 'timeline' @> jsonb_build_array(
                    jsonb_build_object('type', 'offered',
                                       'data', jsonb_build_object('agent_id', $1::text))))
    )
)"""

_VISIBILITY = {
    ActorRole.USER: "a.user_id = $1",
    ActorRole.AGENT: _AGENT_SEES,
    ActorRole.ADMIN: "$1::uuid IS NOT NULL",
    ActorRole.SYSTEM: "$1::uuid IS NOT NULL",
}

#: The status a viewer is shown: the alert's own user sees a duress "cancel" as
#: cancelled (actors.alert_state.AlertState.as_user_sees); everyone else the truth.
_STATUS_SHOWN = {
    ActorRole.USER: "(CASE WHEN a.duress THEN 'cancelled' ELSE a.status END)",
}


def _columns(status: str) -> str:
    return (
        f"a.id, a.user_id, a.alert_type, {status} AS status, a.latitude, a.longitude, "
        "a.accuracy_m, a.description, a.silent, a.assigned_agent_id, a.created_at, a.updated_at"
    )


def list_query(
    viewer: Viewer, filters: AlertFilter, limit: int, after: Cursor | None
) -> tuple[str, list[Any]]:
    """The SQL and arguments of one page (``limit + 1`` rows, to see if more follow).

    Only fixed SQL fragments are joined; every value is a bind parameter.
    """
    where = [_VISIBILITY[viewer.role]]
    bind = Binds(viewer.id)
    status = _STATUS_SHOWN.get(viewer.role, "a.status")

    if filters.status is not None:
        where.append(f"{status} = {bind(filters.status.value)}")
    if filters.alert_type is not None:
        where.append(f"a.alert_type = {bind(filters.alert_type.value)}")
    if filters.since is not None:
        where.append(f"a.created_at >= {bind(filters.since)}")
    if filters.until is not None:
        where.append(f"a.created_at < {bind(filters.until)}")
    if after is not None:
        where.append(f"(a.created_at, a.id) < ({bind(after.created_at)}, {bind(after.id)})")
    sql = (
        f"SELECT {_columns(status)} FROM alerts a WHERE {' AND '.join(where)} "  # noqa: S608 (fixed fragments)
        f"ORDER BY a.created_at DESC, a.id DESC LIMIT {bind(limit + 1)}"
    )
    return sql, bind.values


def _record(row: asyncpg.Record) -> AlertRecord:
    return AlertRecord(
        id=row["id"],
        user_id=row["user_id"],
        alert_type=AlertType(row["alert_type"]),
        status=AlertStatus(row["status"]),
        latitude=row["latitude"],
        longitude=row["longitude"],
        accuracy_m=row["accuracy_m"],
        description=row["description"],
        silent=row["silent"],
        assigned_agent_id=row["assigned_agent_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def list_alerts(
    pool: asyncpg.Pool,
    viewer: Viewer,
    filters: AlertFilter,
    *,
    limit: int,
    after: Cursor | None = None,
) -> AlertPage:
    """One page of the alerts ``viewer`` may see, newest first."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    sql, args = list_query(viewer, filters, limit, after)
    with postgres.EDGE:
        rows = await pool.fetch(sql, *args)
    records, next_cursor = page_of(
        rows, limit, _record, lambda last: Cursor(last.created_at, last.id)
    )
    return AlertPage(records, next_cursor)


async def load_alert(pool: asyncpg.Pool, alert_id: UUID) -> AlertState | None:
    """The last committed state of the alert, or None if it was never created."""
    with postgres.EDGE:
        state = await pool.fetchval(
            "SELECT state FROM entity_snapshots WHERE kind = 'alert' AND entity_id = $1",
            str(alert_id),
        )
    return None if state is None else AlertState.from_snapshot(state)


class PostgresAlertReads:
    """``gateway.ports.AlertReads`` on one pool; cursors are :class:`Cursor` encoded."""

    __slots__ = ("_pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    def check_cursor(self, cursor: str) -> None:
        Cursor.decode(cursor)

    async def list_alerts(
        self,
        viewer_id: UUID,
        viewer_role: ActorRole,
        *,
        status: AlertStatus | None,
        alert_type: AlertType | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> CursorPage[AlertRecord]:
        after = None if cursor is None else Cursor.decode(cursor)
        filters = AlertFilter(status=status, alert_type=alert_type, since=since, until=until)
        page = await list_alerts(
            self._pool, Viewer(viewer_id, viewer_role), filters, limit=limit, after=after
        )
        next_cursor = None if page.next_cursor is None else page.next_cursor.encode()
        return CursorPage(page.items, next_cursor)

    async def load_visible(
        self, alert_id: UUID, viewer_id: UUID, viewer_role: ActorRole
    ) -> AlertState | None:
        state = await load_alert(self._pool, alert_id)
        if state is None or not visible_to(state, Viewer(viewer_id, viewer_role)):
            return None
        return state
