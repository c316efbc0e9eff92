"""The fleet as the dispatcher console sees it: items, diffs and ranking. Pure.

One item shape serves ``GET /admin/fleet`` (plus who the agent is), the
``fleet.agents`` frame (``gateway.ws.fleet_feed``) and, with a distance,
``GET /alerts/{id}/candidates``. ``available`` is the duty status
``available``; whether the dispatch may offer the agent an alert right now
also needs a live socket, which only the agent entity knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from gateway.ports import FleetAgentRow, FleetPosition
from geo.cells import haversine_m

AVAILABLE = "available"
OFFLINE = "offline"


class FleetAgent(BaseModel):
    """One agent on the map."""

    agent_id: UUID
    status: str = Field(description="duty status: available, busy, on_break or offline")
    available: bool = Field(description="`status` is `available`")
    latitude: float | None = Field(description="null only for an agent never located")
    longitude: float | None
    heading: float | None = Field(description="degrees from north, as the device reported it")
    speed_mps: float | None
    at: datetime | None = Field(description="the time of the position fix")


class FleetMember(FleetAgent):
    """One agent of ``GET /admin/fleet``: the map item and who the agent is."""

    full_name: str
    badge_number: str | None
    vetting: str


def agent_item(agent_id: UUID, status: str, position: FleetPosition | None) -> FleetAgent:
    return FleetAgent(
        agent_id=agent_id,
        status=status,
        available=status == AVAILABLE,
        latitude=None if position is None else position.latitude,
        longitude=None if position is None else position.longitude,
        heading=None if position is None else position.heading,
        speed_mps=None if position is None else position.speed_mps,
        at=None if position is None else position.at,
    )


def members(rows: Iterable[FleetAgentRow]) -> list[FleetMember]:
    """The approved agents that have a known position, as ``GET /admin/fleet`` lists them."""
    out = []
    for row in rows:
        if row.position is None:
            continue
        item = agent_item(row.agent_id, row.status, row.position)
        out.append(
            FleetMember(
                **item.model_dump(),
                full_name=row.full_name,
                badge_number=row.badge_number,
                vetting=row.vetting,
            )
        )
    return out


def ranked(
    rows: Iterable[FleetAgentRow], latitude: float, longitude: float, limit: int
) -> list[tuple[FleetAgentRow, FleetPosition, float]]:
    """The ``limit`` agents with a known position nearest to the point, nearest
    first (ties by id), each with its position and distance in metres."""
    located = [
        (
            row,
            row.position,
            haversine_m(latitude, longitude, row.position.latitude, row.position.longitude),
        )
        for row in rows
        if row.position is not None
    ]
    located.sort(key=lambda entry: (entry[2], entry[0].agent_id))
    return [(row, position, distance) for row, position, distance in located[:limit]]


# --- the diff the feed sends --------------------------------------------------------


#: What the console is told of one agent: its status and position.
Known = tuple[str, FleetPosition | None]


def changed(
    known: Mapping[UUID, Known],
    statuses: Mapping[UUID, str],
    positions: Mapping[UUID, FleetPosition],
) -> dict[UUID, Known]:
    """The agents whose status or position differs from ``known``, as they are now.

    ``statuses`` holds the status read for each agent whose row changed (an
    agent no longer approved reads as ``offline``); ``positions`` the new
    positions. An agent in neither keeps what it had; one never known and not
    given a status is left out (not approved, or not yet read)."""
    now: dict[UUID, Known] = {}
    for agent_id in {*statuses, *positions}:
        before = known.get(agent_id)
        status = statuses.get(agent_id, before[0] if before is not None else None)
        if status is None:
            continue
        position = positions.get(agent_id, before[1] if before is not None else None)
        if before != (status, position):
            now[agent_id] = (status, position)
    return now


def fleet_frame_data(agents: Mapping[UUID, Known], at: datetime) -> dict[str, object]:
    """``fleet.agents`` data, JSON-safe, agents in id order."""
    items: Sequence[FleetAgent] = [
        agent_item(agent_id, status, position)
        for agent_id, (status, position) in sorted(agents.items())
    ]
    return {
        "agents": [item.model_dump(mode="json") for item in items],
        "at": at.isoformat(),
    }
