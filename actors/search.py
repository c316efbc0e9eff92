"""Searching for available agents: the effect an entity asks it with, the message
the answer comes back as, and the pure merge of the regions' answers.

An alert never talks to region entities itself. Its ``decide`` returns a
:class:`Search` effect; after the transition commits, the runtime hands the
search to its :class:`~actors.ports.Searcher` (``cluster.dispatch`` asks the
region entities of the H3 cells around the point, on whichever shards own
them) and delivers the merged answer back to the same entity as a
:class:`SearchResult` carrying the search's ``tag``. The entity ignores a
result whose tag is not its latest search, so a slow answer never overrides
a newer one.

Searches are best-effort: an answer lost with a crashed shard is made up for
by the entity's own durable timer, which searches again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Candidate:
    """One available agent found near a point, at ``distance_m`` from it."""

    agent_id: UUID
    distance_m: float
    latitude: float
    longitude: float
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Search:
    """Effect: find up to ``k`` available agents nearest to the point.

    ``rings`` is the search radius in H3 grid rings around the point's region
    cell (0: that cell only). While fewer than ``want`` agents are found the
    search widens ring by ring up to ``max_rings`` (and then asks one ring
    more, where a nearer agent than the ones just found may be). Agents in
    ``exclude`` are left out. The answer comes back to the entity as
    ``SearchResult(tag, ...)``.
    """

    tag: int
    latitude: float
    longitude: float
    rings: int
    k: int
    exclude: frozenset[UUID] = frozenset()
    want: int = 1
    max_rings: int | None = None


@dataclass(frozen=True, slots=True)
class SearchResult:
    """Message: the answer to the entity's ``Search`` with the same ``tag``, nearest first."""

    tag: int
    candidates: tuple[Candidate, ...]


def rank(
    found: Iterable[Candidate], exclude: Collection[UUID] = (), k: int | None = None
) -> tuple[Candidate, ...]:
    """Merge answers from several cells: nearest first, one entry per agent.

    An agent listed in two cells (it just moved and the old cell has not
    heard yet) keeps its most recently confirmed position. Ties in distance
    are broken by agent id, as ``RegionState.nearest`` does, so the answer is
    deterministic. Agents in ``exclude`` are dropped; ``k`` bounds the length.
    """
    latest: dict[UUID, Candidate] = {}
    for candidate in found:
        if candidate.agent_id in exclude:
            continue
        seen = latest.get(candidate.agent_id)
        if seen is None or candidate.updated_at > seen.updated_at:
            latest[candidate.agent_id] = candidate
    ranked = sorted(latest.values(), key=lambda c: (c.distance_m, c.agent_id))
    return tuple(ranked if k is None else ranked[:k])
