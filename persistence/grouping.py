"""Calls that queue behind one in flight go together: the pump a shard's group
commit (``persistence.outbox.group_commit``), group load
(``persistence.stores.group_load``) and group push (``persistence.pushes``) share.

A call that finds none in flight is carried out at the next turn of the event
loop, with every call made by then; calls made meanwhile wait for it, then go
together. What "together" means (one statement, one query per kind, one
pipeline), and what each caller is answered, is the owner's ``carry_out``;
how many waiting calls one group takes is its ``take``. Only when the pump is
stopped (cancelled at an await: the event loop is closing) can a call be left
unanswered by ``carry_out``; it then fails with ``ConnectionError``, so nobody
waits for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: A waiting call: its item, and the future its caller awaits.
Waiting = tuple[T, asyncio.Future[R]]


def fail_each(group: Sequence[Waiting[T, R]], error: BaseException) -> None:
    """Fail every call of ``group`` with ``error`` (one carried out together
    failed; a caller cancelled meanwhile is left as it is)."""
    for _item, future in group:
        if not future.done():
            future.set_exception(error)


def at_most(count: int) -> Callable[[Sequence[Waiting[T, R]]], int]:
    """A ``take`` of up to ``count`` calls a group."""
    if count < 1:
        raise ValueError("a group must take at least one call")
    return lambda waiting: count


class Grouped(Generic[T, R]):
    """Calls with an item ``T`` and an answer ``R``, carried out in groups.

    ``carry_out(group)`` answers each call of ``group`` (a result or an
    exception); a call it leaves unanswered stays unanswered, so it must not.
    ``take(waiting)`` says how many of the oldest waiting calls the next group
    takes (at least one is always taken).
    """

    def __init__(
        self,
        carry_out: Callable[[list[Waiting[T, R]]], Awaitable[None]],
        *,
        take: Callable[[Sequence[Waiting[T, R]]], int],
        stopped: str,
    ) -> None:
        self._carry_out = carry_out
        self._take = take
        self._stopped = stopped
        self._waiting: list[Waiting[T, R]] = []
        self.pump: asyncio.Task[None] | None = None

    async def call(self, item: T) -> R:
        """Wait for ``item``'s group to be carried out; its answer, or raise its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, future))
        if self.pump is None or self.pump.done():
            self.pump = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        group: list[Waiting[T, R]] = []
        try:
            while self._waiting:
                taken = max(1, self._take(self._waiting))
                group = self._waiting[:taken]
                del self._waiting[:taken]
                await self._carry_out(group)
        finally:
            for _item, future in [*group, *self._waiting]:
                if not future.done():
                    future.set_exception(ConnectionError(self._stopped))
            self._waiting.clear()
