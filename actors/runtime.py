"""The entity runtime: logical actors with serial mailboxes, hosted in one process.

An :class:`EntityHost` owns some entities (a shard's share). It gives each
entity a mailbox drained by one task at a time, so messages to one entity
never interleave while different entities run concurrently; it activates an
entity on its first message (loading its snapshot), passivates it when idle,
and carries out the effects of every transition.

Guarantees:

* **Durable before observable.** A transition's snapshot, outbox events,
  timer changes and durable sends are committed in ONE store transaction
  before any push, send or reply leaves the host. If the commit fails, the
  entity keeps its previous state and the caller gets the error.
* **Order.** Messages enqueued for one entity are processed in enqueue order.
* **Timers fire once.** A due timer is delivered as a message; its removal
  commits with the transition it caused. A crash before that commit leaves
  the timer stored, and it fires again after recovery.
* **Durable sends** (from transitions that emit events) are stored as
  messages due at once on the recipient, delivered after commit and removed
  by the recipient's own commit: at-least-once, and every ``decide`` treats
  a duplicate as a no-op. Sends from coalesced transitions (positions,
  liveness) are best-effort.
* **Searches** (``actors.search``) start after the commit, like sends; their
  answers come back to the entity as ``SearchResult`` messages. Best-effort:
  a failed search is logged and the entity's own timers cover it.
* **Coalescing.** A transition whose only durable effect is a coalescable
  snapshot (no events) is kept in memory and flushed every
  ``flush_interval`` and at passivation; its timers are stored only when no
  earlier copy is stored (an early copy firing after a restart is a stale
  timer, which ``decide`` re-arms). Likewise a timer that fires and only
  arms itself again in such a transition (a search again, a heartbeat check)
  keeps its stored copy: no write per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import uuid4

from actors.commit_plan import CommitPlan, Key, TimerKey, plan
from actors.effects import (
    EntityKind,
    Persist,
    Push,
    Reply,
    Send,
)
from actors.errors import ActorError, EntityNotFound
from actors.kinds import Behaviour
from actors.message_codec import decode_message
from actors.ports import (
    MESSAGE_TIMER,
    CommitBatch,
    EntityStore,
    PushSink,
    Router,
    Searcher,
    StoredTimer,
)
from actors.search import Search, SearchResult

log = logging.getLogger(__name__)

#: Coalesced snapshots written per statement by ``EntityHost.flush``.
FLUSH_CHUNK = 200

#: Returned by the inline fast path when the message needs the mailbox.
_SLOW = object()
#: Returned by ``_process`` when the transition deferred its reply (``Defer``).
_DEFERRED = object()
#: Askers deferred longer than this are told no answer came (a lost message).
DEFER_LIMIT_S = 30.0


@dataclass(slots=True)
class _Envelope:
    message: object
    fired: StoredTimer | None
    reply: asyncio.Future[object] | None


@dataclass(slots=True)
class _Slot:
    state: Any = None
    loaded: bool = False
    running: bool = False
    mailbox: deque[_Envelope] = field(default_factory=deque)
    last_used: float = 0.0


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    timers: int
    alerts: int
    seconds: float


class EntityHost:
    """Hosts logical actors; see the module docstring for its guarantees."""

    def __init__(
        self,
        *,
        behaviours: Mapping[EntityKind, Behaviour],
        store: EntityStore,
        pushes: PushSink,
        router: Router,
        clock: Callable[[], datetime],
        searcher: Searcher | None = None,
        new_id: Callable[[], str] = lambda: uuid4().hex,
        owns: Callable[[EntityKind, str], bool] = lambda _k, _i: True,
        passivate_after: timedelta = timedelta(minutes=5),
        flush_interval: float = 5.0,
        retry_backoff: float = 0.5,
    ) -> None:
        self._behaviours = behaviours
        self._store = store
        self._pushes = pushes
        self._router = router
        self._searcher = searcher
        self._clock = clock
        self._new_id = new_id
        self._owns = owns
        self._passivate_after = passivate_after.total_seconds()
        self._flush_interval = flush_interval
        self._retry_backoff = retry_backoff
        self._slots: dict[Key, _Slot] = {}
        self._timers: dict[TimerKey, tuple[StoredTimer, asyncio.TimerHandle]] = {}
        #: due_at of the stored copy of each timer, for coalesced re-arming.
        self._stored_due: dict[TimerKey, datetime] = {}
        self._dirty: dict[Key, Persist] = {}
        #: Askers whose reply an entity deferred (``Defer``), by entity and token.
        self._deferred: dict[tuple[Key, str], list[tuple[asyncio.Future[object], float]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._housekeeping: asyncio.Task[None] | None = None
        self.processed = 0

    # --- lifecycle ---------------------------------------------------------------

    async def start(self) -> RecoveryReport:
        """Re-arm the stored timers and activate the open alerts this host owns."""
        began = time.perf_counter()
        timers = [t for t in await self._store.load_timers() if self._owns(t.kind, t.entity_id)]
        for timer in timers:
            self._stored_due[(timer.kind, timer.entity_id, timer.timer_id)] = timer.due_at
            self._arm(timer)
        alerts = [a for a in await self._store.open_alert_ids() if self._owns(EntityKind.ALERT, a)]
        await asyncio.gather(*(self._activate((EntityKind.ALERT, a)) for a in alerts))
        self._housekeeping = asyncio.create_task(self._housekeep())
        report = RecoveryReport(len(timers), len(alerts), time.perf_counter() - began)
        log.info(
            "entity host started: %d timers re-armed, %d open alerts active in %.3fs",
            report.timers,
            report.alerts,
            report.seconds,
        )
        return report

    async def stop(self) -> None:
        """Stop timers and housekeeping, then flush coalesced snapshots."""
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        for _timer, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        await self.flush()

    async def settle(self) -> None:
        """Wait until every mailbox is drained (messages sent meanwhile included)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def stats(self) -> dict[str, int]:
        return {
            "active": len(self._slots),
            "timers": len(self._timers),
            "dirty": len(self._dirty),
            "processed": self.processed,
        }

    def read(self, kind: EntityKind, entity_id: str, query: object) -> object:
        """Answer a read-only ``query`` from the entity's state in memory, outside its mailbox.

        For queries that need no order and whose answer for an entity not in
        memory is "nothing" (a region's soft agent index is only ever in
        memory): no activation, no task, no future. Returns ``None`` when the
        entity is not active; raises the entity's ``ActorError`` for a bad
        query, and ``ActorError`` when ``decide`` treats the query as a change.
        """
        slot = self._slots.get((kind, entity_id))
        if slot is None or not slot.loaded:
            return None
        state, effects = self._behaviours[kind].decide(slot.state, query, self._clock())
        if state is not slot.state or len(effects) != 1 or not isinstance(effects[0], Reply):
            raise ActorError(f"{type(query).__name__} is not a read-only query of {kind.value}")
        return effects[0].value

    def active_state(self, kind: EntityKind, entity_id: str) -> Any:
        """The in-memory state of an active entity (None if not active); for inspection."""
        slot = self._slots.get((kind, entity_id))
        return None if slot is None else slot.state

    # --- messages ----------------------------------------------------------------

    def enqueue(
        self,
        kind: EntityKind,
        entity_id: str,
        message: object,
        *,
        fired: StoredTimer | None = None,
        want_reply: bool = True,
    ) -> asyncio.Future[object] | None:
        """Put ``message`` in the entity's mailbox now (synchronously: order is kept).

        Returns a future for the reply (or the ``ActorError``) when asked.
        """
        behaviour = self._behaviours.get(kind)
        if behaviour is None:
            raise ActorError(f"unknown entity kind {kind!r}")
        key = (kind, entity_id)
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot(last_used=time.monotonic())
        if (
            slot.loaded
            and not slot.running
            and not slot.mailbox
            and fired is None
            and behaviour.shortcut is not None
            and self._shortcut(behaviour.shortcut, slot, message, time.monotonic())
        ):
            if not want_reply:
                return None
            answered = asyncio.get_running_loop().create_future()
            answered.set_result(None)
            return answered
        return self._deliver(key, slot, message, fired, want_reply)

    def tell_each(self, kind: EntityKind, messages: Iterable[tuple[str, object]]) -> int:
        """``enqueue(kind, entity_id, message, want_reply=False)`` for each pair, in
        order: a shard's batch of location fixes in one call, each message the
        kind's ``shortcut`` takes (most fixes) taken here without the rest of
        ``enqueue``. Returns how many were refused (each logged): one bad
        message never stops the others."""
        behaviour = self._behaviours.get(kind)
        if behaviour is None:
            raise ActorError(f"unknown entity kind {kind!r}")
        shortcut = behaviour.shortcut
        slots = self._slots
        now = time.monotonic()
        refused = 0
        for entity_id, message in messages:
            key = (kind, entity_id)
            slot = slots.get(key)
            if slot is None:
                slot = slots[key] = _Slot(last_used=now)
            elif (
                shortcut is not None
                and slot.loaded
                and not slot.running
                and not slot.mailbox
                and self._shortcut(shortcut, slot, message, now)
            ):
                continue
            try:
                self._deliver(key, slot, message, None, False)
            except Exception as exc:
                refused += 1
                log.debug("%s for %s %s refused: %s", type(message).__name__, kind, entity_id, exc)
        return refused

    def _deliver(
        self,
        key: Key,
        slot: _Slot,
        message: object,
        fired: StoredTimer | None,
        want_reply: bool,
    ) -> asyncio.Future[object] | None:
        """``enqueue`` once the shortcut has passed: decided at once when the entity is
        idle (``_fast``), else into its mailbox."""
        loop = asyncio.get_running_loop()
        if slot.loaded and not slot.running and not slot.mailbox and fired is None:
            handled = self._fast(key, slot, message, loop, want_reply)
            if handled is not _SLOW:
                return cast("asyncio.Future[object] | None", handled)
        future = loop.create_future() if want_reply else None
        slot.mailbox.append(_Envelope(message, fired, future))
        if not slot.running:
            slot.running = True
            self._spawn(self._drain(key, slot))
        return future

    def _shortcut(
        self, shortcut: Callable[[Any, object], Any], slot: _Slot, message: object, now: float
    ) -> bool:
        """The hottest path (most location fixes): the behaviour's ``shortcut`` says
        the message only changes the idle entity's memory, without a decision
        or a clock. False (``_fast`` or the mailbox then decides) when it cannot
        say, or fails. ``now`` (monotonic) is when the entity was last used: a
        batch (``tell_each``) reads the clock once."""
        try:
            state = shortcut(slot.state, message)
        except Exception:
            log.exception("an entity's shortcut failed; deciding instead")
            return False
        if state is None:
            return False
        slot.state = state
        slot.last_used = now
        self.processed += 1
        return True

    def _fast(
        self,
        key: Key,
        slot: _Slot,
        message: object,
        loop: asyncio.AbstractEventLoop,
        want_reply: bool,
    ) -> Any:
        """Process inline when the transition needs no I/O at all.

        The hot path (positions, heartbeats): an idle, loaded entity whose
        transition only changes memory (a coalesced snapshot, best-effort
        sends, in-memory timers) is handled without a task. Anything that
        must commit, push or wait returns ``_SLOW`` and goes through the
        mailbox; ``decide`` is pure, so deciding again there is harmless.
        """
        future = loop.create_future() if want_reply else None
        now = self._clock()
        try:
            state, effects = self._behaviours[key[0]].decide(slot.state, message, now)
        except ActorError as exc:
            if future is None:
                return None
            future.set_exception(exc)
            return future
        except Exception:
            return _SLOW
        if not effects:  # most fixes and heartbeats: only memory changes
            slot.state = state
            slot.last_used = time.monotonic()
            self.processed += 1
            if future is not None:
                future.set_result(None)
            return future
        outcome = plan(key, state, effects, now, None, self._stored_due, self._new_id)
        if (
            outcome.batch
            or outcome.pushes
            or outcome.defer is not None
            or outcome.answers
            or any(stored for _s, stored in outcome.sends)
        ):
            return _SLOW
        slot.state = outcome.state
        slot.last_used = time.monotonic()
        self.processed += 1
        self._after_commit(key, outcome)
        for send, _stored in outcome.sends:
            self._router.tell(send.entity_kind, str(send.entity_id), send.message)
        self._start_searches(key, outcome.searches)
        if future is not None:
            future.set_result(outcome.reply)
        return future

    async def ask(self, kind: EntityKind, entity_id: str, message: object) -> object:
        """Deliver and wait for the reply; the entity's ``ActorError`` is raised here."""
        future = self.enqueue(kind, entity_id, message)
        assert future is not None
        return await future

    async def tell_many(self, items: Iterable[tuple[EntityKind, str, object]]) -> int:
        """Enqueue every message in order, wait until all are processed.

        Returns how many were rejected (each rejection is logged); one bad
        message never stops the others.
        """
        futures = [self.enqueue(kind, entity_id, msg) for kind, entity_id, msg in items]
        results = await asyncio.gather(*(f for f in futures if f), return_exceptions=True)
        return sum(1 for r in results if isinstance(r, BaseException))

    async def _drain(self, key: Key, slot: _Slot) -> None:
        try:
            while slot.mailbox:
                envelope = slot.mailbox.popleft()
                try:
                    result = await self._process(key, slot, envelope)
                except BaseException as exc:  # delivered to the asker, never lost silently
                    if envelope.reply is not None and not envelope.reply.done():
                        envelope.reply.set_exception(exc)
                    elif not isinstance(exc, ActorError):
                        log.warning("message to %s %s failed: %r", key[0], key[1], exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                else:
                    deferred = result is _DEFERRED
                    if not deferred and envelope.reply is not None and not envelope.reply.done():
                        envelope.reply.set_result(result)
        finally:
            slot.running = False
            slot.last_used = time.monotonic()

    async def _process(self, key: Key, slot: _Slot, envelope: _Envelope) -> object:
        if not slot.loaded:
            await self._load(key, slot)
        behaviour = self._behaviours[key[0]]
        now = self._clock()
        try:
            new_state, effects = behaviour.decide(slot.state, envelope.message, now)
        except ActorError as exc:
            if isinstance(exc, EntityNotFound) and exc.entity_id is None:
                raise EntityNotFound(exc.entity, key[1]) from None
            if envelope.fired is not None:
                # A rejected timer or stored message must not fire forever.
                log.warning("stored %s for %s %s rejected: %s", envelope.fired.name, *key, exc)
                await self._store.commit(CommitBatch(fired=[envelope.fired]))
                self._forget_stored(envelope.fired)
            raise
        outcome = plan(key, new_state, effects, now, envelope.fired, self._stored_due, self._new_id)
        if outcome.batch:
            await self._store.commit(outcome.batch)
        slot.state = outcome.state
        self.processed += 1
        self._after_commit(key, outcome)
        if outcome.sends:
            await self._send(outcome.sends)
        self._start_searches(key, outcome.searches)
        if outcome.pushes:
            await self._push(key, outcome.pushes)
        for token, value in outcome.answers:
            self._answer(key, token, value)
        if outcome.defer is not None and envelope.reply is not None:
            parked = (envelope.reply, time.monotonic())
            self._deferred.setdefault((key, outcome.defer), []).append(parked)
            return _DEFERRED
        return outcome.reply

    async def _push(self, key: Key, pushes: Sequence[Push]) -> None:
        """Publish the transition's pushes; a push that reached no socket hands
        its ``undelivered`` message back to the entity (an offer moves on)."""
        try:
            reached = await self._pushes.push(pushes)
        except Exception:  # at-most-once by design: clients resync
            log.warning("push for %s %s failed", *key, exc_info=True)
            return
        for push, listeners in zip(pushes, reached, strict=False):
            if listeners == 0 and push.undelivered is not None:
                self.enqueue(key[0], key[1], push.undelivered, want_reply=False)

    def _answer(self, key: Key, token: str, value: object) -> None:
        """Reply to the askers ``key`` deferred under ``token`` (raise an error value)."""
        for future, _parked_at in self._deferred.pop((key, token), ()):
            if future.done():
                continue
            if isinstance(value, BaseException):
                future.set_exception(value)
            else:
                future.set_result(value)

    def _expire_deferred(self, now: float) -> None:
        """Tell askers deferred past ``DEFER_LIMIT_S`` that no answer came."""
        for parked_key, parked in list(self._deferred.items()):
            kept = []
            for future, at in parked:
                if future.done():
                    continue  # the asker went away
                if now - at < DEFER_LIMIT_S:
                    kept.append((future, at))
                else:
                    future.set_exception(ActorError("no answer in time", retriable=True))
            if kept:
                self._deferred[parked_key] = kept
            else:
                del self._deferred[parked_key]

    def _after_commit(self, key: Key, out: CommitPlan) -> None:
        kind, entity_id = key
        for fired in out.batch.fired:
            self._forget_stored(fired)
        if out.batch.snapshots:
            newest = out.batch.snapshots[-1]
            dirty = self._dirty.get(key)
            if dirty is not None and dirty.version <= newest.version:
                del self._dirty[key]
        if out.coalesced is not None:
            self._dirty[key] = out.coalesced
        for timer_id in out.disarm:
            self._disarm((kind, entity_id, timer_id))
            self._stored_due.pop((kind, entity_id, timer_id), None)
        stored_ids = {
            t.timer_id for t in out.batch.timers if (t.kind, t.entity_id) == (kind, entity_id)
        }
        for timer in out.arm:
            if timer.timer_id in stored_ids:
                self._stored_due[(kind, entity_id, timer.timer_id)] = timer.due_at
            self._arm(timer)

    # --- sends, timers -------------------------------------------------------------

    async def _send(self, sends: Sequence[tuple[Send, StoredTimer | None]]) -> None:
        for send, stored in sends:
            target = str(send.entity_id)
            if stored is None:
                self._router.tell(send.entity_kind, target, send.message)
                continue
            try:
                await self._router.deliver(send.entity_kind, target, send.message, stored)
            except ActorError as exc:
                log.warning("send to %s %s rejected: %s", send.entity_kind, target, exc)
            except Exception:
                log.warning("send to %s %s failed; retrying", send.entity_kind, target)
                self._spawn(self._retry_send(send, stored))

    def _start_searches(self, key: Key, searches: Sequence[Search]) -> None:
        for search in searches:
            if self._searcher is None:
                log.warning("%s %s asked for a search, but this host has no searcher", *key)
                continue
            self._spawn(self._search(key, self._searcher, search))

    async def _search(self, key: Key, searcher: Searcher, search: Search) -> None:
        try:
            found = await searcher.search(search)
        except Exception as exc:  # best-effort: the entity's own timer searches again
            log.warning("search %d for %s %s failed: %r", search.tag, *key, exc)
            return
        self.enqueue(*key, SearchResult(search.tag, found), want_reply=False)

    async def _retry_send(self, send: Send, stored: StoredTimer) -> None:
        delay = self._retry_backoff
        while True:
            await asyncio.sleep(delay)
            try:
                await self._router.deliver(send.entity_kind, stored.entity_id, send.message, stored)
                return
            except ActorError:
                return
            except Exception:
                delay = min(delay * 2, 30.0)

    def _arm(self, timer: StoredTimer) -> None:
        tkey = (timer.kind, timer.entity_id, timer.timer_id)
        self._disarm(tkey)
        loop = asyncio.get_running_loop()
        delay = max(0.0, (timer.due_at - self._clock()).total_seconds())
        handle = loop.call_later(delay, self._fire, timer)
        self._timers[tkey] = (timer, handle)

    def _disarm(self, tkey: TimerKey) -> None:
        armed = self._timers.pop(tkey, None)
        if armed is not None:
            armed[1].cancel()

    def _forget_stored(self, timer: StoredTimer) -> None:
        tkey = (timer.kind, timer.entity_id, timer.timer_id)
        if self._stored_due.get(tkey) == timer.due_at:
            del self._stored_due[tkey]

    def _fire(self, timer: StoredTimer) -> None:
        tkey = (timer.kind, timer.entity_id, timer.timer_id)
        armed = self._timers.get(tkey)
        if armed is None or armed[0] is not timer:
            return
        if self._clock() < timer.due_at:
            # Event loops round timers (uvloop to the millisecond) and may wake
            # a little early; a timer must never be delivered before its due
            # time by the entities' own clock, or decide() takes it as stale.
            self._arm(timer)
            return
        del self._timers[tkey]
        self._spawn(self._deliver_timer(timer))

    async def _deliver_timer(self, timer: StoredTimer) -> None:
        behaviour = self._behaviours[timer.kind]
        try:
            if timer.name == MESSAGE_TIMER:
                message = decode_message(timer.payload)
            else:
                message = behaviour.timer_message(timer.name, timer.payload)
        except ActorError as exc:
            log.error(
                "undecodable timer %s of %s %s: %s", timer.name, timer.kind, timer.entity_id, exc
            )
            return
        # The stored copy (if any) goes with the delivery, so the transition removes it.
        stored_due = self._stored_due.get((timer.kind, timer.entity_id, timer.timer_id))
        fired = None if stored_due is None else dataclasses.replace(timer, due_at=stored_due)
        future = self.enqueue(timer.kind, timer.entity_id, message, fired=fired)
        assert future is not None
        try:
            await future
        except ActorError:
            pass  # logged and removed by _process
        except Exception:
            log.warning(
                "timer %s of %s %s failed; re-arming", timer.name, timer.kind, timer.entity_id
            )
            retry = StoredTimer(
                timer.kind, timer.entity_id, timer.timer_id, timer.name, timer.due_at, timer.payload
            )
            self._timers[(timer.kind, timer.entity_id, timer.timer_id)] = (
                retry,
                asyncio.get_running_loop().call_later(self._retry_backoff, self._fire, retry),
            )

    async def deliver_stored(self, message: object, stored: StoredTimer) -> object:
        """Deliver a durable message sent by another entity (removed on commit)."""
        self._stored_due[(stored.kind, stored.entity_id, stored.timer_id)] = stored.due_at
        future = self.enqueue(stored.kind, stored.entity_id, message, fired=stored)
        assert future is not None
        return await future

    # --- activation, passivation ---------------------------------------------------------

    async def _load(self, key: Key, slot: _Slot) -> None:
        behaviour = self._behaviours[key[0]]
        entity_id = behaviour.parse_id(key[1])
        snapshot = await self._store.load_snapshot(key[0], key[1])
        slot.state = (
            behaviour.initial(entity_id) if snapshot is None else behaviour.from_snapshot(snapshot)
        )
        slot.loaded = True

    async def _activate(self, key: Key) -> None:
        slot = self._slots.setdefault(key, _Slot(last_used=time.monotonic()))
        if not slot.loaded and not slot.running:
            slot.running = True
            try:
                await self._load(key, slot)
            finally:
                slot.running = False
            if slot.mailbox:
                slot.running = True
                self._spawn(self._drain(key, slot))

    async def flush(self) -> int:
        """Write every coalesced snapshot now; returns how many.

        In commits of at most ``FLUSH_CHUNK`` snapshots: building one statement
        for 1,000 agents held the event loop ~50 ms, and every message to
        this shard waited that long.
        """
        if not self._dirty:
            return 0
        dirty, self._dirty = list(self._dirty.items()), {}
        written = 0
        try:
            for start in range(0, len(dirty), FLUSH_CHUNK):
                chunk = dirty[start : start + FLUSH_CHUNK]
                await self._store.commit(CommitBatch(snapshots=[persist for _k, persist in chunk]))
                written += len(chunk)
        except Exception:
            for key, persist in dirty[written:]:  # keep what a newer transition did not replace
                self._dirty.setdefault(key, persist)
            raise
        return written

    async def passivate_idle(self, now: float | None = None) -> int:
        """Drop idle entities from memory after flushing their snapshots."""
        now = time.monotonic() if now is None else now
        idle = [
            key
            for key, slot in self._slots.items()
            if not slot.running
            and not slot.mailbox
            and now - slot.last_used >= self._passivate_after
        ]
        if not idle:
            return 0
        await self.flush()
        dropped = 0
        for key in idle:
            slot = self._slots.get(key)
            if (
                slot is not None
                and not slot.running
                and not slot.mailbox
                and key not in self._dirty
            ):
                del self._slots[key]
                dropped += 1
        return dropped

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                self._expire_deferred(time.monotonic())
                await self.flush()
                await self.passivate_idle()
            except Exception:
                log.warning("housekeeping failed; will retry", exc_info=True)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
