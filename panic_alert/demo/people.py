"""The demo's simulated people: responders and users, each a coroutine on
its own signed-in client (two tasks: one reads its socket, one moves it on a
timer). Decisions are :mod:`panic_alert.demo.plan`'s; this is the I/O.

Expected races (an offer taken by another responder, an alert cancelled
while its responder drives) are not errors (``plan.RACE_CODES``); a location
fix that cannot be sent while the socket reconnects is skipped. Refusals of
the ``agent.status`` the client repeats after a reconnect (``ref``
``resync``) are not read as errors either: only ``error`` frames without a
``ref`` are (the answer to a frame with an id raises where it was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from uuid import UUID

from panic_alert.demo import plan
from panic_alert.demo.accounts import Account
from panic_alert.demo.plan import Point
from panic_alert.demo.world import Demo, api
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
    TransportError,
)

#: Real seconds between a user's REST checks of an alert no frame told about lately.
USER_CHECK_EVERY_S = 15.0


@dataclass
class Job:
    """A responder's alert: where it is and what was reported so far."""

    alert_id: UUID
    target: Point
    phase: str = "driving"  # driving, on_scene
    resolve_at: float = 0.0


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
                    await self._adopt(socket, frame)
            elif isinstance(frame, AlertUpdated):
                self.demo.counters.saw(frame.alert_id, frame.status)
                if self._is_job(frame.alert_id) and frame.status in plan.TERMINAL:
                    self._drop_job()
            elif isinstance(frame, AssignmentRevoked | OfferRevoked):
                if isinstance(frame, AssignmentRevoked) and self._is_job(frame.alert_id):
                    self._drop_job()
            elif isinstance(frame, ErrorFrame) and frame.ref is None:
                raise FrameRefused(frame.code, frame.message, retriable=frame.retriable)

    async def _adopt(self, socket: AsyncSocket, frame: AlertAssigned) -> None:
        """An alert already ours (after a reconnect, or from an earlier run):
        carry on from the step it is at."""
        job = Job(frame.alert_id, Point(frame.latitude, frame.longitude))
        self.job = job
        if frame.status == "assigned":
            await self._step(socket, "en_route")
        elif frame.status == "on_scene":
            job.phase = "on_scene"
            job.resolve_at = self.demo.sim_now() + plan.on_scene_for_s(self.rng, self.demo.tuning)

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
        alert = await api(lambda: self.client.get_alert(offer.alert_id), self.demo)
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
        alert = await api(lambda: self.client.get_alert(job.alert_id), self.demo)
        gone = alert.status in plan.TERMINAL or alert.assigned_agent_id != self.account_id
        if gone and self.job is job:
            self._drop_job()

    async def stop(self) -> None:
        """Off duty (refused while it still holds an alert: then it stays so), socket closed."""
        socket = self.socket
        if socket is None:
            return
        if self.on_duty:
            try:
                await socket.agent_status("offline")
                self.job = None  # off duty: it holds no alert
            except (FrameRefused, TransportError):
                pass  # still holds an alert (not cancelled in time), or the link is gone
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
        page = await api(lambda: self.client.alerts_page(limit=5), self.demo)
        for alert in page.items:
            if alert.status not in plan.TERMINAL:
                await self._cancel(alert.id)

    async def _cancel(self, alert_id: UUID) -> None:
        try:
            cancel = self.client.set_status
            await api(lambda: cancel(alert_id, "cancelled", pin=self.cancel_pin), self.demo)
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
        accuracy_m = round(self.rng.uniform(5, 25), 1)
        note = plan.alert_note(self.rng, kind)
        key = str(uuid.uuid4())  # one press: every attempt is the same request
        raised = await api(
            lambda: self.client.raise_alert(
                p.latitude,
                p.longitude,
                kind,
                accuracy_m=accuracy_m,
                description=note,
                idempotency_key=key,
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
            alert = await api(lambda: self.client.get_alert(alert_id), self.demo)
            self.demo.counters.saw(alert.id, alert.status)
            if self.alert_id == alert_id:
                self._follow(alert.status)

    async def _resync(self, socket: AsyncSocket) -> None:
        alert_id = self.alert_id
        if alert_id is not None:
            alert = await api(lambda: self.client.get_alert(alert_id), self.demo)
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
