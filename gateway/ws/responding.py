"""Which of a user's alerts an agent is responding to, for relaying the user's fixes.

A user's ``location`` frames go to the alerts of theirs that an agent is
responding to (assigned, en route, on scene), so the agent sees where the
user is. Looking that up per socket per fix would cost a query per fix; per
socket every few seconds, with thousands of users walking, still thousands
of queries a second. :class:`RespondingAlerts` is one per gateway process:
an answer is kept for ``ttl_s`` (so relaying starts at most that late after
an assignment), and the users asked about within ``linger_s`` of each other
are looked up in ONE query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from uuid import UUID

#: ``fetch(user_ids)``: each user's responded-to alert ids (users without any may be absent).
Fetch = Callable[[Sequence[UUID]], Awaitable[Mapping[UUID, Sequence[str]]]]

#: Answers kept at most; past it the cache starts again (hot users come back at once).
_CACHE_MAX = 200_000


class RespondingAlerts:
    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl_s: float = 5.0,
        linger_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._ttl_s = ttl_s
        self._linger_s = linger_s
        self._clock = clock
        self._cache: dict[UUID, tuple[float, tuple[str, ...]]] = {}
        self._pending: dict[UUID, asyncio.Future[tuple[str, ...]]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self.queries = 0

    def known(self, user_id: UUID) -> tuple[str, ...]:
        """The last answer for ``user_id`` without waiting (empty until one came).

        Asks again in the background when the answer is older than the TTL,
        so a socket relaying a fix never waits for the database: relaying
        starts with the first fix after the answer names an alert.
        """
        cached = self._cache.get(user_id)
        if cached is not None and self._clock() - cached[0] < self._ttl_s:
            return cached[1]
        if user_id not in self._pending:
            future = self._ask(user_id)
            future.add_done_callback(_retrieve)
        return () if cached is None else cached[1]

    async def of(self, user_id: UUID) -> tuple[str, ...]:
        """The ids of ``user_id``'s alerts an agent responds to; raises what the query raised."""
        cached = self._cache.get(user_id)
        if cached is not None and self._clock() - cached[0] < self._ttl_s:
            return cached[1]
        future = self._pending.get(user_id) or self._ask(user_id)
        return await asyncio.shield(future)

    def _ask(self, user_id: UUID) -> asyncio.Future[tuple[str, ...]]:
        loop = asyncio.get_running_loop()
        future = self._pending[user_id] = loop.create_future()
        if self._flush is None:
            self._flush = loop.call_later(self._linger_s, self._start_query)
        return future

    def _start_query(self) -> None:
        self._flush = None
        batch, self._pending = self._pending, {}
        task = asyncio.get_running_loop().create_task(self._query(batch))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _query(self, batch: dict[UUID, asyncio.Future[tuple[str, ...]]]) -> None:
        self.queries += 1
        try:
            found = await self._fetch(list(batch))
        except Exception as exc:
            for future in batch.values():
                if not future.done():
                    future.set_exception(exc)
                    future.exception()  # retrieved: a waiter that left does not warn
            return
        now = self._clock()
        if len(self._cache) > _CACHE_MAX:
            self._cache.clear()
        for user_id, future in batch.items():
            ids = tuple(found.get(user_id, ()))
            self._cache[user_id] = (now, ids)
            if not future.done():
                future.set_result(ids)


def _retrieve(future: asyncio.Future[tuple[str, ...]]) -> None:
    """Mark a background lookup's failure as seen (it is logged by nobody: best effort)."""
    if not future.cancelled():
        future.exception()
