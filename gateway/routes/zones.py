"""``/geofencing/zones``: the zones every role may read and admins write (API.md, Geofencing).

A zone is ``{id, name, kind, geometry, radius_m?, rules?, active}``. Its
geometry is checked twice: its JSON shape here (a GeoJSON Polygon,
MultiPolygon, or Point, with numbers for coordinates), then its meaning by
``geo.fences`` (closed rings, no self-intersection, vertex and area bounds,
no antimeridian or polar zones). A refusal is a 422 whose ``errors`` entry
points at ``geometry`` and says ``geo``'s reason. Rules are checked against
the kind (:meth:`ZoneIn.rule_errors`): a ``service_area`` zone must name the
agents offered its alerts (an empty list would leave its alerts with nobody,
so it is refused), and the rules of one kind are refused on another, so a
rule never silently does nothing.

Writes store the zone with the H3 cells it covers at the deployment's region
resolution (``geo.coverage``, grown by ``MAX_FIX_ACCURACY_M``); the shards'
zone books follow the table (``actors.zone_book``) and tell their regions, so
nothing here talks to Ray. A write answers once committed; the regions know
of it a moment later. Deleted zones are gone for every read here (404).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Response
from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
)

from actors.store_errors import GeometryRejected, InvalidCursor
from actors.zone_rules import MAX_DWELL_S, ZoneKind, ZoneRow, ZoneRules
from gateway.auth.models import Name, RequestBody, problem_responses
from gateway.deps import AdminPrincipal, CurrentPrincipal, SettingsDep, ZonesDep
from gateway.fields import Number
from gateway.paging import CursorParam, Limit
from gateway.ports import ZoneFields
from gateway.problems import ProblemHTTPException
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.fences import InvalidZone, Zone

log = logging.getLogger(__name__)

router = APIRouter(prefix="/geofencing/zones", tags=["geofencing"])

#: Most agents a service area may name.
MAX_AGENT_IDS = 1000
_GEOMETRY_TYPES = "geometry must be a GeoJSON Polygon, MultiPolygon or Point"


# --- schemas ----------------------------------------------------------------------

#: ``[longitude, latitude]``, GeoJSON's order, any finite numbers (ranges are
#: geo's to judge, with its reasons); no altitude.
Position = tuple[Number, Number]
Ring = list[Position]


class PointGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: Position


class PolygonGeometry(BaseModel):
    """An outer ring, then holes; each ring closed (its first position repeated last)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class MultiPolygonGeometry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["MultiPolygon"]
    coordinates: Annotated[list[list[Ring]], Field(min_length=1)]


def _known_type(value: Any) -> Any:
    """Say what geometries are taken, in ``geo``'s words, before the union tries each."""
    if not isinstance(value, dict) or value.get("type") not in ("Point", "Polygon", "MultiPolygon"):
        raise ValueError(_GEOMETRY_TYPES)
    return value


Geometry = Annotated[
    PointGeometry | PolygonGeometry | MultiPolygonGeometry,
    Discriminator("type"),
    BeforeValidator(_known_type),
]


class ZoneRulesIn(RequestBody):
    """What a zone does (see ``actors.zone_rules``); every member optional, unknown ones refused."""

    #: Danger zones: tell the person who entered.
    notify_subject: StrictBool = False
    #: Danger zones: tell the dispatchers (admins).
    notify_admins: StrictBool = False
    #: Service areas (required there, non-empty): the only agents offered alerts raised inside.
    agent_ids: Annotated[list[UUID], Field(min_length=1, max_length=MAX_AGENT_IDS)] | None = None
    #: Safe zones: arriving ends a running check-in.
    end_check_in: StrictBool = False
    #: Any zone: one ``dwell`` event per stay this long (seconds).
    dwell_s: Annotated[int, Field(strict=True, gt=0, le=MAX_DWELL_S)] | None = None

    def domain(self) -> ZoneRules:
        return ZoneRules(
            notify_subject=self.notify_subject,
            notify_admins=self.notify_admins,
            agent_ids=None if self.agent_ids is None else frozenset(self.agent_ids),
            end_check_in=self.end_check_in,
            dwell_s=self.dwell_s,
        )


class ZoneIn(RequestBody):
    """Body of ``POST`` and ``PUT`` (a PUT replaces every field; omitted ones take defaults)."""

    name: Name
    kind: ZoneKind
    geometry: Geometry
    #: Point zones only (required there): the circle's radius in metres.
    radius_m: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = None
    rules: ZoneRulesIn = Field(default_factory=ZoneRulesIn)
    active: StrictBool = True

    def rule_errors(self) -> list[tuple[tuple[str, ...], str]]:
        """``(loc, msg)`` of every rule or radius that does not fit this zone (see the module)."""
        errors: list[tuple[tuple[str, ...], str]] = []
        rules = self.rules
        if self.radius_m is not None and self.geometry.type != "Point":
            errors.append((("radius_m",), "radius_m is only for Point zones"))
        if self.kind is ZoneKind.SERVICE_AREA and not rules.agent_ids:
            need = "a service_area zone needs the agent_ids offered its alerts"
            errors.append((("rules", "agent_ids"), need))
        if self.kind is not ZoneKind.SERVICE_AREA and rules.agent_ids is not None:
            errors.append((("rules", "agent_ids"), "agent_ids applies to service_area zones only"))
        if rules.agent_ids is not None and len(set(rules.agent_ids)) != len(rules.agent_ids):
            errors.append((("rules", "agent_ids"), "agent_ids must not repeat an agent"))
        for flag in ("notify_subject", "notify_admins"):
            if getattr(rules, flag) and self.kind is not ZoneKind.DANGER:
                errors.append((("rules", flag), f"{flag} applies to danger zones only"))
        if rules.end_check_in and self.kind is not ZoneKind.SAFE:
            errors.append((("rules", "end_check_in"), "end_check_in applies to safe zones only"))
        return errors


class ZoneRulesOut(BaseModel):
    notify_subject: bool
    notify_admins: bool
    agent_ids: list[UUID] | None
    end_check_in: bool
    dwell_s: int | None

    @classmethod
    def of(cls, rules: ZoneRules) -> ZoneRulesOut:
        return cls(
            notify_subject=rules.notify_subject,
            notify_admins=rules.notify_admins,
            agent_ids=None if rules.agent_ids is None else sorted(rules.agent_ids),
            end_check_in=rules.end_check_in,
            dwell_s=rules.dwell_s,
        )


class ZoneOut(BaseModel):
    id: UUID
    name: str
    kind: ZoneKind
    geometry: Geometry
    radius_m: float | None
    rules: ZoneRulesOut
    active: bool
    created_at: datetime
    updated_at: datetime
    #: Grows with every write of any zone; a newer zone state has a larger one.
    revision: int

    @classmethod
    def of(cls, record: ZoneRow) -> ZoneOut:
        return cls.model_validate(
            {
                "id": record.id,
                "name": record.name,
                "kind": record.kind,
                "geometry": record.geometry,
                "radius_m": record.radius_m,
                "rules": ZoneRulesOut.of(ZoneRules.from_json(record.rules)),
                "active": record.active,
                "created_at": record.created_at,
                "updated_at": record.updated_at,
                "revision": record.revision,
            }
        )


class ZonePageOut(BaseModel):
    items: list[ZoneOut]
    #: Pass as ``cursor`` for the next page; null on the last page.
    next_cursor: str | None


# --- validation shared with the bulk import ------------------------------------------


class ZoneRefused(ValueError):
    """A zone body that fails the checks past its JSON shape; ``errors`` are ``(loc, msg)``."""

    def __init__(self, errors: list[tuple[tuple[str, ...], str]]) -> None:
        super().__init__("; ".join(f"{'.'.join(loc)}: {msg}" for loc, msg in errors))
        self.errors = errors


def zone_fields(body: ZoneIn, zone_id: UUID, resolution: int) -> tuple[Zone, ZoneFields]:
    """The validated zone and what to store of it; :class:`ZoneRefused` otherwise.

    CPU-bound for large zones (validity, buffering, covering): callers off
    the event loop's hot path run it in a thread.
    """
    errors = body.rule_errors()
    if errors:
        raise ZoneRefused(errors)
    geometry = body.geometry.model_dump(mode="json")
    try:
        zone = Zone.from_geojson(
            zone_id, geometry, radius_m=body.radius_m, dwell_s=body.rules.dwell_s
        )
    except InvalidZone as exc:
        raise ZoneRefused([(("geometry",), str(exc))]) from None
    fields = ZoneFields(
        name=body.name,
        kind=body.kind,
        geometry=geometry,
        radius_m=body.radius_m,
        rules=body.rules.domain().to_json(),
        active=body.active,
        cells=covering_cells(zone.geometry, resolution, MAX_FIX_ACCURACY_M),
    )
    return zone, fields


# --- helpers ----------------------------------------------------------------------


def _invalid(errors: list[tuple[tuple[str, ...], str]]) -> RequestValidationError:
    """A 422 rendered like every other validation failure (with ``errors``)."""
    return RequestValidationError(
        [{"loc": ("body", *loc), "msg": msg, "type": "value_error"} for loc, msg in errors]
    )


def _not_found() -> ProblemHTTPException:
    return ProblemHTTPException(404, detail="zone not found")


async def _fields(body: ZoneIn, zone_id: UUID, resolution: int) -> ZoneFields:
    try:
        _zone, fields = await asyncio.to_thread(zone_fields, body, zone_id, resolution)
    except ZoneRefused as exc:
        raise _invalid(exc.errors) from None
    return fields


def _refused_by_database() -> RequestValidationError:
    return _invalid([(("geometry",), "the database cannot store this geometry")])


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = dict(problem_responses(*statuses))
    out[503] = {
        **problem_responses(422)[422],
        "description": "The database did not answer; see Retry-After.",
    }
    return out


# --- routes -----------------------------------------------------------------------


@router.get(
    "",
    response_model=ZonePageOut,
    summary="List zones, newest first",
    responses=_responses(401, 422),
)
async def list_zones(
    _principal: CurrentPrincipal,
    zones: ZonesDep,
    kind: ZoneKind | None = None,
    active: bool | None = None,
    limit: Limit = 20,
    cursor: CursorParam = None,
) -> ZonePageOut:
    """Every role may read zones."""
    if cursor is not None:
        try:
            zones.check_cursor(cursor)
        except InvalidCursor:
            raise RequestValidationError(
                [{"loc": ("query", "cursor"), "msg": "not a cursor this API issued"}]
            ) from None
    page = await zones.list_zones(kind=kind, active=active, limit=limit, cursor=cursor)
    return ZonePageOut(
        items=[ZoneOut.of(r) for r in page.items],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{zone_id}",
    response_model=ZoneOut,
    summary="One zone",
    responses=_responses(401, 404, 422),
)
async def get_zone(zone_id: UUID, _principal: CurrentPrincipal, zones: ZonesDep) -> ZoneOut:
    record = await zones.get_zone(zone_id)
    if record is None:
        raise _not_found()
    return ZoneOut.of(record)


@router.post(
    "",
    status_code=201,
    response_model=ZoneOut,
    summary="Create a zone (admin)",
    responses=_responses(401, 403, 413, 422),
)
async def create_zone(
    body: ZoneIn,
    principal: AdminPrincipal,
    zones: ZonesDep,
    settings: SettingsDep,
    response: Response,
) -> ZoneOut:
    zone_id = uuid4()
    fields = await _fields(body, zone_id, settings.actors.region_resolution)
    try:
        record = await zones.create_zone(zone_id, fields, created_by=principal.id)
    except GeometryRejected:
        raise _refused_by_database() from None
    response.headers["Location"] = f"{router.prefix}/{zone_id}"
    log.info("zone %s created (%s, %d cells)", zone_id, body.kind.value, len(fields.cells))
    return ZoneOut.of(record)


@router.put(
    "/{zone_id}",
    response_model=ZoneOut,
    summary="Replace a zone (admin)",
    responses=_responses(401, 403, 404, 413, 422),
)
async def replace_zone(
    zone_id: UUID,
    body: ZoneIn,
    _principal: AdminPrincipal,
    zones: ZonesDep,
    settings: SettingsDep,
) -> ZoneOut:
    """Idempotent: the same body again changes nothing but the zone's revision."""
    fields = await _fields(body, zone_id, settings.actors.region_resolution)
    try:
        record = await zones.replace_zone(zone_id, fields)
    except GeometryRejected:
        raise _refused_by_database() from None
    if record is None:
        raise _not_found()
    return ZoneOut.of(record)


@router.delete(
    "/{zone_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a zone (admin)",
    responses=_responses(401, 403, 404, 422),
)
async def delete_zone(zone_id: UUID, _principal: AdminPrincipal, zones: ZonesDep) -> Response:
    if not await zones.delete_zone(zone_id):
        raise _not_found()
    return Response(status_code=204)
