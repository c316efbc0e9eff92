"""Batches of many subjects' fixes: the bulk feed of integrations (issue 20).

Fleets, telematics gateways and Traccar forward positions many at a time
with an integration key (``gateway.auth.integration_keys``): over
``POST /geofencing/locations`` (``gateway.routes.geofencing``) or as
``locations`` frames of ``/ws/locations`` (``gateway.ws.bulk``). Both read a
batch here and hand it to the same :class:`~gateway.locations.LocationIngest`
as a phone's ``location`` frames, so a fix has the same effects whichever
way it came: the newest per subject in Redis, every one to its subject
entity (enter / exit / dwell), a sampled history.

Invariants:

* each fix is validated exactly as strictly as a phone's (:class:`BatchFix`
  is the ``location`` frame's data plus whose fix it is; a fix in the shape
  integrations send is read by ``gateway.quick_fixes`` with the same result,
  without building the model), and a bad fix is answered with its index
  (:class:`FixError`) without refusing the rest;
* fixes are taken in the order given, so a subject's fixes reach its entity
  in that order (one flush keeps the queue's order per shard); the entity
  applies them in ``recorded_at`` order and drops one older than its last,
  as it does for a phone;
* a fix the ingest cannot queue (overload: the bulk feed may fill only
  ``geofence.bulk_queue_share`` of a gateway's queue, so phones keep the
  rest) is answered ``unavailable`` with its index, never silently dropped.

Reading is pure; :func:`take` is the one step with an effect (``submit``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from actors.subject import SubjectRole, subject_key
from config.settings import GeofenceSettings
from gateway.locations import LocationSink, Reported, StaleFix, sighting
from gateway.quick_fixes import read_quick
from gateway.ws.codes import ErrorCode
from gateway.ws.frames import LocationData

#: Fix errors listed in one answer; the rest are counted in ``invalid`` / ``refused``.
MAX_ERRORS_LISTED: Final = 100


class BatchFix(LocationData):
    """One fix of a batch: a ``location`` frame's data and whose fix it is."""

    subject_id: UUID = Field(description="The user's or agent's id the fix is of.")
    subject_role: SubjectRole = Field(
        SubjectRole.USER, description="Whose position it is: `user` (default) or `agent`."
    )


class FixError(BaseModel):
    """Why the fix at ``index`` (0-based, in the batch as sent) was not taken."""

    index: int
    #: ``invalid_data`` (refused as a phone's would be: fields, ranges, ``recorded_at``)
    #: or ``unavailable`` (the gateway is overloaded; send it again later).
    code: str
    message: str


class BatchOutcome(BaseModel):
    """What came of one batch. ``accepted + invalid + refused`` is the batch's size."""

    accepted: int = Field(description="Fixes taken for geofencing.")
    invalid: int = Field(0, description="Fixes refused as invalid (`invalid_data`).")
    refused: int = Field(
        0, description="Fixes refused because the gateway is overloaded (`unavailable`)."
    )
    errors: list[FixError] = Field(
        default_factory=list,
        description=f"The first {MAX_ERRORS_LISTED} refused fixes, by index, in batch order.",
    )


class BatchBody(BaseModel):
    """Body of ``POST /geofencing/locations`` and data of a ``locations`` frame."""

    fixes: list[BatchFix] = Field(description="The fixes, in the order they should be applied.")


_ONE: Final = TypeAdapter(BatchFix)

#: A valid fix of a batch: its index in the batch, its role, its subject's entity
#: key (``actors.subject.subject_key``) and what was reported.
Reading = tuple[int, SubjectRole, str, Reported]


class NotABatch(ValueError):
    """The batch itself is malformed: not ``{"fixes": [...]}``, or too many fixes."""


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """A batch read: the valid fixes with their indexes, and the invalid ones' errors."""

    fixes: list[Reading]
    errors: list[FixError]
    size: int


def fixes_of(data: object, max_fixes: int) -> list[object]:
    """The list ``fixes`` of ``{"fixes": [...]}`` (already parsed JSON), not yet validated.

    :class:`NotABatch` when ``data`` is not such an object (unknown keys
    included), when ``fixes`` is empty, or when it holds more than ``max_fixes``.
    """
    if not isinstance(data, dict) or set(data) != {"fixes"}:
        raise NotABatch('a batch is an object with one key, "fixes": a list of fixes')
    raw = data["fixes"]
    if not isinstance(raw, list) or not raw:
        raise NotABatch('"fixes" must be a non-empty list')
    if len(raw) > max_fixes:
        raise NotABatch(f'"fixes" holds {len(raw)} fixes; at most {max_fixes} per batch')
    return raw


def read_batch(data: object, max_fixes: int) -> ReadBatch:
    """The fixes of ``{"fixes": [...]}``, each validated alone (:func:`fixes_of`):
    by ``gateway.quick_fixes`` when it can, by the :class:`BatchFix` model otherwise."""
    raw = fixes_of(data, max_fixes)
    fixes: list[Reading] = []
    errors: list[FixError] = []
    for index, item in enumerate(raw):
        quick = read_quick(item)
        if quick is not None:
            fixes.append((index, *quick))
            continue
        try:
            model = _ONE.validate_python(item)
        except ValidationError as exc:
            errors.append(FixError(index=index, code=ErrorCode.INVALID_DATA, message=_says(exc)))
            continue
        role = model.subject_role
        fixes.append((index, role, subject_key(role, model.subject_id), model))
    return ReadBatch(fixes, errors, len(raw))


def take(
    batch: ReadBatch, settings: GeofenceSettings, sink: LocationSink, now: datetime
) -> BatchOutcome:
    """Hand each valid fix to ``sink`` in order; what came of the whole batch."""
    errors = list(batch.errors)
    invalid = len(errors)
    refused = 0
    for index, role, key, reported in batch.fixes:
        try:
            seen = sighting(settings, role, reported, now, key)
        except StaleFix as exc:
            invalid += 1
            errors.append(FixError(index=index, code=ErrorCode.INVALID_DATA, message=str(exc)))
            continue
        if not sink.submit(seen, bulk=True):
            refused += 1
            errors.append(_overloaded(index))
    errors.sort(key=lambda e: e.index)
    return BatchOutcome(
        accepted=batch.size - invalid - refused,
        invalid=invalid,
        refused=refused,
        errors=errors[:MAX_ERRORS_LISTED],
    )


def receive(
    data: object, settings: GeofenceSettings, sink: LocationSink, now: datetime
) -> BatchOutcome:
    """A batch as it comes (parsed JSON), read and taken; :class:`NotABatch` for one
    that is not a batch. When ``sink`` has no room at all, every fix is refused as
    overload at once, without validating any (what an overloaded gateway saves is
    what lets it catch up)."""
    if not sink.has_room(bulk=True):
        size = len(fixes_of(data, settings.bulk_max_fixes))
        sink.refuse(size)
        return BatchOutcome(
            accepted=0,
            refused=size,
            errors=[_overloaded(i) for i in range(min(size, MAX_ERRORS_LISTED))],
        )
    return take(read_batch(data, settings.bulk_max_fixes), settings, sink, now)


@functools.cache
def _overloaded(index: int) -> FixError:
    """The error of a fix refused as overload (the same object for an index each
    time: an overloaded gateway answers thousands, and builds each once)."""
    return FixError(
        index=index, code=ErrorCode.UNAVAILABLE, message="too many locations waiting; send it again"
    )


def _says(exc: ValidationError) -> str:
    """A validation failure as one line: ``field: message; ...`` (no input echoed)."""
    parts: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else str(error["msg"]))
    return "; ".join(parts)


__all__ = [
    "BatchBody",
    "BatchFix",
    "BatchOutcome",
    "FixError",
    "NotABatch",
    "ReadBatch",
    "Reading",
    "fixes_of",
    "read_batch",
    "receive",
    "take",
]
