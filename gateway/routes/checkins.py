"""``/checkins``: a user's timed safety check (README, "Check-ins").

"I am walking home; if I have not checked in by T, raise an alert for me."
Only the ``user`` role: agents and admins get 403. A check-in lives in the
user's subject entity (``actors.subject``, ``actors.checkins``), asked
through the cluster client; an answer means the change is committed with
its ``checkin.*`` event. The entity holds one running check-in at a time
(a second start is 409), fires a durable timer at ``due_at`` (still running
then: ``missed``, and a ``panic`` alert is raised for the user where they
were last seen), and ends it as ``arrived`` when the user enters a ``safe``
zone whose rules say ``end_check_in``.

Bounds of the due time are checked here, not in the entity: at least
``PANIC_USERS__CHECKIN_MIN_DUE_S`` (default 60) and at most 24 h ahead.
Every request addresses the caller's own entity, so another user's check-in
id is simply unknown there: 404, exactly as an id never issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Self
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictStr,
    model_validator,
)

from actors.checkins import (
    MAX_NOTE,
    CheckIn,
    CheckInStatus,
    CompleteCheckIn,
    CurrentCheckIn,
    StartCheckIn,
)
from actors.effects import EntityKind
from actors.subject import SubjectRole, subject_key
from cluster.client import EntityClient
from gateway.auth.models import RequestBody, problem_responses
from gateway.deps import EntitiesDep, SettingsDep, UserPrincipal
from gateway.fields import PLAIN_TEXT, Latitude, Longitude, PlaceAccuracy
from gateway.problems import ProblemHTTPException, invalid
from gateway.ratelimit import rate_limit

_limit = Depends(rate_limit("checkins", key="principal", rule="per_principal", per_route=True))

router = APIRouter(prefix="/checkins", tags=["checkins"], dependencies=[_limit])

#: The latest a check-in may be due: a day ahead.
MAX_DUE_S: Final = 86_400

Note = Annotated[StrictStr, Field(max_length=MAX_NOTE), PLAIN_TEXT]
DueInS = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=MAX_DUE_S,
        description="Seconds from now: at least the deployment's minimum "
        "(PANIC_USERS__CHECKIN_MIN_DUE_S, default 60), at most 86400.",
    ),
]
DueAt = Annotated[
    AwareDatetime,
    Field(
        description="RFC 3339 with an offset, between the deployment's minimum "
        "(PANIC_USERS__CHECKIN_MIN_DUE_S, default 60 s) and 24 h from now by the "
        "server's clock; outside that window: 422."
    ),
]


# --- schemas ----------------------------------------------------------------------


class CheckInStart(RequestBody):
    """Body of ``POST /checkins``: exactly one of ``due_in_s`` and ``due_at``, and
    where the user is now (where the alert is raised if no fix comes later). Both
    or neither of the due times is refused with 422."""

    #: The "exactly one" rule as JSON Schema, so the OpenAPI document states it.
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": [
                {"required": ["due_in_s"], "properties": {"due_in_s": {"type": "integer"}}},
                {"required": ["due_at"], "properties": {"due_at": {"type": "string"}}},
            ]
        }
    )

    due_in_s: DueInS | None = None
    due_at: DueAt | None = None
    latitude: Latitude
    longitude: Longitude
    accuracy_m: PlaceAccuracy | None = None
    note: Note | None = None

    @model_validator(mode="after")
    def _one_due_time(self) -> Self:
        if (self.due_in_s is None) == (self.due_at is None):
            raise ValueError("give exactly one of due_in_s and due_at")
        return self


class CheckInOut(BaseModel):
    """A check-in as every ``/checkins`` answer shows it."""

    id: UUID
    status: CheckInStatus
    started_at: datetime
    due_at: datetime
    #: When it was completed, arrived or missed; null while it runs.
    ended_at: datetime | None
    note: str | None
    #: Where the check-in was started.
    latitude: float
    longitude: float
    accuracy_m: float | None

    @classmethod
    def of(cls, check_in: CheckIn) -> CheckInOut:
        return cls(
            id=check_in.id,
            status=check_in.status,
            started_at=check_in.started_at,
            due_at=check_in.due_at,
            ended_at=check_in.ended_at,
            note=check_in.note,
            latitude=check_in.latitude,
            longitude=check_in.longitude,
            accuracy_m=check_in.accuracy_m,
        )


def _responses(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, object]]:
    responses = problem_responses(*statuses)
    responses[403]["description"] = "Only users have check-ins (agents and admins: 403)."
    for status, description in (described or {}).items():
        responses[status]["description"] = description
    responses[503]["description"] = "The entity actors did not answer; see Retry-After."
    return responses


# --- helpers ----------------------------------------------------------------------


def _due_at(body: CheckInStart, now: datetime, min_due_s: int) -> datetime:
    """The due time in UTC, within [now + min_due_s, now + 24 h]; 422 otherwise."""
    if body.due_in_s is not None:
        if body.due_in_s < min_due_s:
            raise invalid(("body", "due_in_s"), f"must be at least {min_due_s} seconds")
        return now + timedelta(seconds=body.due_in_s)
    assert body.due_at is not None
    bounds = f"must be between {min_due_s} s and 24 h from now"
    try:
        due_at = body.due_at.astimezone(UTC)
    except OverflowError:
        raise invalid(("body", "due_at"), bounds) from None
    ahead = (due_at - now).total_seconds()
    if not min_due_s <= ahead <= MAX_DUE_S:
        raise invalid(("body", "due_at"), bounds)
    return due_at


async def _ask(entities: EntityClient, user_id: UUID, message: object) -> CheckIn | None:
    key = subject_key(SubjectRole.USER, user_id)
    reply = await entities.ask(EntityKind.SUBJECT, key, message)
    if reply is not None and not isinstance(reply, CheckIn):
        raise TypeError(f"subject {key} replied with {type(reply).__name__}")
    return reply


def _answer(check_in: CheckIn | None) -> CheckInOut:
    if check_in is None:  # a start or a complete always answers with one
        raise TypeError("the subject answered without a check-in")
    return CheckInOut.of(check_in)


# --- routes -----------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=CheckInOut,
    summary="Start a check-in: an alert is raised if it is not completed in time",
    responses=_responses(
        401,
        403,
        409,
        422,
        429,
        503,
        described={409: "A check-in is already running (one at a time); complete it first."},
    ),
)
async def start_check_in(
    body: CheckInStart, principal: UserPrincipal, entities: EntitiesDep, settings: SettingsDep
) -> CheckInOut:
    """Answers 201 once the check-in and its due timer are committed. Not completed by
    ``due_at`` (and not ended by arriving in a safe zone that ends check-ins), it is
    ``missed`` and a ``panic`` alert is raised for the caller where they were last seen."""
    due_at = _due_at(body, datetime.now(UTC), settings.users.checkin_min_due_s)
    message = StartCheckIn(
        check_in_id=uuid4(),
        due_at=due_at,
        latitude=body.latitude,
        longitude=body.longitude,
        accuracy_m=body.accuracy_m,
        note=body.note,
    )
    return _answer(await _ask(entities, principal.id, message))


@router.get(
    "/current",
    response_model=CheckInOut,
    summary="The caller's running check-in",
    responses=_responses(401, 403, 404, 429, 503, described={404: "No check-in is running."}),
)
async def current_check_in(principal: UserPrincipal, entities: EntitiesDep) -> CheckInOut:
    check_in = await _ask(entities, principal.id, CurrentCheckIn())
    if check_in is None:
        raise ProblemHTTPException(404, detail="no check-in is running")
    return CheckInOut.of(check_in)


@router.post(
    "/{check_in_id}/complete",
    response_model=CheckInOut,
    summary="Check in: the running check-in is completed",
    responses=_responses(
        401,
        403,
        404,
        409,
        422,
        429,
        503,
        described={
            404: "No such check-in of the caller's.",
            409: "The check-in is not running any more (completed, arrived or missed).",
        },
    ),
)
async def complete_check_in(
    check_in_id: UUID, principal: UserPrincipal, entities: EntitiesDep
) -> CheckInOut:
    message = CompleteCheckIn(check_in_id=check_in_id)
    return _answer(await _ask(entities, principal.id, message))
