"""The zone bodies of ``/geofencing/zones`` and their checks, shared with
``panic-alert import-zones``.

A body's JSON shape is checked here (a GeoJSON Polygon, MultiPolygon, or
Point, with numbers for coordinates); its rules against its kind by
``actors.zone_rules.rule_problems``; its geometry's meaning by ``geo.fences``
(:func:`zone_fields` runs both and covers the zone with H3 cells).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
)

from actors.zone_rules import MAX_DWELL_S, ZoneKind, ZoneRow, ZoneRules, rule_problems
from gateway.auth.models import Name, RequestBody
from gateway.fields import Number
from gateway.ports import ZoneFields
from geo.coverage import MAX_FIX_ACCURACY_M, covering_cells
from geo.fences import InvalidZone, Zone

#: Most agents a service area may name.
MAX_AGENT_IDS = 1000
_GEOMETRY_TYPES = "geometry must be a GeoJSON Polygon, MultiPolygon or Point"


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
        """``(loc, msg)`` of every rule or radius that does not fit this zone
        (``actors.zone_rules.rule_problems``)."""
        return rule_problems(
            self.kind,
            self.rules.domain(),
            is_point=self.geometry.type == "Point",
            radius_m=self.radius_m,
            agent_ids_given=self.rules.agent_ids,
        )


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
