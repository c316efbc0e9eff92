"""Read side of alerts: listing and loading the committed alerts.

The ``alerts`` table is a projection of the alert snapshots in
``entity_snapshots``, written in the same transaction as each snapshot (see
``persistence.stores.entities``), so both are read here as committed truth; nothing
in this module changes an alert's state.

Who may read which alert, and how much of it, is decided by
``AlertState.access`` (``actors.alert_state``), a pure function the gateway
applies to every alert it shows. The listing's SQL only narrows the rows to
those that rule can let through (the caller's own alerts for a user; for an
agent those assigned to it now or once, or offered to it now; all for an
admin), so a page is not read in full only to be thrown away; it returns each
listed alert's committed state for the rule to judge.

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

from actors.alert_state import ActorRole, AlertState, AlertStatus, AlertType
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
class AlertPage:
    """Committed states, newest first; ``next_cursor`` None on the last page."""

    items: tuple[AlertState, ...]
    next_cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class _Listed:
    state: AlertState
    cursor: Cursor


#: Each listed alert's row (for the filters and the order) and its snapshot (what is shown).
_FROM = "FROM alerts a JOIN entity_snapshots s ON s.kind = 'alert' AND s.entity_id = a.id::text"

# $1 is the viewer's id (uuid) in every visibility clause; ``s`` the alert's snapshot.
# An agent: assigned now, or once (an accepted/assigned entry names it), or
# holding an offer (``AlertState.access`` then checks the offer is still open).
_AGENT_SEES = """(
    a.assigned_agent_id = $1
    OR s.state -> 'offered_to' @> jsonb_build_array(jsonb_build_object('agent_id', $1::text))
    OR s.state -> 'timeline' @> jsonb_build_array(jsonb_build_object(
           'type', 'accepted', 'data', jsonb_build_object('agent_id', $1::text)))
    OR s.state -> 'timeline' @> jsonb_build_array(jsonb_build_object(
           'type', 'assigned', 'data', jsonb_build_object('agent_id', $1::text)))
)"""

_VISIBILITY = {
    ActorRole.USER: "a.user_id = $1",
    ActorRole.AGENT: _AGENT_SEES,
    ActorRole.ADMIN: "$1::uuid IS NOT NULL",
    ActorRole.SYSTEM: "$1::uuid IS NOT NULL",
}

#: The status a viewer is shown: the alert's own user what ``actors.alert_view``
#: shows them (a duress "cancel" as cancelled; projected as ``user_status``);
#: everyone else the truth.
_STATUS_SHOWN = {
    ActorRole.USER: "COALESCE(a.user_status, a.status)",
}


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
        f"SELECT a.created_at, a.id, s.state {_FROM} WHERE {' AND '.join(where)} "
        f"ORDER BY a.created_at DESC, a.id DESC LIMIT {bind(limit + 1)}"
    )
    return sql, bind.values


def _listed(row: asyncpg.Record) -> _Listed:
    return _Listed(AlertState.from_snapshot(row["state"]), Cursor(row["created_at"], row["id"]))


async def list_alerts(
    pool: asyncpg.Pool,
    viewer: Viewer,
    filters: AlertFilter,
    *,
    limit: int,
    after: Cursor | None = None,
) -> AlertPage:
    """One page of the alerts ``viewer`` may be shown (see the module docstring), newest first."""
    if limit < 1:
        raise ValueError("limit must be >= 1")
    sql, args = list_query(viewer, filters, limit, after)
    with postgres.EDGE:
        rows = await pool.fetch(sql, *args)
    listed, next_cursor = page_of(rows, limit, _listed, lambda last: last.cursor)
    return AlertPage(tuple(item.state for item in listed), next_cursor)


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
    ) -> CursorPage[AlertState]:
        after = None if cursor is None else Cursor.decode(cursor)
        filters = AlertFilter(status=status, alert_type=alert_type, since=since, until=until)
        page = await list_alerts(
            self._pool, Viewer(viewer_id, viewer_role), filters, limit=limit, after=after
        )
        next_cursor = None if page.next_cursor is None else page.next_cursor.encode()
        return CursorPage(page.items, next_cursor)

    async def load_alert(self, alert_id: UUID) -> AlertState | None:
        return await load_alert(self._pool, alert_id)
