"""The demo's driver: simulated responders and users living through the real
API of a running server, with the Python client only (``panic_alert_client``).

A thin shell: every decision (where to drive or walk, what to answer, when
to raise or cancel) is :mod:`panic_alert.demo.plan`'s; this module does the
I/O, keeps the tally and prints the progress line. Each simulated person is
one coroutine (two tasks: one reads its socket, one moves it on a timer);
simulated time runs ``speed`` times faster than the clock.

Guarantees:

* Expected races (an offer taken by another responder, an alert cancelled
  while its responder drives) are not errors (``plan.RACE_CODES``); a
  location fix that cannot be sent while the socket reconnects is skipped.
  Anything else a person meets is an error: one ``demo: error:`` line, that
  person stops, and the demo exits 1 at the end.
* Stopping (``--duration`` over, SIGINT, SIGTERM) is clean: users cancel
  their open alerts with their PIN, then responders go offline, then every
  socket and connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar
from uuid import UUID

from panic_alert.demo import plan
from panic_alert.demo.accounts import Account, Accounts, DemoError, MakeAdmin, StateFile
from panic_alert.demo.plan import Point
from panic_alert_client import (
    AlertAssigned,
    AlertOffer,
    AlertUpdated,
    AssignmentRevoked,
    AsyncClient,
    AsyncSocket,
    Conflict,
    ErrorFrame,
    FrameRefused,
    OfferRevoked,
    RateLimited,
    TransportError,
)

T = TypeVar("T")

EXIT_OK = 0
EXIT_ERRORS = 1

#: Real seconds between two progress lines.
PROGRESS_EVERY_S = 5.0
#: Real seconds between a user's REST checks of an alert no frame told about lately.
USER_CHECK_EVERY_S = 15.0
#: The most the clean stop may take (real seconds).
STOP_TIMEOUT_S = 45.0
#: The socket's own reconnection (panic_alert_client) answers ``agent.status``
#: frames it repeats with this id; their refusals are not ours to count.
RESYNC_REF = "resync"


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
class Job:
    """A responder's alert: where it is and what was reported so far."""

    alert_id: UUID
    target: Point
    phase: str = "driving"  # driving, on_scene
    resolve_at: float = 0.0


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


async def _api(call: Callable[[], Awaitable[T]], demo: Demo) -> T:
    """A REST call during the demo; a 429 is waited out (``Retry-After``), not an error."""
    while True:
        try:
            return await call()
        except RateLimited as exc:
            if not await demo.pause(exc.retry_after or 1.0):
                raise


class Responder:
    """A responder who patrols, answers offers, drives to alerts and resolves them."""

    def __init__(self, demo: Demo, account: Account) -> None:
        self.demo = demo
        self.name = f"responder {account.number}"
        self.client: AsyncClient = account.client
        self.rng = plan.person_rng(demo.options.seed, "responder", account.number)
        self.position = plan.patrol_target(self.rng, demo.options.city)
        self.target = plan.patrol_target(self.rng, demo.options.city)
        self.heading = 0.0
        self.speed_mps = 0.0
        self.job: Job | None = None
        self.on_duty = False
        self.socket: AsyncSocket | None = None
        self.account_id: UUID | None = None

    @property
    def connected(self) -> bool:
        return self.socket is not None and self.socket.connected

    async def live(self) -> None:
        socket = self.client.socket(on_resync=self._resync)
        auth = await socket.connect()
        self.socket, self.account_id = socket, auth.account_id
        await self._fix(socket)
        await socket.agent_status("available")
        self.on_duty = True
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(socket))
            tasks.create_task(self._drive(socket))

    async def _fix(self, socket: AsyncSocket) -> None:
        p = self.position
        with contextlib.suppress(TransportError):  # reconnecting: the next fix will do
            await socket.location(
                p.latitude,
                p.longitude,
                accuracy_m=round(self.rng.uniform(4, 12), 1),
                heading=round(self.heading, 1),
                speed_mps=round(self.speed_mps, 1),
            )

    async def _read(self, socket: AsyncSocket) -> None:
        async for frame in socket:
            if self.demo.stopping.is_set():
                return
            if isinstance(frame, AlertOffer):
                await self._answer(socket, frame)
            elif isinstance(frame, AlertAssigned):
                if self.job is None and frame.status not in plan.TERMINAL:
                    # Ours after a reconnect or a rerun: carry on with it.
                    target = Point(frame.latitude, frame.longitude)
                    self.job = Job(frame.alert_id, target)
                    await self._step(socket, "en_route")
            elif isinstance(frame, AlertUpdated):
                self.demo.counters.saw(frame.alert_id, frame.status)
                if self._is_job(frame.alert_id) and frame.status in plan.TERMINAL:
                    self._drop_job()
            elif isinstance(frame, AssignmentRevoked | OfferRevoked):
                if isinstance(frame, AssignmentRevoked) and self._is_job(frame.alert_id):
                    self._drop_job()
            elif isinstance(frame, ErrorFrame) and frame.ref is None:
                raise FrameRefused(frame.code, frame.message, retriable=frame.retriable)

    def _is_job(self, alert_id: UUID) -> bool:
        return self.job is not None and self.job.alert_id == alert_id

    def _drop_job(self) -> None:
        self.job = None
        self.target = plan.patrol_target(self.rng, self.demo.options.city)

    async def _answer(self, socket: AsyncSocket, offer: AlertOffer) -> None:
        counters = self.demo.counters
        counters.offers += 1
        if self.job is not None or not plan.accepts_offer(self.rng, self.demo.tuning):
            counters.declined += 1
            await self._refusable(socket.decline(offer.alert_id, plan.decline_reason(self.rng)))
            return
        if not await self._refusable(socket.accept(offer.alert_id)):
            return  # taken by another responder, or withdrawn
        counters.saw(offer.alert_id, "assigned")
        alert = await _api(lambda: self.client.get_alert(offer.alert_id), self.demo)
        self.job = Job(alert.id, Point(alert.latitude, alert.longitude))
        await self._step(socket, "en_route")

    async def _refusable(self, request: Awaitable[object]) -> bool:
        """Send a frame that waits for its ack: True when acked, False when the
        world moved on (``plan.RACE_CODES``); any other refusal is raised."""
        try:
            await request
        except FrameRefused as exc:
            if exc.code in plan.RACE_CODES:
                return False
            raise
        return True

    async def _step(self, socket: AsyncSocket, status: str) -> None:
        """Report ``status`` for the job; a refused step (cancelled meanwhile) drops it."""
        job = self.job
        if job is None:
            return
        if await self._refusable(socket.alert_status(job.alert_id, status)):
            self.demo.counters.saw(job.alert_id, status)
        elif self.job is job:
            self._drop_job()

    async def _drive(self, socket: AsyncSocket) -> None:
        tuning = self.demo.tuning
        every = tuning.responder_fix_every_s
        while await self.demo.pause(every):
            dt = every * self.demo.options.speed
            job = self.job
            if job is None:
                move = plan.move_towards(self.position, self.target, tuning.patrol_speed_mps, dt)
                if move.arrived:
                    self.target = plan.patrol_target(self.rng, self.demo.options.city)
            elif job.phase == "driving":
                move = plan.move_towards(self.position, job.target, tuning.response_speed_mps, dt)
            else:
                move = plan.Move(self.position, self.heading, 0.0, False)
            self.position, self.heading = move.position, move.heading
            self.speed_mps = move.speed_mps
            await self._fix(socket)
            if job is None or self.job is not job:
                continue
            if job.phase == "driving" and plan.on_scene(self.position, job.target, tuning):
                job.phase = "on_scene"
                job.resolve_at = self.demo.sim_now() + plan.on_scene_for_s(self.rng, tuning)
                await self._step(socket, "on_scene")
            elif job.phase == "on_scene" and self.demo.sim_now() >= job.resolve_at:
                await self._step(socket, "resolved")
                if self.job is job:
                    self._drop_job()

    async def _resync(self, socket: AsyncSocket) -> None:
        """After a reconnect: is the job still ours? (pushes are at-most-once)."""
        job = self.job
        if job is None:
            return
        alert = await _api(lambda: self.client.get_alert(job.alert_id), self.demo)
        gone = alert.status in plan.TERMINAL or alert.assigned_agent_id != self.account_id
        if gone and self.job is job:
            self._drop_job()

    async def stop(self) -> None:
        """Off duty (refused while it still holds an alert: then it stays so), socket closed."""
        socket = self.socket
        if socket is None:
            return
        if self.on_duty:
            with contextlib.suppress(FrameRefused, TransportError):
                await socket.agent_status("offline")
            self.on_duty = False
        await socket.close()


class User:
    """A user who walks home and on errands, and now and then raises an alert."""

    def __init__(self, demo: Demo, account: Account, cancel_pin: str) -> None:
        self.demo = demo
        self.name = f"user {account.number}"
        self.client: AsyncClient = account.client
        self.cancel_pin = cancel_pin
        self.rng = plan.person_rng(demo.options.seed, "user", account.number)
        self.walker = plan.new_walker(self.rng, demo.options.city, demo.tuning)
        self.heading = 0.0
        self.speed_mps = 0.0
        self.rest_until = 0.0
        self.next_alert_at = plan.next_alert_in_s(self.rng, demo.tuning)
        self.alert_id: UUID | None = None
        self.alert_status = ""
        self.raised_at = 0.0
        self.cancel_at: float | None = None
        self.checked_at = 0.0
        self.socket: AsyncSocket | None = None

    async def live(self) -> None:
        await self._cancel_leftover()
        socket = self.client.socket(on_resync=self._resync)
        await socket.connect()
        self.socket = socket
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._read(socket))
            tasks.create_task(self._walk(socket))

    async def _cancel_leftover(self) -> None:
        """An alert left open by an earlier run is cancelled (one open alert per user)."""
        page = await _api(lambda: self.client.alerts_page(limit=5), self.demo)
        for alert in page.items:
            if alert.status not in plan.TERMINAL:
                await self._cancel(alert.id)

    async def _cancel(self, alert_id: UUID) -> None:
        try:
            cancel = self.client.set_status
            await _api(lambda: cancel(alert_id, "cancelled", pin=self.cancel_pin), self.demo)
        except Conflict:
            return  # closed meanwhile (resolved, or cancelled already)
        self.demo.counters.saw(alert_id, "cancelled")

    async def _read(self, socket: AsyncSocket) -> None:
        async for frame in socket:
            if self.demo.stopping.is_set():
                return
            if isinstance(frame, AlertUpdated):
                self.demo.counters.saw(frame.alert_id, frame.status)
                if frame.alert_id == self.alert_id:
                    self._follow(frame.status)
            elif isinstance(frame, ErrorFrame) and frame.ref is None:
                raise FrameRefused(frame.code, frame.message, retriable=frame.retriable)

    def _follow(self, status: str) -> None:
        self.alert_status = status
        self.checked_at = self.demo.clock()
        if status in plan.TERMINAL:
            self.alert_id = None
            self.cancel_at = None
            self.next_alert_at = self.demo.sim_now() + plan.next_alert_in_s(
                self.rng, self.demo.tuning
            )

    async def _walk(self, socket: AsyncSocket) -> None:
        tuning = self.demo.tuning
        every = tuning.user_fix_every_s
        while await self.demo.pause(every):
            now = self.demo.sim_now()
            self._move(every * self.demo.options.speed, now)
            p = self.walker.position
            with contextlib.suppress(TransportError):  # reconnecting: the next fix will do
                await socket.location(
                    p.latitude,
                    p.longitude,
                    accuracy_m=round(self.rng.uniform(5, 25), 1),
                    heading=round(self.heading, 1),
                    speed_mps=round(self.speed_mps, 1),
                )
            if self.alert_id is None:
                if now >= self.next_alert_at:
                    await self._raise(now)
            else:
                await self._mind_alert(self.alert_id, now)

    def _move(self, dt: float, now: float) -> None:
        tuning = self.demo.tuning
        walker = self.walker
        if now < self.rest_until or self.alert_id is not None:
            self.speed_mps = 0.0  # at home, or waiting for help where they pressed
            return
        move = plan.move_towards(walker.position, walker.target, tuning.walk_speed_mps, dt)
        self.heading, self.speed_mps = move.heading, move.speed_mps
        target = walker.target
        if move.arrived:
            if target == walker.home:
                self.rest_until = now + plan.rest_s(self.rng, tuning)
                target = plan.errand(self.rng, walker, tuning)
            else:
                target = walker.home
        self.walker = plan.Walker(walker.home, move.position, target)

    async def _raise(self, now: float) -> None:
        kind = plan.alert_type(self.rng)
        p = self.walker.position
        raised = await _api(
            lambda: self.client.raise_alert(
                p.latitude,
                p.longitude,
                kind,
                accuracy_m=round(self.rng.uniform(5, 25), 1),
                description=plan.alert_note(self.rng, kind),
            ),
            self.demo,
        )
        alert = raised.alert
        if not raised.already_open:
            self.demo.counters.raised += 1
        self.alert_id, self.raised_at = alert.id, now
        self.checked_at = self.demo.clock()
        after = plan.cancel_after_s(self.rng, self.demo.tuning)
        self.cancel_at = None if after is None else now + after
        self.demo.counters.saw(alert.id, alert.status)
        self._follow(alert.status)

    async def _mind_alert(self, alert_id: UUID, now: float) -> None:
        """Cancel when planned (or when nobody came), else check on a quiet alert."""
        tuning = self.demo.tuning
        if (self.cancel_at is not None and now >= self.cancel_at) or plan.gives_up(
            self.alert_status, now - self.raised_at, tuning
        ):
            await self._cancel(alert_id)
            self._follow("cancelled")
        elif self.demo.clock() - self.checked_at >= USER_CHECK_EVERY_S:
            alert = await _api(lambda: self.client.get_alert(alert_id), self.demo)
            self.demo.counters.saw(alert.id, alert.status)
            if self.alert_id == alert_id:
                self._follow(alert.status)

    async def _resync(self, socket: AsyncSocket) -> None:
        alert_id = self.alert_id
        if alert_id is not None:
            alert = await _api(lambda: self.client.get_alert(alert_id), self.demo)
            if self.alert_id == alert_id:
                self._follow(alert.status)

    async def stop(self) -> None:
        """Cancel the open alert (so its responder is free), close the socket."""
        if self.alert_id is not None:
            with contextlib.suppress(Exception):  # best effort on the way out
                await self._cancel(self.alert_id)
            self.alert_id = None
        if self.socket is not None:
            await self.socket.close()


async def run_demo(
    options: Options,
    make_admin: MakeAdmin,
    *,
    err: TextIO,
    handle_signals: bool = True,
) -> int:
    """Set the accounts up, run the city until the duration or a signal, stop cleanly.

    Returns 0, or 1 when any person met an unexpected error; raises
    :class:`DemoError` when the setup fails (no server, no administrator).
    """
    demo = Demo(options, err=err)
    if handle_signals:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, demo.stopping.set)
    state_file = StateFile(options.state_path)
    state = state_file.load()
    accounts = Accounts(options.url, state, state_file, err=err, stopping=demo.stopping)
    clients: list[AsyncClient] = []
    try:
        demo.say(f"setting up {options.responders} responders and {options.users} users")
        admin = await accounts.admin(options.admin_email, options.admin_password, make_admin)
        clients.append(admin)
        responders = await accounts.sign_in_all("responder", options.responders)
        clients.extend(account.client for account in responders)
        users = await accounts.sign_in_all("user", options.users)
        clients.extend(account.client for account in users)
        demo.responders = [Responder(demo, account) for account in responders]
        demo.users = [User(demo, account, state.cancel_pin) for account in users]
        demo.started = demo.clock()
        await _run(demo)
    except OSError as exc:
        raise DemoError(f"cannot reach {options.url}: {exc}") from exc
    except TransportError as exc:
        raise DemoError(f"the server at {options.url} did not answer: {exc}") from exc
    finally:
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)
    tally = demo.tally()
    demo.say(f"stopped. {plan.progress_line(tally)}")
    return EXIT_ERRORS if tally.errors else EXIT_OK


async def _run(demo: Demo) -> None:
    people: list[Responder | User] = [*demo.responders, *demo.users]
    lives = [asyncio.create_task(demo.guarded(person.name, person.live)) for person in people]
    progress = asyncio.create_task(_progress(demo))
    duration = demo.options.duration_s
    try:
        await asyncio.wait_for(demo.stopping.wait(), duration)
    except TimeoutError:
        demo.stopping.set()
    demo.say("stopping: users cancel their open alerts, responders go offline")
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await _cancel_all(lives)
            await _each(demo, "stopping", [user.stop for user in demo.users])
            await _each(demo, "stopping", [responder.stop for responder in demo.responders])
    except TimeoutError:
        demo.say(f"the clean stop took longer than {STOP_TIMEOUT_S:.0f}s; closing anyway")
    finally:
        await _cancel_all([progress])


async def _each(demo: Demo, what: str, calls: Sequence[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(32)

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            try:
                await call()
            except Exception as exc:
                demo.error(what, exc)

    await asyncio.gather(*(one(call) for call in calls))


async def _cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _progress(demo: Demo) -> None:
    while await demo.pause(PROGRESS_EVERY_S):
        demo.say(plan.progress_line(demo.tally()))
