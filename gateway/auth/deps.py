"""Authentication and role checks as FastAPI dependencies.

    async def create_alert(principal: UserPrincipal, ...) -> ...

``CurrentPrincipal`` accepts any valid, active session; ``UserPrincipal``,
``AgentPrincipal`` and ``AdminPrincipal`` also require the role. Failures are
401 (missing, invalid, expired or revoked token; with ``WWW-Authenticate:
Bearer``) or 403 (authenticated, wrong role), as problem details.
"""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, HTTPException
from starlette.requests import HTTPConnection

from config.settings import Settings
from gateway.auth.principal import Principal, Role
from gateway.auth.sessions import is_active
from gateway.auth.tokens import InvalidToken, decode_access_token
from gateway.deps import RedisDep, SettingsDep

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers=_CHALLENGE)


async def authenticate(settings: Settings, redis: aioredis.Redis, token: str) -> Principal:
    """The principal of an access token whose session is still active.

    Raises a 401 ``HTTPException``; shared by HTTP requests and the WebSocket
    ``auth`` frame.
    """
    try:
        principal = decode_access_token(settings.auth, token)
    except InvalidToken:
        raise unauthorized("invalid or expired token") from None
    if not await is_active(redis, principal):
        raise unauthorized("session has ended")
    return principal


def bearer_token(connection: HTTPConnection) -> str:
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("missing bearer token")
    return token.strip()


async def current_principal(
    connection: HTTPConnection, settings: SettingsDep, redis: RedisDep
) -> Principal:
    return await authenticate(settings, redis, bearer_token(connection))


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require_role(*roles: Role) -> object:
    """A dependency accepting only principals with one of ``roles`` (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise HTTPException(status_code=403, detail="not allowed for this role")
        return principal

    return Depends(check)


UserPrincipal = Annotated[Principal, require_role(Role.USER)]
AgentPrincipal = Annotated[Principal, require_role(Role.AGENT)]
AdminPrincipal = Annotated[Principal, require_role(Role.ADMIN)]
