"""Region cells: the available-agent index, nearest-k ranking, zones."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import pytest
from actors_kit import Clock, of_type

from actors import region
from actors.effects import EntityKind, Persist, Reply
from actors.errors import InvalidMessage
from actors.region import (
    AgentLeft,
    AgentPosition,
    AgentPresence,
    Candidate,
    QueryNearest,
    QueryZones,
    RegionPolicy,
    RegionState,
    ZonesChanged,
)
from geo.cells import cell_center, cell_of, haversine_m
from geo.errors import InvalidCell

RES = 7
# The centre of a cell in Berlin: offsets of a few hundred metres stay inside.
CELL = cell_of(52.4986, 13.4030, RES)
LAT, LON = cell_center(CELL)


def agent(n: int) -> UUID:
    return UUID(int=0xA000 + n)


def populated(clock: Clock, offsets: dict[int, tuple[float, float]]) -> RegionState:
    """Agents ``n`` at ``(LAT + dlat, LON + dlon)``, all inside CELL."""
    state = RegionState.new(CELL)
    for n, (dlat, dlon) in offsets.items():
        msg = AgentPresence(agent(n), LAT + dlat, LON + dlon, True, clock.now)
        state, _ = region.decide(state, msg, clock.now)
    assert len(state.agents) == len(offsets)
    return state


def test_new_needs_a_valid_cell() -> None:
    state = RegionState.new(CELL)
    assert state.resolution == RES
    assert (state.version, dict(state.agents), state.zone_ids) == (0, {}, frozenset())
    with pytest.raises(InvalidCell):
        RegionState.new("not-a-cell")


def test_nearest_ranks_by_distance_then_id() -> None:
    clock = Clock()
    offsets = {
        1: (0.004, 0.0),
        2: (0.001, 0.0),
        3: (0.0, 0.002),
        4: (0.001, 0.0),  # same spot as 2: the lower id ranks first
        5: (-0.003, -0.001),
    }
    state = populated(clock, offsets)
    found = state.nearest(LAT, LON, 10)
    assert [c.agent_id for c in found] == [agent(2), agent(4), agent(3), agent(5), agent(1)]
    distances = [c.distance_m for c in found]
    assert distances == sorted(distances)
    assert found[0].distance_m == pytest.approx(haversine_m(LAT, LON, LAT + 0.001, LON))
    assert found[0].distance_m == found[1].distance_m

    assert [c.agent_id for c in state.nearest(LAT, LON, 2)] == [agent(2), agent(4)]
    excluded = state.nearest(LAT, LON, 2, exclude={agent(2), agent(3)})
    assert [c.agent_id for c in excluded] == [agent(4), agent(5)]
    # A service area's agents only: the nearest of them, however far the others are nearer.
    only = state.nearest(LAT, LON, 2, only={agent(1), agent(5), agent(9)})
    assert [c.agent_id for c in only] == [agent(5), agent(1)]
    assert state.nearest(LAT, LON, 2, only=set()) == ()
    assert state.nearest(LAT, LON, 0) == ()


def test_nearest_matches_a_brute_force_sort() -> None:
    clock = Clock()
    offsets = {n: ((n * 37 % 17 - 8) * 0.0003, (n * 53 % 13 - 6) * 0.0004) for n in range(40)}
    state = populated(clock, offsets)
    point = (LAT + 0.0011, LON - 0.0007)
    brute = sorted(
        state.agents.items(),
        key=lambda item: (haversine_m(*point, item[1].latitude, item[1].longitude), item[0]),
    )
    assert [c.agent_id for c in state.nearest(*point, 7)] == [a for a, _ in brute[:7]]


def test_presence_updates_and_ignores_older_news() -> None:
    clock = Clock()
    state = populated(clock, {1: (0.0, 0.0)})
    t0 = clock.now
    moved, effects = region.decide(
        state, AgentPresence(agent(1), LAT + 0.001, LON, True, clock.advance(5)), clock.now
    )
    assert moved.agents[agent(1)] == AgentPosition(LAT + 0.001, LON, clock.now)
    # Soft state: no version bump, nothing persisted.
    assert moved.version == state.version
    assert of_type(effects, Persist) == []
    older = AgentPresence(agent(1), LAT, LON, True, t0)
    same, _ = region.decide(moved, older, clock.now)
    assert same is moved
    assert region.decide(moved, AgentLeft(agent(1), t0), clock.now)[0] is moved
    assert region.decide(moved, AgentPresence(agent(1), LAT, LON, False, t0), clock.now)[0] is moved


def test_leaving_and_unavailable_remove_the_agent() -> None:
    clock = Clock()
    state = populated(clock, {1: (0.0, 0.0), 2: (0.001, 0.0)})
    gone, effects = region.decide(state, AgentLeft(agent(1), clock.advance(1)), clock.now)
    assert set(gone.agents) == {agent(2)}
    assert effects == (Reply(gone),)
    unavailable = AgentPresence(agent(2), LAT, LON, False, clock.advance(1))
    empty, _ = region.decide(gone, unavailable, clock.now)
    assert dict(empty.agents) == {}
    unknown, effects = region.decide(empty, AgentLeft(agent(9)), clock.now)
    assert unknown is empty


def test_presence_outside_the_cell_is_refused() -> None:
    state = RegionState.new(CELL)
    munich = AgentPresence(agent(1), 48.1372, 11.5756, True, Clock().now)
    with pytest.raises(InvalidMessage, match="is not in cell"):
        region.decide(state, munich, Clock().now)
    with pytest.raises(InvalidMessage):
        region.decide(state, AgentPresence(agent(1), 100.0, 0.0, True, Clock().now), Clock().now)


def test_query_nearest_replies_with_fresh_candidates_only() -> None:
    clock = Clock()
    state = populated(clock, {1: (0.001, 0.0)})
    state, _ = region.decide(
        state, AgentPresence(agent(2), LAT + 0.002, LON, True, clock.advance(100)), clock.now
    )
    policy = RegionPolicy(presence_ttl=timedelta(seconds=60))
    query = QueryNearest(LAT, LON, k=5)
    same, effects = region.decide(state, query, clock.now, policy)
    assert same is state
    ((reply),) = effects
    assert isinstance(reply, Reply)
    assert [c.agent_id for c in reply.value] == [agent(2)]  # agent 1 is 100 s stale
    assert all(isinstance(c, Candidate) for c in reply.value)
    _, effects = region.decide(state, query, clock.now, RegionPolicy(presence_ttl=None))
    assert [c.agent_id for c in effects[0].value] == [agent(1), agent(2)]  # type: ignore[union-attr]
    _, effects = region.decide(state, QueryNearest(LAT, LON, 5, frozenset({agent(1)})), clock.now)
    assert [c.agent_id for c in effects[0].value] == [agent(2)]  # type: ignore[union-attr]
    only = QueryNearest(LAT, LON, 5, only=frozenset({agent(1)}))
    _, effects = region.decide(state, only, clock.now, RegionPolicy(presence_ttl=None))
    assert [c.agent_id for c in effects[0].value] == [agent(1)]  # type: ignore[union-attr]
    with pytest.raises(InvalidMessage):
        region.decide(state, QueryNearest(LAT, LON, k=-1), clock.now)


def test_zones_changed_persists_a_new_set_only() -> None:
    clock = Clock()
    zone_keep, zone_drop, zone_new = UUID(int=0x2001), UUID(int=0x2002), UUID(int=0x2003)
    state = RegionState(
        cell=CELL, zone_ids=frozenset({zone_keep, zone_drop}), zones_revision=7, version=3
    )
    new, effects = region.decide(
        state, ZonesChanged(frozenset({zone_keep, zone_new}), 9), clock.now
    )
    assert (new.zone_ids, new.zones_revision, new.version) == ({zone_keep, zone_new}, 9, 4)
    persist, reply = effects
    assert persist == Persist(EntityKind.REGION, CELL, 4, new.to_snapshot())
    assert reply == Reply(new)
    # The same set again: nothing to store.
    same, effects = region.decide(new, ZonesChanged(frozenset({zone_new, zone_keep}), 9), clock.now)
    assert same is new
    assert effects == (Reply(new),)
    # The same set under a newer revision: the revision advances, in memory only.
    newer, effects = region.decide(new, ZonesChanged(new.zone_ids, 12), clock.now)
    assert (newer.zone_ids, newer.zones_revision, newer.version) == (new.zone_ids, 12, 4)
    assert of_type(effects, Persist) == []


def test_an_older_zones_changed_is_ignored() -> None:
    clock = Clock()
    zone_a, zone_b = UUID(int=0x2001), UUID(int=0x2002)
    state, _ = region.decide(RegionState.new(CELL), ZonesChanged(frozenset({zone_a}), 5), clock.now)
    late, effects = region.decide(state, ZonesChanged(frozenset({zone_b}), 4), clock.now)
    assert late is state
    assert effects == (Reply(state),)
    emptied, _ = region.decide(state, ZonesChanged(frozenset(), 6), clock.now)
    assert (emptied.zone_ids, emptied.zones_revision, emptied.version) == (frozenset(), 6, 2)
    with pytest.raises(InvalidMessage):
        region.decide(state, ZonesChanged(frozenset(), -1), clock.now)


def test_query_zones_reads_the_set_without_changing_anything() -> None:
    clock = Clock()
    zone = UUID(int=0x2001)
    state, _ = region.decide(RegionState.new(CELL), ZonesChanged(frozenset({zone}), 1), clock.now)
    same, effects = region.decide(state, QueryZones(), clock.now)
    assert same is state
    assert effects == (Reply(frozenset({zone})),)
