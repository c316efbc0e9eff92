"""The region searcher without Ray: ranking, the disk of cells asked, exclusions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from actors import region
from actors.effects import EntityKind, Reply
from actors.errors import InvalidMessage
from actors.region import AgentPresence, QueryNearest, RegionState
from actors.search import Candidate, Search, rank
from cluster.dispatch import RegionSearcher
from geo.cells import cell_center, cell_of, k_ring, ring
from tests.geodesy import destination

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RES = 7
HOME = (-33.9249, 18.4241)  # Cape Town


def aid(n: int) -> UUID:
    return UUID(int=n)


def cand(n: int, distance: float, *, age_s: float = 0) -> Candidate:
    return Candidate(aid(n), distance, 0.0, 0.0, NOW - timedelta(seconds=age_s))


# --- rank -------------------------------------------------------------------------------


def test_rank_merges_cells_nearest_first_with_ties_by_agent_id() -> None:
    ranked = rank([cand(3, 500), cand(2, 100), cand(5, 300), cand(1, 300)])
    assert [c.agent_id for c in ranked] == [aid(2), aid(1), aid(5), aid(3)]


def test_rank_keeps_the_freshest_entry_of_an_agent_listed_twice() -> None:
    stale = cand(1, 50, age_s=30)
    fresh = cand(1, 700)
    ranked = rank([stale, cand(2, 400), fresh])
    assert ranked == (cand(2, 400), fresh)


def test_rank_drops_excluded_agents_and_bounds_the_length() -> None:
    found = [cand(n, 100 * n) for n in range(1, 6)]
    assert [c.agent_id for c in rank(found, exclude={aid(1), aid(3)}, k=2)] == [aid(2), aid(4)]
    assert rank([], k=3) == ()


# --- the region searcher with fake regions ---------------------------------------------


@dataclass
class FakeRegions:
    """Answers region queries from in-memory RegionStates and records every cell asked."""

    regions: dict[str, RegionState] = field(default_factory=dict)
    asked: list[tuple[EntityKind, str, object]] = field(default_factory=list)

    def place(self, agent: UUID, lat: float, lon: float) -> str:
        cell = cell_of(lat, lon, RES)
        state = self.regions.get(cell, RegionState.new(cell))
        state, _ = region.decide(state, AgentPresence(agent, lat, lon, True, NOW), NOW)
        self.regions[cell] = state
        return cell

    async def read_regions(self, items: Sequence[tuple[EntityKind, str, object]]) -> list[object]:
        answers: list[object] = []
        for kind, cell, message in items:
            self.asked.append((kind, cell, message))
            assert kind is EntityKind.REGION
            assert isinstance(message, QueryNearest)
            state = self.regions.get(cell, RegionState.new(cell))
            _, effects = region.decide(state, message, NOW)
            reply = effects[-1]
            assert isinstance(reply, Reply)
            answers.append(reply.value)
        return answers

    def cells_asked(self) -> set[str]:
        return {cell for _, cell, _ in self.asked}


def search(rings: int, *, k: int = 5, exclude: frozenset[UUID] = frozenset()) -> Search:
    return Search(1, HOME[0], HOME[1], rings=rings, k=k, exclude=exclude)


async def test_a_nearer_agent_in_a_neighbouring_cell_beats_one_in_the_home_cell() -> None:
    home = cell_of(*HOME, RES)
    origin = None
    for start in range(0, 360, 5):
        point = destination(*HOME, 500, start)
        if cell_of(*point, RES) != home:
            continue
        near = [destination(*point, 300, b) for b in range(0, 360, 10)]
        near = [p for p in near if cell_of(*p, RES) != home]
        far = [destination(*point, 900, b) for b in range(0, 360, 10)]
        far = [p for p in far if cell_of(*p, RES) == home]
        if near and far:
            origin, near_spot, far_spot = point, near[0], far[0]
            break
    assert origin is not None
    fake = FakeRegions()
    fake.place(aid(1), *far_spot)
    fake.place(aid(2), *near_spot)
    searcher = RegionSearcher(fake.read_regions, resolution=RES)

    found = await searcher.search(Search(1, *origin, rings=1, k=5))

    assert [c.agent_id for c in found] == [aid(2), aid(1)]
    assert found[0].distance_m == pytest.approx(300, abs=2)


async def test_the_search_asks_the_whole_disk_of_its_rings_in_one_round() -> None:
    fake = FakeRegions()
    centre = cell_of(*HOME, RES)
    two_out = ring(centre, 2)[0]
    fake.place(aid(7), *cell_center(two_out))
    searcher = RegionSearcher(fake.read_regions, resolution=RES)

    assert await searcher.search(search(1)) == ()
    assert fake.cells_asked() == set(k_ring(centre, 1))
    assert len(fake.asked) == 7

    fake.asked.clear()
    found = await searcher.search(search(2))
    assert [c.agent_id for c in found] == [aid(7)]
    assert fake.cells_asked() == set(k_ring(centre, 2))
    assert len(fake.asked) == 19


async def test_the_search_skips_excluded_agents_and_bounds_the_answer() -> None:
    fake = FakeRegions()
    for n in range(1, 6):
        fake.place(aid(n), *destination(*HOME, 100 * n, 90))
    searcher = RegionSearcher(fake.read_regions, resolution=RES)

    found = await searcher.search(search(2, k=2, exclude=frozenset({aid(1), aid(3)})))

    assert [c.agent_id for c in found] == [aid(2), aid(4)]
    assert found[0].distance_m == pytest.approx(200, abs=1)
    queries = [m for _, _, m in fake.asked]
    assert all(isinstance(q, QueryNearest) and q.exclude == {aid(1), aid(3)} for q in queries)


async def test_a_region_that_refuses_does_not_hide_the_others() -> None:
    fake = FakeRegions()
    centre = cell_of(*HOME, RES)
    assert fake.place(aid(1), *HOME) == centre
    fake.place(aid(2), *cell_center(ring(centre, 1)[0]))

    async def home_refuses(items: Sequence[tuple[EntityKind, str, object]]) -> list[object]:
        answers = await fake.read_regions(items)
        return [
            InvalidMessage("bad query") if i[1] == centre else a
            for i, a in zip(items, answers, strict=True)
        ]

    found = await RegionSearcher(home_refuses, resolution=RES).search(search(1))
    assert [c.agent_id for c in found] == [aid(2)]


async def test_with_nobody_near_the_search_widens_ring_by_ring_then_one_more() -> None:
    fake = FakeRegions()
    centre = cell_of(*HOME, RES)
    fake.place(aid(7), *cell_center(ring(centre, 3)[0]))
    searcher = RegionSearcher(fake.read_regions, resolution=RES)

    found = await searcher.search(Search(1, *HOME, rings=1, k=5, want=1, max_rings=5))

    assert [c.agent_id for c in found] == [aid(7)]
    # Disk of 1, then rings 2 and 3 (the hit), then ring 4 for a nearer one; not 5.
    assert fake.cells_asked() == set(k_ring(centre, 4))

    fake.asked.clear()
    assert await searcher.search(Search(2, *HOME, rings=1, k=5, want=1, max_rings=2)) == ()
    assert fake.cells_asked() == set(k_ring(centre, 2))
    fake.asked.clear()
    enough = await searcher.search(Search(3, *HOME, rings=1, k=5, want=2, max_rings=5))
    assert [c.agent_id for c in enough] == [aid(7)]  # only one exists: widened to the top
    assert fake.cells_asked() == set(k_ring(centre, 5))
