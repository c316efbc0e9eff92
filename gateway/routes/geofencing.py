"""``POST /geofencing/location``: a user's or an agent's location fix (API.md, "Geofencing").

The fix is validated here and handed to the process's location ingest
(``gateway.locations``), which stores the newest fix per subject in Redis,
sends every fix to the subject's tracker entity (enter / exit / dwell
events) and keeps a sampled history in MongoDB. Answered 202: accepted for
processing, not yet processed. The same fixes come over ``/ws`` as
``location`` frames.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import AwareDatetime, BaseModel, Field

from actors.subject import SubjectRole
from gateway.auth.models import problem_responses
from gateway.auth.principal import Principal, Role
from gateway.deps import SettingsDep, require_role
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
        seen = sighting(
            settings.geofence,
            SubjectRole(principal.role.value),
            principal.id,
            body,
            utcnow(),
        )
    except StaleFix as exc:
        raise invalid(("body", "recorded_at"), str(exc)) from None
    if not gateway_state(request).locations.submit(seen):
        raise HTTPException(
            status_code=503,
            detail="too many locations waiting; try again",
            headers={"Retry-After": "1"},
        )
    return LocationAccepted(subject_id=principal.id, recorded_at=seen.fix.recorded_at)
