"""``POST /geofencing/location``: a user's or an agent's location fix (API.md, "Geofencing");
``POST /geofencing/locations``: many subjects' fixes from an integration (issue 20).

The fix is validated here and handed to the process's location ingest
(``gateway.locations``), which stores the newest fix per subject in Redis,
sends every fix to the subject's tracker entity (enter / exit / dwell
events) and keeps a sampled history in MongoDB. Answered 202: accepted for
processing, not yet processed. The same fixes come over ``/ws`` as
``location`` frames.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AwareDatetime, BaseModel, Field

from actors.subject import SubjectRole, subject_key
from gateway.auth.models import problem_responses
from gateway.auth.principal import Principal, Role
from gateway.deps import IntegrationPrincipal, SettingsDep, require_role
from gateway.location_batches import BatchOutcome, NotABatch, receive
from gateway.locations import StaleFix, sighting, utcnow
from gateway.problems import invalid
from gateway.ratelimit import rate_limit
from gateway.state import gateway_state
from gateway.ws.frames import LocationData

router = APIRouter(prefix="/geofencing", tags=["geofencing"])

_limit = Depends(rate_limit("geofencing:location", key="principal", rule="location_per_principal"))
SubjectPrincipal = Annotated[Principal, require_role(Role.USER, Role.AGENT)]


#: The window a reported fix must fall in (``PANIC_GEOFENCE__MAX_FUTURE_S`` and
#: ``..._MAX_AGE_S``; the document states the defaults).
RECORDED_AT_RULE = (
    "The device's time of the fix, with its UTC offset (omitted: when the server received "
    "it). It must lie within the server's clock's window: at most 60 s in the future and "
    "24 h in the past by default (PANIC_GEOFENCE__MAX_FUTURE_S, "
    "PANIC_GEOFENCE__MAX_AGE_S); outside it the fix is refused with 422."
)


class LocationIn(LocationData):
    """Body of ``POST /geofencing/location``: the fields of a ``location`` frame."""

    recorded_at: AwareDatetime | None = Field(None, description=RECORDED_AT_RULE)


class LocationAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    subject_id: UUID
    recorded_at: datetime


@router.post(
    "/location",
    status_code=202,
    response_model=LocationAccepted,
    summary="Report the caller's location (users and agents)",
    responses=problem_responses(401, 403, 413, 422, 429, 503),
    dependencies=[_limit],
)
async def report_location(
    body: LocationIn, principal: SubjectPrincipal, settings: SettingsDep, request: Request
) -> LocationAccepted:
    """Accepted for geofencing: enter / exit / dwell events follow from the subject's
    tracker; a fix older than the subject's last one changes nothing. A fix recorded
    more than ``PANIC_GEOFENCE__MAX_FUTURE_S`` ahead or ``..._MAX_AGE_S`` ago is 422."""
    try:
        role = SubjectRole(principal.role.value)
        seen = sighting(settings.geofence, role, body, utcnow(), subject_key(role, principal.id))
    except StaleFix as exc:
        raise invalid(("body", "recorded_at"), str(exc)) from None
    if not gateway_state(request).locations.submit(seen):
        raise HTTPException(
            status_code=503,
            detail="too many locations waiting; try again",
            headers={"Retry-After": "1"},
        )
    return LocationAccepted(subject_id=principal.id, recorded_at=seen.fix.recorded_at)


# --- issue 20: the bulk feed ---------------------------------------------------------

_BATCH_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BatchBody"}}},
        "description": (
            "Up to `PANIC_GEOFENCE__BULK_MAX_FIXES` (2,000) fixes of any users and agents, in "
            "the order they are to be applied. Each fix is validated on its own, as strictly "
            "as a phone's `POST /geofencing/location`; a bad one is answered by its index "
            "without refusing the rest."
        ),
    }
}


@router.post(
    "/locations",
    status_code=202,
    response_model=BatchOutcome,
    summary="Report many subjects' locations at once (integration keys)",
    responses=problem_responses(401, 413, 422, 503),
    openapi_extra=_BATCH_BODY,
)
async def report_locations(
    request: Request, integration: IntegrationPrincipal, settings: SettingsDep
) -> BatchOutcome:
    """The bulk feed of fleets, telematics gateways and Traccar: an integration key
    (``POST /admin/integrations``) as the bearer token, and nothing else may use it.

    202 when at least one fix was taken; the answer counts what was taken and
    lists each refused fix by its index (`invalid_data`, or `unavailable` when
    the gateway is overloaded: send those again; the bulk feed may fill only
    `PANIC_GEOFENCE__BULK_QUEUE_SHARE`, half by default, of a gateway's queue of
    fixes, so people's phones keep the rest). 422 when the body is not a
    batch or no fix in it is valid; 503 (with `Retry-After`) when none could be
    queued. Fixes are taken in the order given, so a subject's fixes are applied
    in that order; the same fixes over `/ws/locations` have the same effect."""
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise invalid(("body",), "the body is not JSON") from None
    try:
        outcome = receive(data, settings.geofence, gateway_state(request).locations, utcnow())
    except NotABatch as exc:
        raise invalid(("body",), str(exc)) from None
    if outcome.accepted:
        return outcome
    if outcome.refused:
        raise HTTPException(
            status_code=503,
            detail="too many locations waiting; send the batch again",
            headers={"Retry-After": "1"},
        )
    raise RequestValidationError(
        [
            {"loc": ("body", "fixes", e.index), "msg": e.message, "type": "value_error"}
            for e in outcome.errors
        ]
    )
