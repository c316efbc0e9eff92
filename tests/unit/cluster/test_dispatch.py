"""Nearest-agent dispatch without Ray: ranking, ring widening and the offer."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from actors import region
from actors.alert_messages import OfferMade
from actors.alert_state import AlertState, AlertStatus, AlertType
from actors.effects import EntityKind, Reply
from actors.errors import ActorError, Conflict
from actors.region import AgentPresence, Candidate, QueryNearest, RegionState
from cluster.dispatch import nearest_candidates, offer_nearest, rank
from geo.cells import EARTH_RADIUS_M, cell_center, cell_of, k_ring, ring

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RES = 7
HOME = (-33.9249, 18.4241)  # Cape Town


def aid(n: int) -> UUID:
    return UUID(int=n)


def cand(n: int, distance: float, *, age_s: float = 0) -> Candidate:
    return Candidate(aid(n), distance, 0.0, 0.0, NOW - timedelta(seconds=age_s))


def destination(
    lat: float, lon: float, distance_m: float, bearing_deg: float
) -> tuple[float, float]:
    d = distance_m / EARTH_RADIUS_M
    theta = math.radians(bearing_deg)
    phi1, lam1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(math.sin(phi1) * math.cos(d) + math.cos(phi1) * math.sin(d) * math.cos(theta))
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(d) * math.cos(phi1),
        math.cos(d) - math.sin(phi1) * math.sin(phi2),
    )
    return math.degrees(phi2), math.degrees(lam2)


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


# --- ring search with a fake client --------------------------------------------------


@dataclass
class FakeEntities:
    """Answers region queries from in-memory RegionStates and records every ask."""

    regions: dict[str, RegionState] = field(default_factory=dict)
    asked: list[tuple[EntityKind, str, object]] = field(default_factory=list)
    alert_error: Exception | None = None

    def place(self, agent: UUID, lat: float, lon: float) -> str:
        cell = cell_of(lat, lon, RES)
        state = self.regions.get(cell, RegionState.new(cell))
        state, _ = region.decide(state, AgentPresence(agent, lat, lon, True, NOW), NOW)
        self.regions[cell] = state
        return cell

    async def ask(self, kind: EntityKind, entity_id: str, message: object, **_: Any) -> object:
        self.asked.append((kind, entity_id, message))
        if kind is EntityKind.REGION:
            assert isinstance(message, QueryNearest)
            state = self.regions.get(entity_id, RegionState.new(entity_id))
            _, effects = region.decide(state, message, NOW)
            reply = effects[-1]
            assert isinstance(reply, Reply)
            return reply.value
        if self.alert_error is not None:
            raise self.alert_error
        return None

    async def ask_many(self, items: list[tuple[EntityKind, str, object]], **_: Any) -> list[object]:
        results: list[object] = []
        for kind, entity_id, message in items:
            try:
                results.append(await self.ask(kind, entity_id, message))
            except ActorError as exc:
                results.append(exc)
        return results

    def cells_asked(self) -> set[str]:
        return {e for k, e, _ in self.asked if k is EntityKind.REGION}


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
    fake = FakeEntities()
    fake.place(aid(1), *far_spot)
    fake.place(aid(2), *near_spot)

    found = await nearest_candidates(fake, *origin, resolution=RES, max_rings=3)  # type: ignore[arg-type]

    assert [c.agent_id for c in found] == [aid(2), aid(1)]
    assert found[0].distance_m == pytest.approx(300, abs=2)
    # Ring 0 had a hit, so ring 1 was asked too, and nothing further.
    assert fake.cells_asked() == set(k_ring(cell_of(*origin, RES), 1))


async def test_the_search_widens_ring_by_ring_up_to_max_rings() -> None:
    fake = FakeEntities()
    centre = cell_of(*HOME, RES)
    two_out = ring(centre, 2)[0]
    fake.place(aid(7), *cell_center(two_out))

    assert await nearest_candidates(fake, *HOME, resolution=RES, max_rings=1) == ()  # type: ignore[arg-type]
    assert fake.cells_asked() == set(k_ring(centre, 1))

    fake.asked.clear()
    found = await nearest_candidates(fake, *HOME, resolution=RES, max_rings=4)  # type: ignore[arg-type]
    assert [c.agent_id for c in found] == [aid(7)]
    assert fake.cells_asked() == set(k_ring(centre, 3))  # hit at ring 2, plus one ring


def alert_state(**changes: Any) -> AlertState:
    base = AlertState(
        id=uuid4(),
        user_id=uuid4(),
        alert_type=AlertType.PANIC,
        status=AlertStatus.DISPATCHING,
        latitude=HOME[0],
        longitude=HOME[1],
        accuracy_m=None,
        description=None,
        silent=False,
        created_at=NOW,
        updated_at=NOW,
    )
    return replace(base, **changes)


async def test_offer_nearest_offers_to_the_best_agent_not_declined() -> None:
    fake = FakeEntities()
    fake.place(aid(1), *destination(*HOME, 100, 90))
    fake.place(aid(2), *destination(*HOME, 200, 90))
    state = alert_state(declined_by=(aid(1),))

    chosen = await offer_nearest(fake, state, resolution=RES)  # type: ignore[arg-type]

    assert chosen == aid(2)
    kind, entity_id, message = fake.asked[-1]
    assert (kind, entity_id) == (EntityKind.ALERT, str(state.id))
    assert isinstance(message, OfferMade)
    assert message.agent_id == aid(2)
    assert message.distance_m == pytest.approx(200, abs=1)
    queries = [m for k, _, m in fake.asked if k is EntityKind.REGION]
    assert all(isinstance(q, QueryNearest) and aid(1) in q.exclude for q in queries)


async def test_offer_nearest_is_none_when_nobody_is_near_or_the_alert_refuses() -> None:
    fake = FakeEntities()
    assert await offer_nearest(fake, alert_state(), resolution=RES, max_rings=1) is None  # type: ignore[arg-type]
    assert all(k is EntityKind.REGION for k, _, _ in fake.asked)

    fake.place(aid(1), *destination(*HOME, 100, 0))
    fake.alert_error = Conflict("cannot offer alert: it is 'cancelled'")
    assert await offer_nearest(fake, alert_state(), resolution=RES) is None  # type: ignore[arg-type]
