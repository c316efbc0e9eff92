"""The region state machine: one H3 cell's zones and its available agents.

A region entity is addressed by its H3 cell index (string) at the resolution
the deployment configures (``AgentPolicy.region_resolution``). The runtime
starts a region it has no snapshot for from :meth:`RegionState.new`.

It holds two kinds of state with different durability:

* **Durable**: the ids of the live zones whose coverage includes the cell
  (``geo.coverage``: the zone grown by the largest fix accuracy used), as of
  zone revision ``zones_revision``. Only the shard's zone book
  (``actors.zone_book``) writes them, with :class:`ZonesChanged`: the cell's
  whole set as of a revision. A set older than the one held is ignored (a
  late or repeated push never undoes a newer one); a new set bumps
  ``version`` and returns ``Persist``; the same set under a newer revision
  only advances ``zones_revision`` in memory (nothing durable changed).
  :class:`QueryZones` reads the set. Whether a subject is inside a zone is
  not kept here but in the subject's own entity (``actors.subject``): that
  state must follow the subject from cell to cell.
* **Soft**: the index of available agents in the cell (id → position and
  when it was last confirmed), fed by agent entities through
  :class:`AgentPresence` / :class:`AgentLeft`. It is rebuilt by the agents'
  own refreshes, so changing it neither bumps ``version`` nor persists; a
  snapshot carries whatever the index held when it was taken, and entries not
  refreshed within ``RegionPolicy.presence_ttl`` are ignored by queries.

Presence messages carry the sender's time ``at``; an entry is never replaced
or removed by a message older than it (duplicated or reordered sends are
harmless). Queries (:class:`QueryNearest`, :class:`QueryZones`) change
nothing, so ``EntityHost.read`` answers them from memory.

Snapshots written before zone revisions (with subject-in-zone ``subjects``
and no ``zones_revision``) still load: the subjects are dropped and the
revision reads as 0.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeAlias
from uuid import UUID

from actors import codec
from actors.effects import EntityKind, Persist, Reply, Transition
from actors.errors import InvalidMessage, UnknownMessage
from actors.search import Candidate
from geo.cells import cell_of, haversine_m, is_valid_cell, is_valid_point, resolution_of


@dataclass(frozen=True, slots=True)
class AgentPosition:
    """Where an available agent was at ``updated_at`` (the agent entity's clock)."""

    latitude: float
    longitude: float
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RegionState:
    """One cell's zones (as of zone revision ``zones_revision``) and available agents.

    Mapping fields are never mutated; ``decide`` builds new ones.
    """

    cell: str
    zone_ids: frozenset[UUID] = frozenset()
    zones_revision: int = 0
    agents: Mapping[UUID, AgentPosition] = field(default_factory=dict)
    version: int = 0

    @classmethod
    def new(cls, cell: str) -> RegionState:
        """An empty region for a valid H3 cell (``geo.errors.InvalidCell`` otherwise)."""
        resolution_of(cell)
        return cls(cell=cell)

    @property
    def resolution(self) -> int:
        return resolution_of(self.cell)

    def nearest(
        self,
        latitude: float,
        longitude: float,
        k: int,
        exclude: Collection[UUID] = (),
        *,
        fresh_since: datetime | None = None,
        only: Collection[UUID] | None = None,
    ) -> tuple[Candidate, ...]:
        """Up to ``k`` indexed agents nearest to the point, nearest first.

        Ranked by great-circle distance, ties broken by agent id so the answer
        is deterministic. Agents in ``exclude``, agents not in ``only`` (when
        given: a service area's agents) and entries last confirmed before
        ``fresh_since`` are skipped.
        """
        if k <= 0 or (only is not None and not only):
            return ()
        # Ranked as bare (distance, id) pairs; a Candidate is built for the k
        # nearest only (a region holds thousands of agents, a search wants a few).
        ranked = heapq.nsmallest(
            k,
            (
                (haversine_m(latitude, longitude, pos.latitude, pos.longitude), agent_id)
                for agent_id, pos in self.agents.items()
                if agent_id not in exclude
                and (only is None or agent_id in only)
                and (fresh_since is None or pos.updated_at >= fresh_since)
            ),
        )
        found = []
        for distance_m, agent_id in ranked:
            pos = self.agents[agent_id]
            found.append(
                Candidate(
                    agent_id=agent_id,
                    distance_m=distance_m,
                    latitude=pos.latitude,
                    longitude=pos.longitude,
                    updated_at=pos.updated_at,
                )
            )
        return tuple(found)

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-safe dict with sorted keys; ``from_snapshot(s.to_snapshot()) == s``."""
        return {
            **codec.header("region"),
            "cell": self.cell,
            "zone_ids": sorted(str(z) for z in self.zone_ids),
            "zones_revision": self.zones_revision,
            "agents": {
                str(agent_id): {
                    "latitude": pos.latitude,
                    "longitude": pos.longitude,
                    "updated_at": codec.iso(pos.updated_at),
                }
                for agent_id, pos in sorted(self.agents.items())
            },
            "version": self.version,
        }

    @classmethod
    def from_snapshot(cls, data: Mapping[str, Any]) -> RegionState:
        """The state of a snapshot; older ones (``subjects``, no ``zones_revision``) load too."""
        codec.check_header(data, "region")
        f = codec.field

        def cell(value: Any) -> str:
            if not isinstance(value, str) or not is_valid_cell(value):
                raise ValueError(f"not an H3 cell: {value!r}")
            return value

        def agents(value: Any) -> dict[UUID, AgentPosition]:
            return {
                codec.parse_uuid(agent_id): AgentPosition(
                    latitude=f(pos, "latitude", codec.parse_float),
                    longitude=f(pos, "longitude", codec.parse_float),
                    updated_at=f(pos, "updated_at", codec.parse_dt),
                )
                for agent_id, pos in value.items()
            }

        return cls(
            cell=f(data, "cell", cell),
            zone_ids=f(data, "zone_ids", lambda v: frozenset(codec.parse_uuid(z) for z in v)),
            zones_revision=codec.optional_field(data, "zones_revision", codec.parse_int, 0),
            agents=f(data, "agents", agents),
            version=f(data, "version", codec.parse_int),
        )


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentPresence:
    """An agent's position and availability, as of ``at``; ``available=False`` removes it."""

    agent_id: UUID
    latitude: float
    longitude: float
    available: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentLeft:
    """The agent left this cell or stopped being available (as of ``at``, if given)."""

    agent_id: UUID
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ZonesChanged:
    """The full set of live zone ids whose coverage includes this cell, as of ``revision``."""

    zone_ids: frozenset[UUID]
    revision: int


@dataclass(frozen=True, slots=True)
class QueryZones:
    """Ask for the cell's zone ids; the Reply is ``frozenset[UUID]``. Read-only."""


@dataclass(frozen=True, slots=True)
class QueryNearest:
    """Ask for up to ``k`` nearest available agents; the Reply is ``tuple[Candidate, ...]``.

    ``only``, when given, names the only agents that may be returned (the
    agents of the service area the point is in).
    """

    latitude: float
    longitude: float
    k: int
    exclude: frozenset[UUID] = frozenset()
    only: frozenset[UUID] | None = None


RegionMessage: TypeAlias = AgentPresence | AgentLeft | ZonesChanged | QueryNearest | QueryZones


@dataclass(frozen=True, slots=True)
class RegionPolicy:
    """``presence_ttl``: ignore index entries not refreshed for this long (None: never).

    Keep it comfortably above ``AgentPolicy.heartbeat_timeout``: listed agents
    refresh their presence with every sign of life.
    """

    presence_ttl: timedelta | None = timedelta(seconds=180)


DEFAULT_POLICY = RegionPolicy()


def decide(
    state: RegionState,
    msg: RegionMessage,
    now: datetime,
    policy: RegionPolicy = DEFAULT_POLICY,
) -> Transition[RegionState]:
    """Apply ``msg``; only a :class:`ZonesChanged` with a new set persists (see the module)."""
    codec.check_now(now)
    if isinstance(msg, AgentPresence):
        return _presence(state, msg)
    if isinstance(msg, AgentLeft):
        return _remove(state, msg.agent_id, msg.at)
    if isinstance(msg, ZonesChanged):
        return _zones(state, msg)
    if isinstance(msg, QueryNearest):
        if not is_valid_point(msg.latitude, msg.longitude):
            raise InvalidMessage(f"invalid query point ({msg.latitude!r}, {msg.longitude!r})")
        if msg.k < 0:
            raise InvalidMessage(f"k must be >= 0, got {msg.k!r}")
        fresh_since = None if policy.presence_ttl is None else now - policy.presence_ttl
        found = state.nearest(
            msg.latitude, msg.longitude, msg.k, msg.exclude, fresh_since=fresh_since, only=msg.only
        )
        return state, (Reply(found),)
    if isinstance(msg, QueryZones):
        return state, (Reply(state.zone_ids),)
    raise UnknownMessage("region", type(msg).__name__)


def _presence(state: RegionState, msg: AgentPresence) -> Transition[RegionState]:
    if not msg.available:
        return _remove(state, msg.agent_id, msg.at)
    if not is_valid_point(msg.latitude, msg.longitude):
        raise InvalidMessage(f"invalid agent position ({msg.latitude!r}, {msg.longitude!r})")
    if cell_of(msg.latitude, msg.longitude, state.resolution) != state.cell:
        raise InvalidMessage(
            f"agent {msg.agent_id} at ({msg.latitude}, {msg.longitude}) is not in cell {state.cell}"
        )
    current = state.agents.get(msg.agent_id)
    position = AgentPosition(float(msg.latitude), float(msg.longitude), msg.at)
    if current is not None and (current.updated_at > msg.at or current == position):
        return state, (Reply(state),)
    new = replace(state, agents={**state.agents, msg.agent_id: position})
    return new, (Reply(new),)


def _remove(state: RegionState, agent_id: UUID, at: datetime | None) -> Transition[RegionState]:
    current = state.agents.get(agent_id)
    if current is None or (at is not None and current.updated_at > at):
        return state, (Reply(state),)
    agents = {a: pos for a, pos in state.agents.items() if a != agent_id}
    new = replace(state, agents=agents)
    return new, (Reply(new),)


def _zones(state: RegionState, msg: ZonesChanged) -> Transition[RegionState]:
    if isinstance(msg.revision, bool) or not isinstance(msg.revision, int) or msg.revision < 0:
        raise InvalidMessage(f"zone revision must be an int >= 0, got {msg.revision!r}")
    if msg.revision < state.zones_revision:
        return state, (Reply(state),)  # older than what the region holds
    zone_ids = frozenset(msg.zone_ids)
    if zone_ids == state.zone_ids:
        if msg.revision == state.zones_revision:
            return state, (Reply(state),)
        same = replace(state, zones_revision=msg.revision)  # nothing durable changed
        return same, (Reply(same),)
    new = replace(state, zone_ids=zone_ids, zones_revision=msg.revision, version=state.version + 1)
    persist = Persist(EntityKind.REGION, new.cell, new.version, new.to_snapshot())
    return new, (persist, Reply(new))
