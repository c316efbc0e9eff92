"""``/geofencing/events``: subjects entering, leaving, dwelling in zones (API.md, Geofencing).

Reads the ``geofence_events`` collection of the MongoDB event store, where
the outbox relay stores every event the geofencing side emits
(the ``GeofenceEvents`` port; ``persistence.stores.geofence_events``);
nothing here writes. Events land there a moment after the fix that caused
them (the relay's delivery), so a listing is eventually complete, never wrong.

Visibility: admins see every event; a user or an agent sees only the events
whose subject is themselves. Without ``subject_id`` they get their own; a
``subject_id`` naming anyone else answers 404 whether or not that subject
exists, so the answer reveals nothing. ``zone_id`` filters for everyone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel

from actors.store_errors import InvalidCursor
from actors.subject import SubjectRole
from actors.zone_rules import ZoneKind
from gateway.auth.models import problem_responses
from gateway.auth.principal import Principal, Role
from gateway.deps import CurrentPrincipal, GeofenceEventsDep
from gateway.paging import CursorParam, Limit
from gateway.ports import GeofenceEventRow
from gateway.problems import ProblemHTTPException, invalid
from gateway.ratelimit import rate_limit
from geo.fences import FenceEvent

router = APIRouter(prefix="/geofencing/events", tags=["geofencing"])

#: Reads per caller (issue 16: event reads had no limit).
_read_limit = Depends(
    rate_limit("geofence-events:read", key="principal", rule="geofence_read_per_principal")
)


# --- schemas ----------------------------------------------------------------------


class GeofenceEventOut(BaseModel):
    """One geofence event: a subject entered, left, or dwelt in a zone."""

    id: UUID
    zone_id: UUID
    subject_id: UUID
    event: FenceEvent
    #: When the fix that caused it was recorded (UTC, milliseconds).
    at: datetime
    latitude: float
    longitude: float
    accuracy_m: float | None
    zone_kind: ZoneKind | None
    subject_role: SubjectRole | None

    @classmethod
    def of(cls, record: GeofenceEventRow) -> GeofenceEventOut:
        return cls(
            id=record.id,
            zone_id=record.zone_id,
            subject_id=record.subject_id,
            event=record.event,
            at=record.at,
            latitude=record.latitude,
            longitude=record.longitude,
            accuracy_m=record.accuracy_m,
            zone_kind=record.zone_kind,
            subject_role=record.subject_role,
        )


class GeofenceEventPageOut(BaseModel):
    items: list[GeofenceEventOut]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


def _responses() -> dict[int | str, dict[str, object]]:
    responses = problem_responses(401, 404, 422, 429, 503)
    responses[404]["description"] = (
        "`subject_id` names someone other than the caller (only admins may list "
        "other subjects; answered whether or not that subject exists)."
    )
    responses[503]["description"] = "The event store did not answer; see Retry-After."
    return responses


# --- helpers ----------------------------------------------------------------------


def _utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise invalid(("query", name), "out of range") from None


def _subject(principal: Principal, subject_id: UUID | None) -> UUID | None:
    """The subject the caller may list: anyone for an admin, else only themselves (404)."""
    if principal.role is Role.ADMIN:
        return subject_id
    if subject_id is not None and subject_id != principal.id:
        raise ProblemHTTPException(404, detail="subject not found")
    return principal.id


# --- routes -----------------------------------------------------------------------


@router.get(
    "",
    response_model=GeofenceEventPageOut,
    summary="List geofence events, oldest first",
    responses=_responses(),
    dependencies=[_read_limit],
)
async def list_events(
    principal: CurrentPrincipal,
    events: GeofenceEventsDep,
    zone_id: Annotated[UUID | None, Query(description="only events of this zone")] = None,
    subject_id: Annotated[
        UUID | None,
        Query(description="only events of this subject (admins: anyone; others: themselves)"),
    ] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="at or after (RFC 3339 with a time zone)")
    ] = None,
    until: Annotated[
        AwareDatetime | None, Query(description="before (RFC 3339 with a time zone)")
    ] = None,
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> GeofenceEventPageOut:
    """Admins see every event; users and agents only their own (``subject_id`` of
    anyone else is 404). Ordered by ``at``, then ``id``; ``since`` is inclusive,
    ``until`` exclusive."""
    if cursor is not None:
        try:
            events.check_cursor(cursor)
        except InvalidCursor:
            raise invalid(("query", "cursor"), "not a cursor this API issued") from None
    since_utc, until_utc = _utc(since, "since"), _utc(until, "until")
    if since_utc is not None and until_utc is not None and since_utc > until_utc:
        raise invalid(("query", "since"), "must not be after until")
    page = await events.list_events(
        zone_id=zone_id,
        subject_id=_subject(principal, subject_id),
        since=since_utc,
        until=until_utc,
        limit=limit,
        cursor=cursor,
    )
    return GeofenceEventPageOut(
        items=[GeofenceEventOut.of(r) for r in page.items],
        next_cursor=page.next_cursor,
    )
