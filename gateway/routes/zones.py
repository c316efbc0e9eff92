"""``/geofencing/zones``: the zones every role may read and admins write (API.md, Geofencing).

A zone is ``{id, name, kind, geometry, radius_m?, rules?, active}``. Its
geometry is checked twice: its JSON shape here (a GeoJSON Polygon,
MultiPolygon, or Point, with numbers for coordinates), then its meaning by
``geo.fences`` (closed rings, no self-intersection, vertex and area bounds,
no antimeridian or polar zones). A refusal is a 422 whose ``errors`` entry
points at ``geometry`` and says ``geo``'s reason. Rules are checked against
the kind (``actors.zone_rules.rule_problems``; the bodies are
``gateway/zone_models.py``): a ``service_area`` zone must name the
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
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, Response
from fastapi.exceptions import RequestValidationError

from actors.store_errors import GeometryRejected, InvalidCursor
from actors.zone_rules import ZoneKind
from gateway.auth.models import problem_responses
from gateway.deps import AdminPrincipal, CurrentPrincipal, SettingsDep, ZonesDep
from gateway.paging import CursorParam, Limit
from gateway.ports import ZoneFields
from gateway.problems import ProblemHTTPException
from gateway.ratelimit import rate_limit
from gateway.zone_models import ZoneIn, ZoneOut, ZonePageOut, ZoneRefused, zone_fields

log = logging.getLogger(__name__)

router = APIRouter(prefix="/geofencing/zones", tags=["geofencing"])

#: Reads per caller and endpoint (issue 16: zone reads had no limit).
_read_limit = Depends(
    rate_limit("zones:read", key="principal", rule="geofence_read_per_principal", per_route=True)
)

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
    responses=_responses(401, 422, 429),
    dependencies=[_read_limit],
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
    responses=_responses(401, 404, 422, 429),
    dependencies=[_read_limit],
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
