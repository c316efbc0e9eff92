"""The reads of sockets being set up, made together when many come at once.

Each socket that (re)connects checks that its login session is active
(Redis), and an agent's socket reads the open alerts it must be told again
(``gateway.ws.resync``) and its vetting when it goes on duty
(``gateway.vetting``; PostgreSQL). One round trip each was the largest
single cost of a reconnect storm in the gateway: about a sixth of its CPU
in asyncpg for 5,000 sockets, more in PostgreSQL, and a tenth in the
session checks. These wrappers send them through
:class:`cluster.batching.Coalescer`: a read with nothing in flight goes at
once (an idle gateway waits for nothing), and the reads asked while one is
in flight go together in the next round trip.

A failed round trip fails every read that went with it; each socket answers
as it would to its own failure (a 1013 close or an ``error`` frame).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from cluster.batching import Coalescer
from gateway.ports import AgentVetting, OpenAlerts, Sessions

#: The most keys one round trip reads.
MAX_BATCH = 256

_K = TypeVar("_K")
_V = TypeVar("_V")


class _Reads(Generic[_K, _V]):
    """One value per key, read with the others asked meanwhile."""

    def __init__(
        self, read_many: Callable[[Sequence[_K]], Awaitable[Sequence[_V]]], max_batch: int
    ) -> None:
        async def send(_destination: int, keys: Sequence[Any]) -> Sequence[object]:
            return await read_many(keys)

        self._coalescer = Coalescer(send, max_batch)

    async def read(self, key: _K) -> _V:
        (value,) = await self._coalescer.ask(0, [key])
        return cast(_V, value)


class CoalescedOpenAlerts:
    """``gateway.ws.resync.OpenAlertSource`` with agents' reads made together."""

    def __init__(self, source: Callable[[], OpenAlerts], max_batch: int = MAX_BATCH) -> None:
        self._source = source
        self._agents: _Reads[UUID, Sequence[Mapping[str, Any]]] = _Reads(
            lambda ids: source().for_agents(ids), max_batch
        )

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        return await self._agents.read(agent_id)

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        # Users' sockets are fewer and read through another index: one each.
        return await self._source().for_user(user_id)


class CoalescedVetting:
    """``gateway.ports.VettingLookup`` with agents' reads made together."""

    def __init__(self, source: Callable[[], AgentVetting], max_batch: int = MAX_BATCH) -> None:
        self._agents: _Reads[UUID, str | None] = _Reads(
            lambda ids: source().vettings_of(ids), max_batch
        )

    async def vetting_of(self, agent_id: UUID) -> str | None:
        return await self._agents.read(agent_id)


class CoalescedSessionCheck:
    """``gateway.ports.SessionCheck`` with sockets' checks made together."""

    def __init__(self, source: Callable[[], Sessions], max_batch: int = MAX_BATCH) -> None:
        self._sessions: _Reads[tuple[str, UUID, str], bool] = _Reads(
            lambda keys: source().are_active(keys), max_batch
        )

    async def is_active(self, role: str, account_id: UUID, session_id: str) -> bool:
        return await self._sessions.read((role, account_id, session_id))
