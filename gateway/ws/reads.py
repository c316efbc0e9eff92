"""The reads of sockets being set up, made together when many come at once.

Each agent socket that (re)connects reads the open alerts it must be told
again (``gateway.ws.resync``), and its agent's vetting when it goes on duty
(``gateway.vetting``). One statement each was the largest single cost of a
reconnect storm in the gateway: about a sixth of its CPU in asyncpg for
5,000 sockets, and more in PostgreSQL. These wrappers send them through
:class:`cluster.batching.Coalescer`: a read with nothing in flight goes at
once (an idle gateway waits for nothing), and the reads asked while one is
in flight go together in the next statement.

A failed statement fails every read that went with it; each socket answers
as it would to its own failure (an ``error`` frame; it resyncs on reconnect).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from cluster.batching import Coalescer
from gateway.ports import AgentVetting, OpenAlerts

#: The most agents one statement reads.
MAX_BATCH = 256

_V = TypeVar("_V")


class _Reads(Generic[_V]):
    """One value per agent, read with the others asked meanwhile."""

    def __init__(
        self, read_many: Callable[[Sequence[UUID]], Awaitable[Sequence[_V]]], max_batch: int
    ) -> None:
        async def send(_destination: int, agent_ids: Sequence[Any]) -> Sequence[object]:
            return await read_many(agent_ids)

        self._coalescer = Coalescer(send, max_batch)

    @property
    def statements(self) -> int:
        """Statements sent so far (for tests)."""
        return self._coalescer.calls

    async def read(self, agent_id: UUID) -> _V:
        (value,) = await self._coalescer.ask(0, [agent_id])
        return cast(_V, value)


class CoalescedOpenAlerts:
    """``gateway.ws.resync.OpenAlertSource`` with agents' reads made together."""

    def __init__(self, source: Callable[[], OpenAlerts], max_batch: int = MAX_BATCH) -> None:
        self._source = source
        self._agents = _Reads(lambda ids: source().for_agents(ids), max_batch)

    @property
    def statements(self) -> int:
        return self._agents.statements

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        return await self._agents.read(agent_id)

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        # Users' sockets are fewer and read through another index: one each.
        return await self._source().for_user(user_id)


class CoalescedVetting:
    """``gateway.ports.VettingLookup`` with agents' reads made together."""

    def __init__(self, source: Callable[[], AgentVetting], max_batch: int = MAX_BATCH) -> None:
        self._agents = _Reads(lambda ids: source().vettings_of(ids), max_batch)

    @property
    def statements(self) -> int:
        return self._agents.statements

    async def vetting_of(self, agent_id: UUID) -> str | None:
        return await self._agents.read(agent_id)
