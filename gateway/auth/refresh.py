"""Login sessions end to end: a token pair per login, rotation, revocation.

A login session is one refresh-token family. Its id is the session id that
access tokens carry (``sid``) and that Redis lists in ``session:{role}:{id}``,
so every way of ending a session (logout, reuse of a spent refresh token)
revokes the family (``gateway.ports.RefreshTokens``) *and* closes the session
(``gateway.ports.Sessions``): the access tokens of that session fail on their
next request, and its open ``/ws`` sockets are closed with 4401, on every
replica.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from config.settings import AuthSettings
from gateway.auth.principal import Principal, Role
from gateway.auth.tokens import issue_access_token
from gateway.ports import RefreshTokens, RotationOutcome, Sessions

log = logging.getLogger(__name__)

#: Bytes of randomness in a refresh token (256 bits, base64url: 43 characters).
REFRESH_TOKEN_BYTES = 32


class RefreshRejected(Exception):
    """The refresh token is unknown, expired, revoked, or was already spent."""


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    principal: Principal


def new_refresh_token() -> str:
    return secrets.token_urlsafe(REFRESH_TOKEN_BYTES)


def session_id_of(family_id: UUID) -> str:
    """The session id (``sid``) of a refresh-token family."""
    return family_id.hex


def family_of_session(session_id: str) -> UUID | None:
    """Inverse of :func:`session_id_of`; None if ``session_id`` is not one of ours."""
    try:
        return UUID(hex=session_id)
    except ValueError:
        return None


async def start_session(
    tokens: RefreshTokens,
    sessions: Sessions,
    settings: AuthSettings,
    *,
    account_id: UUID,
    role: Role,
    now: datetime | None = None,
    enrolment_only: bool = False,
) -> TokenPair:
    """A new login session: its refresh family, its Redis entry and a token pair."""
    issued = now or datetime.now(UTC)
    family_id = uuid.uuid4()
    refresh = new_refresh_token()
    await tokens.issue(
        account_id=account_id,
        family_id=family_id,
        token=refresh,
        issued_at=issued,
        expires_at=issued + timedelta(seconds=settings.refresh_ttl_s),
    )
    session_id = session_id_of(family_id)
    await sessions.open_session(role.value, account_id, session_id, settings.refresh_ttl_s)
    access, principal = issue_access_token(
        settings,
        account_id=account_id,
        role=role,
        session_id=session_id,
        now=issued,
        enrolment_only=enrolment_only,
    )
    return TokenPair(access, refresh, settings.access_ttl_s, principal)


async def rotate_session(
    tokens: RefreshTokens,
    sessions: Sessions,
    settings: AuthSettings,
    refresh_token: str,
    *,
    now: datetime | None = None,
    enrolment_only: Callable[[UUID, Role], Awaitable[bool]] | None = None,
) -> TokenPair:
    """Spend ``refresh_token`` and return the session's next pair.

    ``enrolment_only`` says, for the session's account and role, whether the
    new access token may only enrol a second factor (asked afresh on every
    rotation, so enrolling lifts it at the next refresh and disabling imposes it).

    Raises :class:`RefreshRejected` for an invalid token; for a spent one,
    after revoking its family and closing its session.
    """
    issued = now or datetime.now(UTC)
    successor = new_refresh_token()
    rotation = await tokens.rotate(
        token=refresh_token,
        successor=successor,
        now=issued,
        expires_at=issued + timedelta(seconds=settings.refresh_ttl_s),
    )
    if rotation.outcome.value == RotationOutcome.INVALID.value:
        raise RefreshRejected("invalid refresh token")
    assert rotation.account_id is not None
    assert rotation.family_id is not None
    assert rotation.role is not None
    role = Role(rotation.role)
    session_id = session_id_of(rotation.family_id)
    if rotation.outcome.value == RotationOutcome.REUSED.value:
        await sessions.close_session(role.value, rotation.account_id, session_id)
        raise RefreshRejected("refresh token already used; session revoked")
    # Re-adding the session also extends the Redis key's lifetime.
    await sessions.open_session(role.value, rotation.account_id, session_id, settings.refresh_ttl_s)
    # A logout that revoked the family after the rotation's check, and closed
    # the session before the line above, would be undone: look again, after.
    if await tokens.family_revoked(rotation.family_id):
        await sessions.close_session(role.value, rotation.account_id, session_id)
        raise RefreshRejected("refresh token revoked while rotating")
    restricted = (
        False if enrolment_only is None else await enrolment_only(rotation.account_id, role)
    )
    access, principal = issue_access_token(
        settings,
        account_id=rotation.account_id,
        role=role,
        session_id=session_id,
        now=issued,
        enrolment_only=restricted,
    )
    return TokenPair(access, successor, settings.access_ttl_s, principal)


async def end_session(
    tokens: RefreshTokens,
    sessions: Sessions,
    principal: Principal,
    *,
    refresh_token: str | None = None,
    now: datetime | None = None,
) -> None:
    """Log out: close the principal's session and revoke its refresh family.

    A ``refresh_token`` of another of the same account's sessions ends that
    one too; one of another account is ignored. Idempotent.
    """
    ended = now or datetime.now(UTC)
    families = set()
    own = family_of_session(principal.session_id)
    if own is not None:
        families.add(own)
    if refresh_token is not None:
        found = await tokens.family_of(refresh_token)
        if found is not None and found[0] == principal.id:
            families.add(found[1])
    role = principal.role.value
    # Revoke, then close: a refresh racing this call checks for the revocation
    # after it re-lists its session (rotate_session), so either it sees the
    # revocation or its listing comes before the close below. The close runs
    # even if revoking fails, so the caller is logged out whatever happens;
    # closing a session also closes its open sockets (4401), on every replica.
    try:
        for family_id in families:
            await tokens.revoke_family(account_id=principal.id, family_id=family_id, now=ended)
    finally:
        for session_id in {principal.session_id} | {session_id_of(f) for f in families}:
            await sessions.close_session(role, principal.id, session_id)
