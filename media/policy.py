"""Who may do what with an alert's media. Pure: state in, verdict out.

* **Read**: whoever reads the whole alert (``AlertState.access`` is FULL: its
  user, the agent assigned to it now or once, admins). Everyone else is told
  nothing, not even that the file exists (404). A deleted file is gone for
  its user and agents, except evidence kept after a delete under duress,
  which agents and admins still read; admins read any file not yet purged.
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

from actors.alert_state import AlertAccess, AlertState
from actors.roles import Role
from media.model import MediaRow


def may_read(row: MediaRow, access: AlertAccess, role: Role) -> bool:
    """Whether a reader with ``access`` to ``row``'s alert, in ``role``, may read it
    (``row`` is an original; a rendition is judged by its parent)."""
    if access is not AlertAccess.FULL or row.purged_at is not None:
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
