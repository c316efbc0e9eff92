"""Who may read, upload and delete an alert's evidence (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from actors.alert_state import AlertState, AlertStatus, AlertType
from actors.roles import Role
from media.model import MediaKind, MediaRow, Part, Sealed
from media.policy import (
    DeleteOutcome,
    delete_verdict,
    may_read,
    may_read_alert_media,
    may_upload,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
USER, AGENT, OTHER_AGENT, ADMIN, STRANGER = (uuid4() for _ in range(5))


def _alert(**changes: Any) -> AlertState:
    state = AlertState(
        id=uuid4(),
        user_id=USER,
        alert_type=AlertType.PANIC,
        status=AlertStatus.ASSIGNED,
        latitude=52.5,
        longitude=13.4,
        accuracy_m=None,
        description=None,
        silent=False,
        created_at=NOW,
        updated_at=NOW,
        assigned_agent_id=AGENT,
    )
    return replace(state, **changes)


def _row(uploader: UUID = USER, **changes: Any) -> MediaRow:
    row = MediaRow(
        id=uuid4(),
        alert_id=uuid4(),
        uploader_id=uploader,
        uploader_role=Role.USER,
        content_type="image/jpeg",
        kind=MediaKind.IMAGE,
        size=10,
        sha256="0" * 64,
        created_at=NOW,
        sealed=Sealed("k", b"w", 64, (Part("p", 1),)),
    )
    return replace(row, **changes)


def test_the_user_the_current_assignee_and_admins_read_the_evidence() -> None:
    state = _alert()
    assert may_read_alert_media(state, USER, Role.USER, NOW)
    assert may_read_alert_media(state, AGENT, Role.AGENT, NOW)
    assert may_read_alert_media(state, ADMIN, Role.ADMIN, NOW)
    assert not may_read_alert_media(state, STRANGER, Role.USER, NOW)
    assert not may_read_alert_media(state, OTHER_AGENT, Role.AGENT, NOW)
    # Reassigned away: the old assignee reads the alert (was assigned) but not its evidence.
    moved = _alert(assigned_agent_id=OTHER_AGENT)
    assert not may_read_alert_media(moved, AGENT, Role.AGENT, NOW)
    assert may_read_alert_media(moved, OTHER_AGENT, Role.AGENT, NOW)


def test_deleted_files_are_gone_for_users_and_agents_but_not_admins_until_the_purge() -> None:
    deleted = _row(deleted_at=NOW)
    assert not may_read(deleted, True, Role.USER)
    assert not may_read(deleted, True, Role.AGENT)
    assert may_read(deleted, True, Role.ADMIN)
    kept = _row(deleted_at=NOW, hidden_from_user=True)
    assert may_read(kept, True, Role.AGENT)
    assert not may_read(kept, True, Role.USER)
    assert not may_read(_row(purged_at=NOW), True, Role.ADMIN)
    assert not may_read(_row(), False, Role.ADMIN)


def test_uploads_come_from_the_user_the_current_assignee_and_admins() -> None:
    state = _alert()
    assert may_upload(state, USER, Role.USER)
    assert may_upload(state, AGENT, Role.AGENT)
    assert may_upload(state, ADMIN, Role.ADMIN)
    assert not may_upload(state, STRANGER, Role.USER)
    assert not may_upload(state, OTHER_AGENT, Role.AGENT)


def test_deletes() -> None:
    state = _alert()
    verdict = delete_verdict(_row(), state, USER, Role.USER, NOW, 3600)
    assert verdict.outcome is DeleteOutcome.PURGE_LATER
    assert verdict.purge_after == NOW + timedelta(hours=1)
    assert (
        delete_verdict(_row(uploader=AGENT), state, USER, Role.USER, NOW, 0).outcome
        is DeleteOutcome.FORBIDDEN
    )
    assert (
        delete_verdict(_row(uploader=AGENT), state, ADMIN, Role.ADMIN, NOW, 0).outcome
        is DeleteOutcome.PURGE_LATER
    )
    held = _row(legal_hold=True)
    assert delete_verdict(held, state, ADMIN, Role.ADMIN, NOW, 0).outcome is DeleteOutcome.HELD
    duress = _alert(duress_at=NOW, status=AlertStatus.ESCALATED)
    hidden = delete_verdict(_row(), duress, USER, Role.USER, NOW, 0)
    assert hidden.outcome is DeleteOutcome.HIDE_FROM_USER
    assert hidden.purge_after is None
    coerced = _alert(coerced_at=NOW)
    assert delete_verdict(_row(), coerced, USER, Role.USER, NOW, 0).outcome is (
        DeleteOutcome.HIDE_FROM_USER
    )
    # An admin's delete under duress is a real one.
    assert (
        delete_verdict(_row(), duress, ADMIN, Role.ADMIN, NOW, 0).outcome
        is DeleteOutcome.PURGE_LATER
    )
