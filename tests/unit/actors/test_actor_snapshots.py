"""Snapshots: JSON-safe, exact round trips, strict decoding."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from actors_kit import AGENT_A, AGENT_B, AGENT_C, LAT, LON, Clock, alert_in, create, of_type

from actors import agent, alert
from actors.agent import AgentState, Availability, PositionReport
from actors.alert import AlertState, AlertStatus, DeclineOffer, OfferMade
from actors.effects import Persist
from actors.errors import InvalidSnapshot
from actors.region import AgentPosition, RegionState
from geo.cells import cell_of


def through_json(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What comes back from a JSONB column: only JSON types survive."""
    decoded: dict[str, Any] = json.loads(json.dumps(snapshot, allow_nan=False))
    return decoded


def alert_states() -> list[AlertState]:
    states = [alert_in(status) for status in AlertStatus]
    clock = Clock()
    busy = create(clock, silent=True)
    for msg in [OfferMade(AGENT_A, 10.25), OfferMade(AGENT_B), DeclineOffer(AGENT_B, "off duty")]:
        busy, _ = alert.decide(busy, msg, clock.advance(1.000123))
    busy, _ = alert.decide(busy, OfferMade(AGENT_C, distance_m=0.1 + 0.2), clock.now)
    states.append(busy)
    return states


@pytest.mark.parametrize("state", alert_states(), ids=lambda s: s.status.value)
def test_alert_snapshot_round_trips_exactly(state: AlertState) -> None:
    snapshot = state.to_snapshot()
    assert through_json(snapshot) == snapshot
    assert AlertState.from_snapshot(through_json(snapshot)) == state
    assert snapshot["kind"] == "alert"
    assert snapshot["id"] == str(state.id)


def test_the_persisted_snapshot_is_the_new_state() -> None:
    clock = Clock()
    state = create(clock)
    new, effects = alert.decide(state, OfferMade(AGENT_A), clock.advance(1))
    (persist,) = of_type(effects, Persist)
    assert AlertState.from_snapshot(through_json(dict(persist.snapshot))) == new


def agent_states() -> list[AgentState]:
    t = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return [
        AgentState.new(AGENT_A),
        AgentState(
            id=AGENT_A,
            availability=Availability.BUSY,
            location=PositionReport(LAT, LON, 4.5, 271.25, 13.9, t),
            last_heartbeat_at=t + timedelta(seconds=3),
            current_assignment=UUID(int=77),
            updated_at=t + timedelta(seconds=3),
            version=42,
        ),
        AgentState(
            id=AGENT_B,
            availability=Availability.ON_BREAK,
            location=PositionReport(-33.8688, 151.2093, None, None, None, t),
            # A time recorded with another offset is the same instant, and survives.
            last_heartbeat_at=t.astimezone(timezone(timedelta(hours=10))),
            updated_at=t,
            version=1,
        ),
    ]


@pytest.mark.parametrize("state", agent_states(), ids=["new", "busy", "break"])
def test_agent_snapshot_round_trips_exactly(state: AgentState) -> None:
    snapshot = state.to_snapshot()
    assert through_json(snapshot) == snapshot
    back = AgentState.from_snapshot(through_json(snapshot))
    assert back == state
    assert back.to_snapshot() == snapshot


def test_agent_persist_carries_the_snapshot() -> None:
    clock = Clock()
    state, effects = agent.decide(
        AgentState.new(AGENT_A), agent.SetStatus(Availability.AVAILABLE), clock.now
    )
    (persist,) = of_type(effects, Persist)
    # All but the soft fields (memory only, never written).
    soft = {"liveness_saved_at": None, "presence_at": None}
    back = AgentState.from_snapshot(through_json(dict(persist.snapshot)))
    assert back == replace(state, **soft)


def test_region_snapshot_round_trips_exactly() -> None:
    t = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    cell = cell_of(LAT, LON, 8)
    zones = [UUID(int=0x2000 + n) for n in range(3)]
    state = RegionState(
        cell=cell,
        zone_ids=frozenset(zones),
        zones_revision=41,
        agents={
            AGENT_B: AgentPosition(LAT, LON, t),
            AGENT_A: AgentPosition(LAT + 1e-7, LON - 1e-7, t + timedelta(microseconds=1)),
        },
        version=9,
    )
    snapshot = state.to_snapshot()
    assert through_json(snapshot) == snapshot
    assert RegionState.from_snapshot(through_json(snapshot)) == state
    # Deterministic: sorted ids, so equal states give byte-equal JSON.
    assert snapshot["zone_ids"] == sorted(str(z) for z in zones)
    assert list(snapshot["agents"]) == sorted(str(a) for a in (AGENT_A, AGENT_B))
    assert RegionState.from_snapshot(snapshot) == RegionState.from_snapshot(through_json(snapshot))
    empty = RegionState.new(cell)
    assert RegionState.from_snapshot(through_json(empty.to_snapshot())) == empty


def test_region_snapshots_from_before_zone_revisions_still_load() -> None:
    """Older snapshots kept subject-in-zone state here and had no zones_revision."""
    t = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    cell = cell_of(LAT, LON, 8)
    zone = UUID(int=0x2000)
    old = {
        "schema": 1,
        "kind": "region",
        "cell": cell,
        "zone_ids": [str(zone)],
        "subjects": {str(UUID(int=5)): {str(zone): {"inside": True, "since": t.isoformat()}}},
        "agents": {},
        "version": 3,
    }
    state = RegionState.from_snapshot(old)
    assert (state.zone_ids, state.zones_revision, state.version) == (frozenset({zone}), 0, 3)
    assert "subjects" not in state.to_snapshot()


def _broken(snapshot: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(snapshot)
    for key, value in changes.items():
        if value is KeyError:
            del out[key]
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "agent"},
        {"schema": 2},
        {"status": "lost"},
        {"id": KeyError},
        {"id": 12},
        {"created_at": "2025-03-01T12:00:00"},  # no offset
        {"latitude": "52.5"},
        {"silent": "yes"},
        {"version": 1.5},
        {"offered_to": [{"agent_id": "x"}]},
    ],
    ids=repr,
)
def test_malformed_alert_snapshots_are_refused(changes: dict[str, Any]) -> None:
    good = alert_states()[-1].to_snapshot()
    with pytest.raises(InvalidSnapshot):
        AlertState.from_snapshot(_broken(good, **changes))


@pytest.mark.parametrize(
    ("cls", "snapshot"),
    [
        (AgentState, {"schema": 1, "kind": "region"}),
        (AgentState, _broken(agent_states()[1].to_snapshot(), availability="asleep")),
        (AgentState, _broken(agent_states()[1].to_snapshot(), location={"latitude": 1})),
        (RegionState, _broken(RegionState.new(cell_of(LAT, LON, 7)).to_snapshot(), cell="zz")),
        (RegionState, _broken(RegionState.new(cell_of(LAT, LON, 7)).to_snapshot(), agents=[1])),
    ],
)
def test_malformed_agent_and_region_snapshots_are_refused(
    cls: type[AgentState] | type[RegionState], snapshot: dict[str, Any]
) -> None:
    with pytest.raises(InvalidSnapshot):
        cls.from_snapshot(snapshot)
