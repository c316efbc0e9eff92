"""The vocabulary of geofence zones: their kinds and rules, as domain values. Pure.

Shared by everything that acts on zones (the shard's zone book, the
subject trackers, dispatch in service areas) so each reads the same typed
rules, never a raw dict. The gateway validates rules at the edge
(``gateway.routes.zones``) and stores them as JSON (``to_json``); what is
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
from collections.abc import Mapping
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
