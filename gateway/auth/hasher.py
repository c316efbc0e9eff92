"""The process's password hasher as a FastAPI dependency.

One :class:`~gateway.auth.passwords.PasswordHasher` per app, made on first
use from ``settings.auth`` and kept on ``app.state`` (apps in one process,
e.g. test replicas, may carry different settings).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from gateway.auth.passwords import PasswordHasher
from gateway.deps import get_settings, inline

_ATTRIBUTE = "password_hasher"


def get_hasher(connection: HTTPConnection) -> PasswordHasher:
    state = connection.app.state
    hasher = getattr(state, _ATTRIBUTE, None)
    if not isinstance(hasher, PasswordHasher):
        hasher = PasswordHasher(get_settings(connection).auth)
        setattr(state, _ATTRIBUTE, hasher)
    return hasher


HasherDep = Annotated[PasswordHasher, Depends(inline(get_hasher))]
