"""Idempotent alert ids, pagination cursors and visibility: the pure parts of ``/alerts``."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4, uuid5

import pytest

from actors.alert_state import (
    ActorRole,
    AlertAccess,
    AlertState,
    AlertStatus,
    AlertType,
    Offer,
    TimelineEntry,
)
from gateway.routes.alerts import IDEMPOTENCY_NAMESPACE, alert_id_for
from persistence.stores.alerts import AlertFilter, Cursor, Viewer, list_query
from persistence.stores.cursors import MAX_CURSOR_CHARS, InvalidCursor

AT = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
USER = UUID(int=1)
AGENT = UUID(int=2)


# --- idempotent ids ------------------------------------------------------------------


def test_the_alert_id_is_a_fixed_function_of_user_and_key() -> None:
    first = alert_id_for(USER, "abc")
    assert first == alert_id_for(USER, "abc")
    assert first == uuid5(IDEMPOTENCY_NAMESPACE, f"{USER}/abc")
    assert first.version == 5
    assert first != alert_id_for(USER, "abd")
    assert first != alert_id_for(UUID(int=3), "abc")


def test_user_and_key_cannot_be_shuffled_into_another_pair() -> None:
    # The separator is outside the key charset, so ("u", "a/b") cannot collide.
    assert alert_id_for(USER, "a") != alert_id_for(USER, "/a")


# --- cursors ---------------------------------------------------------------------------


def test_a_cursor_round_trips_and_is_url_safe() -> None:
    cursor = Cursor(AT, uuid4())
    text = cursor.encode()
    assert Cursor.decode(text) == cursor
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(text) < MAX_CURSOR_CHARS


def test_a_cursor_keeps_microseconds_and_offsets() -> None:
    plus_two = AT.astimezone(timezone(timedelta(hours=2)))
    decoded = Cursor.decode(Cursor(plus_two, USER).encode())
    assert decoded.created_at == AT
    assert decoded.created_at.microsecond == 123456


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cursor!",
        "%%%",
        "A" * (MAX_CURSOR_CHARS + 1),
        _b64(b"\xff\xfe"),
        _b64(b'{"t": 1}'),
        _b64(b'["2026-03-04T05:06:07+00:00"]'),
        _b64(b'["yesterday", "00000000-0000-0000-0000-000000000001"]'),
        _b64(b'["2026-03-04T05:06:07+00:00", "not-a-uuid"]'),
        _b64(b'["2026-03-04T05:06:07", "00000000-0000-0000-0000-000000000001"]'),
        _b64(b"[1, 2]"),
        # Valid content, but not the canonical encoding (spaces): not ours.
        _b64(b'["2026-03-04T05:06:07+00:00", "00000000-0000-0000-0000-000000000001"]'),
    ],
)
def test_anything_but_an_issued_cursor_is_refused(text: str) -> None:
    with pytest.raises(InvalidCursor):
        Cursor.decode(text)


def test_flipping_a_character_of_a_cursor_is_detected() -> None:
    text = Cursor(AT, USER).encode()
    refused = 0
    for i in range(len(text)):
        flipped = text[:i] + ("B" if text[i] != "B" else "C") + text[i + 1 :]
        try:
            decoded = Cursor.decode(flipped)
        except InvalidCursor:
            refused += 1
        else:
            assert decoded != Cursor(AT, USER)
    assert refused > len(text) // 2


# --- visibility -------------------------------------------------------------------------


def state(**changes: object) -> AlertState:
    base = AlertState(
        id=uuid4(),
        user_id=USER,
        alert_type=AlertType.FIRE,
        status=AlertStatus.DISPATCHING,
        latitude=1.0,
        longitude=2.0,
        accuracy_m=None,
        description=None,
        silent=False,
        created_at=AT,
        updated_at=AT,
    )
    return replace(base, **changes)


def sees(state: AlertState, viewer: Viewer) -> AlertAccess:
    return state.access(viewer.id, viewer.role, AT)


def test_users_see_only_their_own_alerts() -> None:
    assert sees(state(), Viewer(USER, ActorRole.USER)) is AlertAccess.FULL
    assert sees(state(), Viewer(UUID(int=9), ActorRole.USER)) is AlertAccess.NONE


def test_agents_see_assigned_alerts_and_pending_offers_only() -> None:
    agent = Viewer(AGENT, ActorRole.AGENT)
    offer = Offer(AGENT, AT, AT + timedelta(seconds=30), 100.0)
    once = TimelineEntry(AT, "offered", None, {"agent_id": str(AGENT)})
    accepted = TimelineEntry(AT, "accepted", AGENT, {"agent_id": str(AGENT)})
    other = TimelineEntry(AT, "accepted", None, {"agent_id": str(UUID(int=8))})
    assert sees(state(), agent) is AlertAccess.NONE
    assigned = state(assigned_agent_id=AGENT, status=AlertStatus.ASSIGNED)
    assert sees(assigned, agent) is AlertAccess.FULL
    assert sees(state(offered_to=(offer,)), agent) is AlertAccess.OFFER
    # Offered once, no more (declined, expired, revoked): nothing.
    assert sees(state(timeline=(once,)), agent) is AlertAccess.NONE
    assert sees(state(timeline=(accepted,)), agent) is AlertAccess.FULL
    assert sees(state(timeline=(other,)), agent) is AlertAccess.NONE
    # An agent whose id happens to be the alert's user id is still not its user.
    assert sees(state(), Viewer(USER, ActorRole.AGENT)) is AlertAccess.NONE


def test_admins_see_everything() -> None:
    assert sees(state(), Viewer(UUID(int=5), ActorRole.ADMIN)) is AlertAccess.FULL


def test_list_query_binds_every_value_and_pages_by_created_at_then_id() -> None:
    after = Cursor(AT, USER)
    filters = AlertFilter(
        status=AlertStatus.CANCELLED, alert_type=AlertType.FIRE, since=AT, until=AT
    )
    sql, args = list_query(Viewer(USER, ActorRole.USER), filters, 20, after)
    assert args == [USER, "cancelled", "fire", AT, AT, AT, USER, 21]
    assert "a.user_id = $1" in sql
    assert "(a.created_at, a.id) < ($6, $7)" in sql
    assert sql.endswith("ORDER BY a.created_at DESC, a.id DESC LIMIT $8")
    # Values travel as parameters only.
    assert "'cancelled'" not in sql
    assert "'fire'" not in sql
    # A user filters on the status they are shown (actors.alert_view).
    assert "COALESCE(a.user_status, a.status) = $2" in sql
    admin_sql, _ = list_query(Viewer(USER, ActorRole.ADMIN), filters, 20, after)
    assert "a.status = $2" in admin_sql
    assert "user_status" not in admin_sql


def test_list_query_uses_each_roles_visibility() -> None:
    agent_sql, _ = list_query(Viewer(AGENT, ActorRole.AGENT), AlertFilter(), 5, None)
    admin_sql, admin_args = list_query(Viewer(AGENT, ActorRole.ADMIN), AlertFilter(), 5, None)
    assert "offered_to" in agent_sql
    assert "'accepted'" in agent_sql
    assert "'offered'" not in agent_sql  # an offer once made shows nothing
    assert "assigned_agent_id = $1" in agent_sql
    assert "user_id" not in admin_sql.split("WHERE")[1]
    assert admin_args == [AGENT, 6]
