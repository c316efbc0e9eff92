"""``/admin/integrations``: the bulk location feed's API keys (administrators only).

An administrator issues a key to a fleet, a telematics gateway or a Traccar
server; its holder forwards many subjects' location fixes with it
(``POST /geofencing/locations``, ``/ws/locations``) and may do nothing else
(``gateway.auth.integration_keys``, ``gateway.deps.IntegrationPrincipal``).
The key's text is answered once, by the creation; only the SHA-256 of its
secret is stored. At most ``MAX_ACTIVE_KEYS`` keys are active at once.

Creating and revoking a key each write one ``audit-logs`` event in the same
transaction as the change (``persistence.stores.integration_keys``).
Revocation is idempotent: once it is committed, the route announces it on
the key's revocation channel (``Sessions.close_session`` with
``revocation_session(key_id)``), every time, so a retry after a failed
announcement (a 503) finishes the job and an open feed socket closes 4401.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field, StringConstraints

from gateway.auth.integration_keys import (
    KEY_PREFIX,
    MAX_ACTIVE_KEYS,
    digest,
    new_key,
    revocation_session,
)
from gateway.auth.models import RequestBody, problem_responses
from gateway.deps import AdminPrincipal, IntegrationKeysDep, SessionsDep
from gateway.fields import PLAIN_TEXT, PLAIN_TEXT_RULE
from gateway.ports import IntegrationKeyRow
from gateway.problems import ProblemHTTPException, problem_type

log = logging.getLogger(__name__)

router = APIRouter(prefix="/admin", tags=["admin"])

_AUTH_ERRORS = (401, 403)

#: The role half of ``Sessions.close_session``'s key (an integration has no ``Role``).
SESSION_ROLE = "integration"

IntegrationName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    PLAIN_TEXT,
]


class IntegrationIn(RequestBody):
    name: IntegrationName = Field(
        description=f"who holds the key (a fleet, a gateway), 1 to 100 characters. "
        f"{PLAIN_TEXT_RULE}"
    )


class IntegrationOut(BaseModel):
    """One key as the listing shows it (never its secret)."""

    id: UUID
    name: str
    created_at: datetime
    revoked_at: datetime | None = Field(description="null while the key is active")
    last_used_at: datetime | None = Field(
        description="when the key last authenticated (refreshed at most once a minute); "
        "null if never"
    )

    @classmethod
    def of(cls, row: IntegrationKeyRow) -> IntegrationOut:
        return cls(
            id=row.id,
            name=row.name,
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )


class IntegrationCreated(BaseModel):
    id: UUID
    name: str
    key: str = Field(
        description=f"the key, shown only here (only a hash of its secret is stored): "
        f"`{KEY_PREFIX}<id as 32 hex>_<43 characters of urlsafe base64>`. Its holder sends "
        "it as `Authorization: Bearer <key>` to feed locations; it is refused everywhere else"
    )
    created_at: datetime


class IntegrationList(BaseModel):
    items: list[IntegrationOut] = Field(description="every key, revoked ones too, newest first")


def _too_many() -> ProblemHTTPException:
    return ProblemHTTPException(
        409,
        title="Too many integration keys",
        detail=f"At most {MAX_ACTIVE_KEYS} integration keys may be active; revoke one first.",
        type_=problem_type("integration-key-limit"),
    )


@router.post(
    "/integrations",
    status_code=201,
    summary="Issue an integration key for the bulk location feed (admin)",
    responses=problem_responses(*_AUTH_ERRORS, 409, 422, 503),
)
async def create_integration(
    body: IntegrationIn, admin: AdminPrincipal, keys: IntegrationKeysDep
) -> IntegrationCreated:
    """A new key, named; its text is in this answer and nowhere else. The key
    may only feed locations (`POST /geofencing/locations`, `/ws/locations`):
    every other route answers it 401. 409 when 100 keys are active already."""
    made = new_key()
    row = await keys.add(
        made.key_id, body.name, digest(made.secret), admin.id, max_active=MAX_ACTIVE_KEYS
    )
    if row is None:
        raise _too_many()
    return IntegrationCreated(id=row.id, name=row.name, key=made.text, created_at=row.created_at)


@router.get(
    "/integrations",
    summary="Every integration key, newest first, without secrets (admin)",
    responses=problem_responses(*_AUTH_ERRORS, 503),
)
async def list_integrations(_admin: AdminPrincipal, keys: IntegrationKeysDep) -> IntegrationList:
    return IntegrationList(items=[IntegrationOut.of(row) for row in await keys.list_keys()])


@router.delete(
    "/integrations/{integration_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an integration key; its open feed sockets close (admin, idempotent)",
    responses=problem_responses(*_AUTH_ERRORS, 404, 422, 503),
)
async def revoke_integration(
    integration_id: UUID, admin: AdminPrincipal, keys: IntegrationKeysDep, sessions: SessionsDep
) -> Response:
    """The key is refused from the next request on; a socket fed by it is
    closed with 4401. Revoking a revoked key again is a 204 too; 404 for an
    unknown id."""
    revoked = await keys.revoke(integration_id, revoked_by=admin.id)
    if not revoked and await keys.find(integration_id) is None:
        raise ProblemHTTPException(404, detail="no such integration key")
    # Committed (now or by an earlier call): announce it, every time (a retry finishes it).
    await sessions.close_session(SESSION_ROLE, integration_id, revocation_session(integration_id))
    log.info("integration key %s revoked by %s", integration_id, admin.id)
    return Response(status_code=204)
