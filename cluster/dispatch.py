"""Minimal nearest-agent dispatch: offer a new alert to the nearest available agent.

:func:`offer_nearest` asks the region entities around the alert (its H3 cell,
then widening rings of neighbours) for their nearest available agents, picks
the truly nearest one across every cell asked, and asks the alert entity to
offer itself to that agent (``OfferMade``). The ranking and merging is the
pure :func:`rank` so it is tested without Ray.

Why one more ring after the first hit: an agent in a neighbouring cell can be
nearer than one in the alert's own cell (the alert near its cell's edge), so
once some ring yields candidates the next ring is asked too before choosing.
That covers the cases that matter (a hit in ring r is within about r + 1
cell widths; a cell two rings further out is at least r + 1 widths away);
it is not an exact bound, and issue 5's bench measures the truly-nearest share.

Guarantees: safe to retry (``OfferMade`` is idempotent per agent, and an
agent that declined is excluded); never raises for domain outcomes (no agent
found, the alert no longer offerable): it returns None and logs. Escalation,
re-offers and offer-to-K policies are issue 5's.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from uuid import UUID

from actors.alert_messages import OfferMade
from actors.alert_state import AlertState
from actors.effects import EntityKind
from actors.errors import ActorError
from actors.region import Candidate, QueryNearest
from cluster.client import EntityClient
from cluster.errors import ClusterError
from geo.cells import cell_of, ring

log = logging.getLogger(__name__)

#: Rings of neighbours searched beyond the alert's cell (2 at res 7: ~7 km).
DEFAULT_MAX_RINGS = 2
#: Candidates asked of each region cell.
DEFAULT_K = 5


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


async def _ask_ring(
    client: EntityClient, cells: Iterable[str], query: QueryNearest
) -> list[Candidate]:
    # One call per shard for the whole ring, not one per cell.
    answers = await client.ask_many([(EntityKind.REGION, cell, query) for cell in cells])
    found: list[Candidate] = []
    for answer in answers:
        if isinstance(answer, tuple):
            found.extend(c for c in answer if isinstance(c, Candidate))
    return found


async def nearest_candidates(
    client: EntityClient,
    latitude: float,
    longitude: float,
    *,
    resolution: int,
    max_rings: int = DEFAULT_MAX_RINGS,
    k: int = DEFAULT_K,
    exclude: Collection[UUID] = (),
) -> tuple[Candidate, ...]:
    """Up to ``k`` available agents nearest to the point, nearest first.

    Searches ring 0 (the point's cell), 1, ... up to ``max_rings``; after the
    first ring that yields a candidate, one more ring (see the module note).
    """
    if max_rings < 0 or k < 1:
        raise ValueError("max_rings must be >= 0 and k >= 1")
    centre = cell_of(latitude, longitude, resolution)
    query = QueryNearest(latitude, longitude, k, frozenset(exclude))
    found: list[Candidate] = []
    hit_at: int | None = None
    distance = 0
    while distance <= max_rings and (hit_at is None or distance <= hit_at + 1):
        found.extend(await _ask_ring(client, ring(centre, distance), query))
        if hit_at is None and found:
            hit_at = distance
        distance += 1
    return rank(found, exclude, k)


async def offer_nearest(
    client: EntityClient,
    alert_state: AlertState,
    *,
    resolution: int,
    max_rings: int = DEFAULT_MAX_RINGS,
    k: int = DEFAULT_K,
) -> UUID | None:
    """Offer the alert to the nearest available agent; that agent's id, or None.

    Agents that declined the alert or already hold an offer for it are skipped.
    Returns None when nobody is available within ``max_rings`` or the alert
    refused the offer (e.g. it was cancelled meanwhile). Cluster errors
    (timeouts, shards away) propagate: the caller decides whether to retry.
    """
    exclude = {*alert_state.declined_by, *(o.agent_id for o in alert_state.offered_to)}
    candidates = await nearest_candidates(
        client,
        alert_state.latitude,
        alert_state.longitude,
        resolution=resolution,
        max_rings=max_rings,
        k=k,
        exclude=exclude,
    )
    if not candidates:
        log.info("alert %s: no available agent within %d rings", alert_state.id, max_rings)
        return None
    best = candidates[0]
    try:
        await client.ask(
            EntityKind.ALERT,
            str(alert_state.id),
            OfferMade(agent_id=best.agent_id, distance_m=round(best.distance_m, 1)),
        )
    except ActorError as exc:
        log.info("alert %s: offer to agent %s refused: %s", alert_state.id, best.agent_id, exc)
        return None
    log.info(
        "alert %s offered to agent %s at %.0f m", alert_state.id, best.agent_id, best.distance_m
    )
    return best.agent_id


async def dispatch_in_background(
    client: EntityClient, alert_state: AlertState, *, resolution: int
) -> None:
    """:func:`offer_nearest` for a task nobody awaits: logs every failure, raises none."""
    try:
        await offer_nearest(client, alert_state, resolution=resolution)
    except (ClusterError, ActorError):
        log.warning("alert %s: dispatch failed", alert_state.id, exc_info=True)
    except Exception:
        log.exception("alert %s: dispatch crashed", alert_state.id)
