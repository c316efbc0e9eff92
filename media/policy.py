"""Who may do what with an alert's media. Pure: state in, verdict out.

* **Read**: the alert's user, admins, and the agent assigned to it now, or
  when it ended (``assigned_agent_id`` is kept on a closed alert). An agent
  reassigned away, or suspended off the alert, reads the alert's history
  (``AlertState.access``) but no longer its evidence; an agent only offered
  it, or that declined, never did. Everyone else is told nothing, not even
  that the file exists (404). A deleted file is gone for its user and
  agents, except evidence kept after a delete under duress, which the agent
  and admins still read; admins read any file not yet purged.
* **Upload**: the alert's user, the agent assigned to it now, admins.
* **Delete**: the uploader or an admin; never a held file (409). A delete by
  the alert's user while the alert is under duress is answered as any
  delete but only hides the file from that user: the person holding the
  phone may be the abuser, and the evidence stays for responders.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from actors.alert_state import ActorRole, AlertAccess, AlertState
from actors.roles import Role
from media.model import MediaRow


def may_read_alert_media(state: AlertState, who: UUID, role: Role, now: datetime) -> bool:
    """Whether ``who`` may read the alert's evidence at all (see the module docstring)."""
    if state.access(who, ActorRole(role.value), now) is not AlertAccess.FULL:
        return False
    return role is not Role.AGENT or state.assigned_agent_id == who


def may_read(row: MediaRow, alert_media: bool, role: Role) -> bool:
    """Whether a reader may read ``row`` (an original; a rendition is judged by its
    parent), given :func:`may_read_alert_media` for its alert."""
    if not alert_media or row.purged_at is not None:
        return False
    if row.deleted_at is None:
        return True
    if role is Role.ADMIN:
        return True
    return role is Role.AGENT and row.hidden_from_user


def may_upload(state: AlertState, who: UUID, role: Role) -> bool:
    if role is Role.ADMIN:
        return True
    if role is Role.USER:
        return who == state.user_id
    return state.assigned_agent_id == who


class DeleteOutcome(enum.StrEnum):
    #: Deleted; purged after the retention period.
    PURGE_LATER = "purge_later"
    #: Shown deleted to its user, kept for responders and admins (duress).
    HIDE_FROM_USER = "hide_from_user"
    #: Not the caller's to delete (403).
    FORBIDDEN = "forbidden"
    #: Under legal hold (409).
    HELD = "held"


@dataclass(frozen=True, slots=True)
class DeleteVerdict:
    outcome: DeleteOutcome
    purge_after: datetime | None = None


def delete_verdict(
    row: MediaRow, state: AlertState, who: UUID, role: Role, now: datetime, retention_s: float
) -> DeleteVerdict:
    """What a delete of ``row`` (which the caller may read) by ``who`` does."""
    if role is not Role.ADMIN and row.uploader_id != who:
        return DeleteVerdict(DeleteOutcome.FORBIDDEN)
    if row.legal_hold:
        return DeleteVerdict(DeleteOutcome.HELD)
    if role is Role.USER and state.duress:
        return DeleteVerdict(DeleteOutcome.HIDE_FROM_USER)
    return DeleteVerdict(DeleteOutcome.PURGE_LATER, now + timedelta(seconds=retention_s))
