"""The demo's shared world: its options, simulated clock, tally, stop signal
and output, for the simulated people (:mod:`panic_alert.demo.people`) and the
driver (:mod:`panic_alert.demo.run`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar
from uuid import UUID

from panic_alert.demo import plan
from panic_alert_client import RateLimited, TransportError

if TYPE_CHECKING:
    from panic_alert.demo.people import Responder, User

T = TypeVar("T")

#: Attempts of a REST call whose connection broke before any answer.
TRANSPORT_ATTEMPTS = 3


@dataclass(frozen=True)
class Options:
    """``panic-alert demo``'s options (see its ``--help``)."""

    url: str
    responders: int
    users: int
    city: plan.City
    speed: float
    duration_s: float | None
    seed: int | None
    tuning: plan.Tuning
    state_path: Path
    admin_email: str | None = None
    admin_password: str | None = None


@dataclass
class Counters:
    connected: int = 0
    on_duty: int = 0
    offers: int = 0
    declined: int = 0
    raised: int = 0
    errors: int = 0
    #: Which statuses each alert was seen in (by its user or its responder).
    seen: dict[UUID, set[str]] = field(default_factory=dict)

    def saw(self, alert_id: UUID, status: str) -> None:
        self.seen.setdefault(alert_id, set()).update(plan.statuses_reached(status))

    def with_status(self, status: str) -> int:
        return sum(1 for statuses in self.seen.values() if status in statuses)


class Demo:
    """The shared world: options, simulated clock, tally, stop signal, output."""

    def __init__(
        self, options: Options, *, err: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options
        self.tuning = options.tuning
        self.err = err
        self.clock = clock
        self.started = clock()
        self.stopping = asyncio.Event()
        self.counters = Counters()
        self.responders: list[Responder] = []
        self.users: list[User] = []

    def sim_now(self) -> float:
        """Simulated seconds since the start."""
        return (self.clock() - self.started) * self.options.speed

    async def pause(self, real_s: float) -> bool:
        """Sleep ``real_s`` real seconds; False when the demo is stopping."""
        try:
            await asyncio.wait_for(self.stopping.wait(), real_s)
        except TimeoutError:
            return True
        return False

    def say(self, line: str) -> None:
        print(f"demo: {line}", file=self.err, flush=True)

    def error(self, who: str, exc: BaseException) -> None:
        self.counters.errors += 1
        for leaf in _leaves(exc):
            self.say(f"error: {who}: {type(leaf).__name__}: {leaf}")

    def tally(self) -> plan.Tally:
        c = self.counters
        return plan.Tally(
            elapsed_s=self.clock() - self.started,
            responders=len(self.responders),
            connected=sum(1 for r in self.responders if r.connected),
            on_duty=sum(1 for r in self.responders if r.on_duty),
            responding=sum(1 for r in self.responders if r.job is not None),
            users=len(self.users),
            raised=c.raised,
            assigned=c.with_status("assigned"),
            resolved=c.with_status("resolved"),
            cancelled=c.with_status("cancelled"),
            offers=c.offers,
            declined=c.declined,
            errors=c.errors,
        )

    async def guarded(self, who: str, life: Callable[[], Awaitable[None]]) -> None:
        """Run one person's life; an unexpected exception is reported and ends it."""
        try:
            await life()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.error(who, exc)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def api(call: Callable[[], Awaitable[T]], demo: Demo) -> T:
    """A REST call during the demo: a 429 is waited out (``Retry-After``), and a
    broken connection (the server closing an idle keep-alive connection just as
    it is reused) is tried again, up to ``TRANSPORT_ATTEMPTS`` in all.

    Only for calls safe to repeat, as every call the demo makes is: reads,
    ``PUT /alerts/{id}/status`` (a repeat is a 409 the caller reads as "done"),
    ``POST /alerts`` with one ``Idempotency-Key`` and body for every attempt.
    """
    broken = 0
    while True:
        try:
            return await call()
        except RateLimited as exc:
            if not await demo.pause(exc.retry_after or 1.0):
                raise
        except TransportError:
            broken += 1
            if broken >= TRANSPORT_ATTEMPTS or not await demo.pause(0.5 * broken):
                raise
