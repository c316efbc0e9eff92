"""Access tokens: short-lived JWTs signed with the deployment's secret.

Claims: ``sub`` (account id), ``role``, ``sid`` (session id), ``jti``, ``typ``
("access"), ``iss``, ``aud``, ``iat``, ``nbf``, ``exp``, and ``scp``
("totp-enrolment") on the tokens of a session that may only enrol a second
factor (``Principal.enrolment_only``). Decoding accepts only
the configured algorithm (so ``alg: none`` and algorithm confusion are
refused), requires every claim, and checks expiry, not-before, issuer and
audience. A valid signature is not enough: ``gateway.deps`` also checks
that the session is still active in Redis, which makes logout immediate.

Verified tokens are remembered (a bounded map from the token string to its
principal and validity window), because verifying with PyJWT cost a tenth
of a gateway's CPU under load. A remembered token is accepted only inside
its ``nbf``..``exp`` window (same leeway); any other string, a tampered copy
included, is verified in full.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt

from config.settings import AuthSettings
from gateway.auth.principal import Principal, Role

ACCESS = "access"
#: ``scp`` of a session that may only enrol a second factor.
ENROLMENT_SCOPE = "totp-enrolment"
_REQUIRED = ["sub", "role", "sid", "jti", "typ", "iss", "aud", "iat", "nbf", "exp"]
#: Clock skew tolerated between gateway replicas.
LEEWAY = timedelta(seconds=5)


class InvalidToken(Exception):
    """The token is malformed, forged, expired, or not an access token."""


#: Verified tokens remembered per process; cleared whole when full.
_VERIFIED_MAX = 10_000
_Verified = tuple[Principal, datetime, datetime]  # principal, not before, expires
_verified: dict[tuple[str, str, str, str, str], _Verified] = {}


def issue_access_token(
    settings: AuthSettings,
    *,
    account_id: UUID,
    role: Role,
    session_id: str,
    now: datetime | None = None,
    enrolment_only: bool = False,
) -> tuple[str, Principal]:
    """A signed access token for one session, and the principal it stands for."""
    issued = now or datetime.now(UTC)
    token_id = uuid.uuid4().hex
    claims = {
        "sub": str(account_id),
        "role": role.value,
        "sid": session_id,
        "jti": token_id,
        "typ": ACCESS,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": issued,
        "nbf": issued,
        "exp": issued + timedelta(seconds=settings.access_ttl_s),
    }
    if enrolment_only:
        claims["scp"] = ENROLMENT_SCOPE
    token = jwt.encode(
        claims, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm
    )
    return token, Principal(account_id, role, session_id, token_id, enrolment_only)


def decode_access_token(
    settings: AuthSettings, token: str, *, now: datetime | None = None
) -> Principal:
    """The principal of a valid access token; :class:`InvalidToken` otherwise.

    ``now`` (default: the clock) is checked against the validity window of a
    token verified before; a token seen for the first time is checked by
    PyJWT against the clock.
    """
    return verify_access_token(settings, token, now=now)[0]


def verify_access_token(
    settings: AuthSettings, token: str, *, now: datetime | None = None
) -> tuple[Principal, datetime]:
    """:func:`decode_access_token`, and when the token expires (its ``exp``,
    without the leeway): what a long-lived ``/ws`` socket is closed at."""
    key = (
        token,
        settings.jwt_secret.get_secret_value(),
        settings.jwt_algorithm,
        settings.issuer,
        settings.audience,
    )
    known = _verified.get(key)
    if known is not None:
        principal, not_before, expires = known
        at = now or datetime.now(UTC)
        if at < not_before - LEEWAY:
            raise InvalidToken("The token is not yet valid (nbf)")
        if at >= expires + LEEWAY:
            del _verified[key]
            raise InvalidToken("Signature has expired")
        return principal, expires
    principal, not_before, expires = _verify(settings, token)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[key] = (principal, not_before, expires)
    return principal, expires


def _verify(settings: AuthSettings, token: str) -> _Verified:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=LEEWAY,
            options={"require": _REQUIRED},
        )
        if claims["typ"] != ACCESS:
            raise InvalidToken("not an access token")
        principal = Principal(
            id=UUID(str(claims["sub"])),
            role=Role(claims["role"]),
            session_id=str(claims["sid"]),
            token_id=str(claims["jti"]),
            enrolment_only=claims.get("scp") == ENROLMENT_SCOPE,
        )
        not_before = datetime.fromtimestamp(claims["nbf"], UTC)
        expires = datetime.fromtimestamp(claims["exp"], UTC)
        return principal, not_before, expires
    except (jwt.PyJWTError, ValueError, KeyError, TypeError, OverflowError, OSError) as exc:
        raise InvalidToken(str(exc)) from exc
