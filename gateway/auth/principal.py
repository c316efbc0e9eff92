"""Who is calling: the identity every authenticated request and socket carries."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from actors.roles import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    ``session_id`` names the login session (one per device login); revoking it
    in Redis stops every token of that session at once. ``token_id`` is the
    access token's ``jti``. ``enrolment_only``: an administrator who must
    enrol a second factor and has not; such a session reaches nothing but
    ``/auth/totp/*``, ``/auth/me`` and logout (``gateway.deps``).
    """

    id: UUID
    role: Role
    session_id: str
    token_id: str
    enrolment_only: bool = False


__all__ = ["Principal", "Role"]
