"""Dispatch on the cluster side: the searcher that carries out an alert's
``Search`` for available agents (the accept of an offer is the agent
entity's own ``TakeOffer``: ``actors.agent``).

An alert's ``decide`` asks for agents near it with a ``Search`` effect
(``actors.search``); the shard hosting the alert hands it to a
:class:`RegionSearcher`, which asks every region entity of the filled disk
of H3 cells within ``rings`` of the alert's cell for its nearest available
agents, merges the answers with ``actors.search.rank`` and returns them to
the alert as a ``SearchResult``. The alert then makes its offers itself.

The whole disk is asked at once (19 cells for 2 rings), not ring by ring:
a ring-by-ring walk costs a round of calls per ring, and an agent in a
neighbouring cell can be nearer than one in the alert's own cell anyway, so
a ring with a hit never ends the search early. The asking is one call per
shard (``ShardActor.read_regions``): the searching shard reads its own
regions directly and each peer shard's in one Ray call.

A search is a read-only query answered from each region's state in memory,
outside its mailbox (``EntityHost.read``): the agent index is soft state,
kept in memory by the agents' own refreshes, so a region not in memory has
no available agents and is not activated just to say so. Searching a place
without agents costs a dictionary lookup per cell.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from uuid import UUID

from actors.effects import EntityKind
from actors.region import QueryNearest
from actors.search import Candidate, Search, rank
from actors.zone_book import ZoneBook
from actors.zone_rules import ZoneKind
from geo.cells import cell_of, k_ring, ring
from geo.fences import contains

Item = tuple[EntityKind, str, object]
#: Read each item's entity; each reply (None for an entity not in memory, or
#: the entity's ActorError) in item order.
ReadRegions = Callable[[Sequence[Item]], Awaitable[Sequence[object]]]


#: The agents allowed to be offered an alert raised at a point (None: any agent).
AllowedAgents = Callable[[float, float], "frozenset[UUID] | None"]


def service_area_agents(
    book: ZoneBook, latitude: float, longitude: float, resolution: int
) -> frozenset[UUID] | None:
    """Who may be offered an alert at the point, by the service areas around it.

    The union of the ``agent_ids`` of every live ``service_area`` zone that
    contains the point (an alert in two overlapping areas may go to the
    agents of either); None when no such zone contains it.
    """
    allowed: set[UUID] | None = None
    for zone_id in book.zone_ids_in(cell_of(latitude, longitude, resolution)):
        live = book.get(zone_id)
        if (
            live is not None
            and live.kind is ZoneKind.SERVICE_AREA
            and live.rules.agent_ids is not None
            and contains(live.zone, latitude, longitude)
        ):
            allowed = (allowed or set()) | live.rules.agent_ids
    return None if allowed is None else frozenset(allowed)


class RegionSearcher:
    """A ``actors.ports.Searcher`` over region entities at one H3 resolution.

    With ``allowed``, an alert raised inside a service area is offered only
    to that area's agents (``service_area_agents``): the regions skip the
    others, so the nearest *allowed* agents are found, not the nearest few
    filtered afterwards.
    """

    def __init__(
        self, read_regions: ReadRegions, *, resolution: int, allowed: AllowedAgents | None = None
    ) -> None:
        self._read = read_regions
        self._resolution = resolution
        self._allowed = allowed

    def cells(self, query: Search) -> tuple[str, ...]:
        """The region cells a search asks: the filled disk around the point's cell."""
        return k_ring(cell_of(query.latitude, query.longitude, self._resolution), query.rings)

    async def search(self, query: Search) -> tuple[Candidate, ...]:
        """Up to ``query.k`` available agents nearest to the point, nearest first."""
        only = None if self._allowed is None else self._allowed(query.latitude, query.longitude)
        ask = QueryNearest(query.latitude, query.longitude, query.k, query.exclude, only)
        centre = cell_of(query.latitude, query.longitude, self._resolution)
        found = await self._ask_cells(k_ring(centre, query.rings), ask)
        top = max(query.rings, query.max_rings or 0)
        rings = query.rings
        while len(rank(found, query.exclude)) < query.want and rings < top:
            rings += 1
            found += await self._ask_cells(ring(centre, rings), ask)
        if rings > query.rings and rings < top and len(rank(found, query.exclude)) >= query.want:
            # Widened to a hit in ring r: an agent in ring r + 1 may be nearer.
            found += await self._ask_cells(ring(centre, rings + 1), ask)
        return rank(found, query.exclude, query.k)

    async def _ask_cells(self, cells: Sequence[str], ask: QueryNearest) -> list[Candidate]:
        answers = await self._read([(EntityKind.REGION, cell, ask) for cell in cells])
        return [
            candidate
            for answer in answers
            if isinstance(answer, tuple)
            for candidate in answer
            if isinstance(candidate, Candidate)
        ]
