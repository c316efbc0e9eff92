"""The vocabulary of geofence zones: their kinds and rules, as domain values. Pure.

Shared by everything that acts on zones (the shard's zone book, the
subject trackers, dispatch in service areas) so each reads the same typed
rules, never a raw dict. Which rules fit which kind is :func:`rule_problems`,
which the API's zone bodies (``gateway.zone_models``) and the bulk import
apply; rules are stored as JSON (``to_json``); what is
read back decodes with :meth:`ZoneRules.from_json`, which tolerates keys it
does not know and fills missing ones with defaults, so rules stored by an
older or newer release still load.

What each rule means:

* ``danger`` zones: on entry, ``notify_subject`` tells the person who
  entered, ``notify_admins`` the dispatchers.
* ``service_area`` zones: ``agent_ids`` are the only agents offered the
  alerts raised inside the zone (the gateway requires a non-empty list).
* ``safe`` zones: ``end_check_in`` ends a running check-in on arrival.
* any zone: ``dwell_s`` gives one ``dwell`` event per stay of that many
  seconds (``geo.fences``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol
from uuid import UUID

#: A dwell longer than a day is not a dwell.
MAX_DWELL_S: Final = 86_400


class ZoneKind(enum.StrEnum):
    SAFE = "safe"
    DANGER = "danger"
    SERVICE_AREA = "service_area"


@dataclass(frozen=True, slots=True)
class ZoneRules:
    notify_subject: bool = False
    notify_admins: bool = False
    #: Service areas: the agents offered alerts raised inside (None: not restricted).
    agent_ids: frozenset[UUID] | None = None
    end_check_in: bool = False
    dwell_s: int | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-safe, with every key and ``agent_ids`` sorted (equal rules, equal JSON)."""
        return {
            "notify_subject": self.notify_subject,
            "notify_admins": self.notify_admins,
            "agent_ids": None if self.agent_ids is None else sorted(str(a) for a in self.agent_ids),
            "end_check_in": self.end_check_in,
            "dwell_s": self.dwell_s,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ZoneRules:
        """Rules as stored: unknown keys ignored, missing ones default; ``ValueError`` if bad."""
        agent_ids = data.get("agent_ids")
        dwell_s = data.get("dwell_s")
        if dwell_s is not None and (
            isinstance(dwell_s, bool) or not isinstance(dwell_s, int) or dwell_s <= 0
        ):
            raise ValueError(f"bad dwell_s in zone rules: {dwell_s!r}")
        return cls(
            notify_subject=_flag(data, "notify_subject"),
            notify_admins=_flag(data, "notify_admins"),
            agent_ids=None if agent_ids is None else frozenset(UUID(str(a)) for a in agent_ids),
            end_check_in=_flag(data, "end_check_in"),
            dwell_s=dwell_s,
        )


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"bad {name} in zone rules: {value!r}")
    return value


__all__ = ["MAX_DWELL_S", "ZoneKind", "ZoneRules"]


#: A problem with a zone's fields: where (a JSON path) and what.
Problem = tuple[tuple[str, ...], str]


def rule_problems(
    kind: ZoneKind,
    rules: ZoneRules,
    *,
    is_point: bool,
    radius_m: float | None,
    agent_ids_given: Sequence[UUID] | None,
) -> list[Problem]:
    """Every rule (or radius) that does not fit a zone of ``kind``: a point takes a
    radius, only a service area lists agents (and must, each once), only a
    danger zone notifies, only a safe zone ends check-ins. ``agent_ids_given``
    is the list as given (``rules`` holds it as a set). The API and
    ``panic-alert import-zones`` refuse a zone with any problem."""
    problems: list[Problem] = []
    if radius_m is not None and not is_point:
        problems.append((("radius_m",), "radius_m is only for Point zones"))
    if kind is ZoneKind.SERVICE_AREA and not rules.agent_ids:
        need = "a service_area zone needs the agent_ids offered its alerts"
        problems.append((("rules", "agent_ids"), need))
    if kind is not ZoneKind.SERVICE_AREA and rules.agent_ids is not None:
        problems.append((("rules", "agent_ids"), "agent_ids applies to service_area zones only"))
    if agent_ids_given is not None and len(set(agent_ids_given)) != len(agent_ids_given):
        problems.append((("rules", "agent_ids"), "agent_ids must not repeat an agent"))
    for flag in ("notify_subject", "notify_admins"):
        if getattr(rules, flag) and kind is not ZoneKind.DANGER:
            problems.append((("rules", flag), f"{flag} applies to danger zones only"))
    if rules.end_check_in and kind is not ZoneKind.SAFE:
        problems.append((("rules", "end_check_in"), "end_check_in applies to safe zones only"))
    return problems


class ZoneRow(Protocol):
    """One stored zone as its row stands (``persistence.stores.zones.ZoneRecord``):
    what the gateway shows and the zone book follows."""

    @property
    def id(self) -> UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> ZoneKind: ...
    @property
    def geometry(self) -> Mapping[str, Any]: ...
    @property
    def radius_m(self) -> float | None: ...
    @property
    def rules(self) -> Mapping[str, Any]: ...
    @property
    def active(self) -> bool: ...
    @property
    def cells(self) -> tuple[str, ...]: ...
    @property
    def revision(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def deleted_at(self) -> datetime | None:
        """Set only on rows a change feed returns."""
        ...
