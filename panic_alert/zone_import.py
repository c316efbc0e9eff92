"""Bulk import of geofence zones from a file: ``panic-alert import-zones`` (see ``cli``).

The file is read with geopandas (any format OGR reads; a GeoJSON
FeatureCollection is the usual one). Each feature's properties give
``name``, ``kind`` (or the command's default), ``radius_m``, ``rules``,
``active`` and optionally ``id`` (a UUID; the GeoJSON feature ``id`` counts
too). Every feature is checked exactly as ``POST /geofencing/zones`` checks a
body (``gateway.zone_models``: the JSON shape, the rules against the kind,
then ``geo.fences``), so a zone imported is a zone the API would have taken.

Guarantees:

* **One bad feature spoils nothing else.** It is reported (its index in the
  file and the reason) and the others are stored.
* **Idempotent with ids.** A feature with an ``id`` is inserted or, if that
  zone exists (even deleted), fully replaced: importing the same file again
  changes nothing but revisions. A feature without one gets a new id each
  time. Two features with one id: the second is refused.
* **All or nothing per batch.** Each batch is one transaction; the shards'
  zone books hear of it by NOTIFY as one change set. A batch PostGIS refuses
  is retried a feature at a time, so only the offending ones are refused.

This module, like ``cli``, may import from both ``gateway`` and ``persistence``:
it is part of the command-line shell.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from uuid import UUID, uuid4

import asyncpg
import shapely
from pydantic import ValidationError
from shapely.geometry import mapping

from actors.zone_rules import ZoneKind
from gateway.ports import ZoneFields
from gateway.zone_models import ZoneIn, ZoneRefused, zone_fields
from persistence.errors import GeometryRejected
from persistence.stores.zones import upsert_zones

#: Zones per transaction.
DEFAULT_BATCH: Final = 500

#: ``progress(done, total)`` after each stored batch.
Progress = Callable[[int, int], None]


class ImportFailed(Exception):
    """The file as a whole cannot be read."""


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    reason: str


@dataclass(frozen=True, slots=True)
class Prepared:
    index: int
    zone_id: UUID
    fields: ZoneFields


@dataclass(slots=True)
class ImportReport:
    file: str
    features: int
    dry_run: bool
    created: int = 0
    updated: int = 0
    valid: int = 0
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "features": self.features,
            "dry_run": self.dry_run,
            "valid": self.valid,
            "imported": self.imported,
            "created": self.created,
            "updated": self.updated,
            "rejected": [
                {"index": r.index, "reason": r.reason}
                for r in sorted(self.rejected, key=lambda r: r.index)
            ],
        }


def read_features(path: Path) -> list[dict[str, Any]]:
    """Each feature's properties, with ``geometry`` as GeoJSON (None if unreadable), in file order.

    A geometry OGR cannot read (an unclosed ring, ...) comes back as None,
    so that feature alone is refused.
    """
    import geopandas  # heavy; only this command needs it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # OGR's notes on bad rings
            frame = geopandas.read_file(path, on_invalid="ignore")
    except Exception as exc:  # OGR and pyogrio raise many kinds; all mean "cannot read"
        raise ImportFailed(f"cannot read {path}: {exc}") from exc
    features: list[dict[str, Any]] = []
    for row in frame.to_dict("records"):
        geometry = row.pop("geometry", None)
        properties = {k: v for k, v in row.items() if not _missing(v)}
        properties["geometry"] = (
            None
            if geometry is None or geometry.is_empty
            else _lists(mapping(shapely.force_2d(geometry)))
        )
        features.append(properties)
    return features


def prepare(
    features: Sequence[Mapping[str, Any]], *, default_kind: ZoneKind | None, resolution: int
) -> tuple[list[Prepared], list[Rejected]]:
    """The features that validate, ready to store, and the others with their reasons."""
    ready: list[Prepared] = []
    rejected: list[Rejected] = []
    first_of: dict[UUID, int] = {}
    for index, feature in enumerate(features):
        try:
            item = _prepared(index, feature, default_kind, resolution)
        except ValueError as exc:
            rejected.append(Rejected(index, str(exc)))
            continue
        if item.zone_id in first_of:
            reason = f"duplicate id {item.zone_id} (also feature {first_of[item.zone_id]})"
            rejected.append(Rejected(index, reason))
            continue
        first_of[item.zone_id] = index
        ready.append(item)
    return ready, rejected


async def store(
    pool: asyncpg.Pool,
    ready: Sequence[Prepared],
    report: ImportReport,
    *,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
) -> None:
    """Upsert ``ready`` in batches (one transaction each), counting into ``report``."""
    done = 0
    for start in range(0, len(ready), batch_size):
        batch = ready[start : start + batch_size]
        try:
            await _upsert(pool, batch, report)
        except GeometryRejected:
            for item in batch:  # find the ones PostGIS refuses; store the rest
                try:
                    await _upsert(pool, [item], report)
                except GeometryRejected:
                    report.rejected.append(
                        Rejected(item.index, "the database cannot store this geometry")
                    )
        done += len(batch)
        if progress is not None:
            progress(done, len(ready))


async def _upsert(pool: asyncpg.Pool, batch: Sequence[Prepared], report: ImportReport) -> None:
    result = await upsert_zones(pool, [(item.zone_id, item.fields) for item in batch])
    report.created += result.created
    report.updated += result.updated


def _prepared(
    index: int, feature: Mapping[str, Any], default_kind: ZoneKind | None, resolution: int
) -> Prepared:
    if feature.get("geometry") is None:
        raise ValueError("no readable geometry (missing, or malformed such as an unclosed ring)")
    zone_id = _zone_id(feature.get("id"))
    body: dict[str, Any] = {
        k: feature[k] for k in ("name", "kind", "geometry", "radius_m", "rules") if k in feature
    }
    if "kind" not in body and default_kind is not None:
        body["kind"] = default_kind.value
    if "active" in feature:
        body["active"] = _flag(feature["active"])
    try:
        zone = ZoneIn.model_validate(body)
        _shape, fields = zone_fields(zone, zone_id, resolution)
    except ValidationError as exc:
        raise ValueError(_reasons(exc)) from None
    except ZoneRefused as exc:
        raise ValueError(str(exc)) from None
    return Prepared(index, zone_id, fields)


def _zone_id(value: Any) -> UUID:
    if value is None:
        return uuid4()
    try:
        return UUID(str(value))
    except ValueError:
        raise ValueError(f"id must be a UUID, got {str(value)[:60]!r}") from None


def _flag(value: Any) -> Any:
    """OGR reads a boolean column with gaps as floats: 1.0 / 0.0 are true / false."""
    if isinstance(value, float) and value in (0.0, 1.0):
        return value == 1.0
    return value


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'feature'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _lists(value: Any) -> Any:
    """shapely's GeoJSON has tuples; the API's is lists."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value
