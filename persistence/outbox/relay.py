"""The outbox's relaying side: committed events delivered, at least once.

Writers (``persistence.outbox.writer``) commit events with the state they
describe. ``OutboxRelay`` moves committed rows to Kafka and to the MongoDB event
store and marks them sent.

Guarantees:

* **Nothing is lost.** A row is marked sent only after Kafka acknowledged it
  (``acks=all``) *and* MongoDB stored it. Until then it stays unsent and is
  retried, across Kafka/MongoDB outages and relay crashes.
* **At-least-once to Kafka.** A relay that dies after publishing but before
  marking sent leaves the row to be published again; consumers dedupe by
  the CloudEvent id (= ``event_id``).
* **Exactly one MongoDB document per event.** The document ``_id`` is the
  event id and duplicate inserts are ignored.
* **Several relays may run.** Rows are claimed with ``FOR UPDATE SKIP
  LOCKED`` and a ``claimed_at`` stamp; a claim whose relay died is taken
  over after ``claim_timeout_s``.
* **Order.** Rows are claimed and published in id (insertion) order, so with
  one relay the events of one key reach Kafka in the order they were
  written. A retried batch may arrive after later ones (at-least-once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import asyncpg

from config.settings import OutboxSettings
from persistence.drivers import postgres
from persistence.errors import PersistenceError, ServiceUnavailable
from persistence.outbox.events import CloudEvent

log = logging.getLogger(__name__)

CHANNEL = "outbox"


class PendingPublish(Protocol):
    """Acknowledgements still to come for one batch handed to Kafka."""

    async def wait(self) -> Sequence[Any]: ...


class EventPublisher(Protocol):
    """What the relay needs from Kafka (``persistence.drivers.kafka.KafkaPublisher``).

    ``enqueue_many`` must keep call order per key across calls: that is what
    lets the relay pipeline batches without reordering an entity's events.
    """

    async def enqueue_many(self, items: Sequence[tuple[str, CloudEvent]]) -> PendingPublish: ...

    async def ping(self) -> None: ...


class EventSink(Protocol):
    """What the relay needs from the event store (``persistence.drivers.mongo.EventStore``)."""

    async def insert_events(self, events: Sequence[tuple[str, CloudEvent]]) -> int: ...

    async def ping(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """An outbox row claimed by a relay, ready to deliver."""

    id: int
    topic: str
    event: CloudEvent


_CLAIM = """
WITH picked AS (
    SELECT id FROM outbox
     WHERE sent_at IS NULL
       AND (claimed_at IS NULL OR claimed_at < now() - make_interval(secs => $2))
     ORDER BY id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE outbox o
   SET claimed_at = now(), attempts = o.attempts + 1
  FROM picked
 WHERE o.id = picked.id
RETURNING o.id, o.event_id, o.topic, o.key, o.type, o.source, o.subject, o.time, o.data
"""

_MARK_SENT = """
UPDATE outbox SET sent_at = now(), last_error = NULL
 WHERE id = ANY($1::bigint[]) AND sent_at IS NULL
"""

_RELEASE = """
UPDATE outbox SET claimed_at = NULL, last_error = $2
 WHERE id = ANY($1::bigint[]) AND sent_at IS NULL
"""

_PURGE_SENT = "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)"


def _to_claimed(row: asyncpg.Record) -> ClaimedRow:
    # model_construct skips validation: the row was validated when enqueued
    # and validating 500 events per batch costs more than relaying them.
    event = CloudEvent.model_construct(
        id=str(row["event_id"]),
        source=row["source"],
        type=row["type"],
        subject=row["subject"],
        time=row["time"],
        partitionkey=row["key"],
        data=row["data"],
    )
    return ClaimedRow(id=row["id"], topic=row["topic"], event=event)


async def purge_sent(pool: asyncpg.Pool, older_than: timedelta) -> int:
    """Delete rows sent more than ``older_than`` ago; returns how many. Idempotent."""
    with postgres.EDGE:
        status = await pool.execute(_PURGE_SENT, older_than.total_seconds())
    return int(status.rsplit(" ", 1)[-1])


@dataclass
class _Backoff:
    ceiling_s: float
    floor_s: float = 0.1
    failures: int = field(default=0)

    def next_delay(self) -> float:
        self.failures += 1
        delay = min(self.ceiling_s, self.floor_s * 2 ** (self.failures - 1))
        return float(delay * random.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.failures = 0


class OutboxRelay:
    """Moves committed outbox rows to Kafka and the event store.

    ``run()`` loops until ``stop()``. It keeps up to ``pipeline_depth``
    batches in flight: each batch is claimed and queued to the Kafka producer
    in id order (so per-key order holds), then its acknowledgements and its
    MongoDB write complete in the background and the rows are marked sent.
    With nothing to do it sleeps until a ``NOTIFY outbox`` (sent on commit of
    any insert), then ``linger_s`` more to gather what commits meanwhile, or
    until ``poll_interval_s``. When Kafka or MongoDB fails it lets
    the batches in flight finish, releases what failed, logs, and backs off
    (up to ``max_backoff_s``), pinging the failed service until it answers;
    rows stay unsent meanwhile. Any other error is logged and retried the
    same way: the loop only ends on ``stop()``.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: EventPublisher,
        event_store: EventSink,
        settings: OutboxSettings,
        dsn_for_listen: str | None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._store = event_store
        self._settings = settings
        self._dsn = dsn_for_listen
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._backoff = _Backoff(ceiling_s=settings.max_backoff_s)
        self._last_purge = 0.0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None
        #: Counters for metrics and tests.
        self.sent = 0
        self.failures = 0

    # ---------------------------------------------------------------- steps
    async def claim(self, limit: int | None = None) -> list[ClaimedRow]:
        """Claim up to ``limit`` (default ``batch_size``) unsent rows, oldest first.

        The claim is committed at once (row locks are not held while
        publishing); other relays skip these rows until ``claim_timeout_s``.
        """
        with postgres.EDGE:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    _CLAIM, limit or self._settings.batch_size, self._settings.claim_timeout_s
                )
        return sorted((_to_claimed(r) for r in rows), key=lambda c: c.id)

    async def deliver(self, rows: Sequence[ClaimedRow]) -> None:
        """Publish to Kafka and store in MongoDB; both must succeed.

        Safe to repeat for the same rows (Kafka: duplicate, deduped by
        consumers; MongoDB: no-op). Raises the first failure.
        """
        await self._complete(rows, await self._publisher.enqueue_many(_items(rows)))

    async def _publish(self, rows: Sequence[ClaimedRow]) -> PendingPublish:
        """Queue ``rows`` to Kafka in id order; on failure release them and raise."""
        try:
            return await self._publisher.enqueue_many(_items(rows))
        except Exception as exc:
            self.failures += 1
            await self.release(rows, repr(exc))
            raise

    async def _complete(self, rows: Sequence[ClaimedRow], pending: PendingPublish) -> None:
        # Both writes run to the end even if one fails, so nothing is left
        # half-done in the background when this returns.
        outcomes = await asyncio.gather(
            pending.wait(), self._store.insert_events(_items(rows)), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _finish(self, rows: Sequence[ClaimedRow], pending: PendingPublish) -> None:
        """Wait for Kafka's acknowledgements and the store, then mark the rows sent;
        on failure release them and raise."""
        try:
            await self._complete(rows, pending)
            await self.mark_sent(rows)
        except Exception as exc:
            self.failures += 1
            await self.release(rows, repr(exc))
            raise
        self.sent += len(rows)

    async def mark_sent(self, rows: Sequence[ClaimedRow]) -> None:
        """Mark rows sent. Idempotent (a row keeps its first ``sent_at``)."""
        with postgres.EDGE:
            await self._pool.execute(_MARK_SENT, [r.id for r in rows])

    async def release(self, rows: Sequence[ClaimedRow], error: str) -> None:
        """Give rows back for an immediate retry, recording why. Best effort."""
        try:
            await self._pool.execute(_RELEASE, [r.id for r in rows], error[:1000])
        except postgres.DRIVER_ERRORS:
            # The claim then simply expires after claim_timeout_s.
            log.warning("could not release %s outbox rows; they expire with the claim", len(rows))

    async def drain_once(self) -> int:
        """One batch through the steps ``run()`` pipelines (claim, publish, store,
        mark sent), waited for; returns the rows sent (0 if none).

        On a delivery failure the claim is released and the error re-raised.
        """
        rows = await self.claim()
        if not rows:
            return 0
        await self._finish(rows, await self._publish(rows))
        return len(rows)

    # ---------------------------------------------------------------- loop
    async def run(self) -> None:
        """Relay until ``stop()``. Survives Kafka, MongoDB and PostgreSQL outages."""
        log.info(
            "outbox relay started (batch=%s, pipeline=%s)",
            self._settings.batch_size,
            self._settings.pipeline_depth,
        )
        unhealthy: set[str] = set()
        try:
            while not self._stopping.is_set():
                if self._failure is not None:
                    await self._settle()
                    self._note_failure(self._failure, unhealthy)
                    self._failure = None
                    await self._sleep(self._backoff.next_delay())
                    continue
                if unhealthy and not await self._recovered(unhealthy):
                    await self._sleep(self._backoff.next_delay())
                    continue
                if len(self._in_flight) >= self._settings.pipeline_depth:
                    await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                await self._ensure_listener()
                # Cleared before claiming: a NOTIFY meanwhile still wakes the wait.
                self._wakeup.clear()
                try:
                    claimed = await self._start_batch()
                except Exception as exc:
                    self._note_failure(exc, unhealthy)
                    await self._sleep(self._backoff.next_delay())
                    continue
                if claimed < self._settings.batch_size:
                    await self._maybe_purge()
                    await self._wait_for_work()
        finally:
            await self._settle()
            await self._close_listener()
            log.info("outbox relay stopped (sent=%s failures=%s)", self.sent, self.failures)

    async def stop(self) -> None:
        """Ask ``run()`` to finish the batches in flight and return."""
        self._stopping.set()
        self._wakeup.set()

    async def _start_batch(self) -> int:
        """Claim a batch and queue it to Kafka; finish it in the background."""
        rows = await self.claim()
        if not rows:
            return 0
        pending = await self._publish(rows)
        task = asyncio.create_task(self._finish_batch(rows, pending))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        return len(rows)

    async def _finish_batch(self, rows: Sequence[ClaimedRow], pending: PendingPublish) -> None:
        try:
            await self._finish(rows, pending)
        except Exception as exc:
            if self._failure is None:
                self._failure = exc
            self._wakeup.set()
            return
        self._backoff.reset()

    async def _settle(self) -> None:
        if self._in_flight:
            await asyncio.wait(set(self._in_flight))

    def _note_failure(self, exc: BaseException, unhealthy: set[str]) -> None:
        if isinstance(exc, ServiceUnavailable):
            log.warning("outbox relay: %s; backing off", exc)
            unhealthy.add(exc.service)
        else:
            # Logged with its traceback: not a known outage, maybe a bug.
            log.error("outbox relay: delivery failed; backing off", exc_info=exc)

    async def _recovered(self, unhealthy: set[str]) -> bool:
        checks: dict[str, EventPublisher | EventSink] = {
            "kafka": self._publisher,
            "mongo": self._store,
        }
        for service in sorted(unhealthy):
            target = checks.get(service)
            if target is None:
                continue  # postgres: the next claim is the probe
            try:
                await target.ping()
            except PersistenceError as exc:
                log.info("outbox relay: %s still unavailable: %s", service, exc)
                return False
        unhealthy.clear()
        log.info("outbox relay: services back, resuming")
        return True

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _wait_for_work(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout=self._settings.poll_interval_s)
            if self._settings.linger_s > 0:
                await self._sleep(self._settings.linger_s)

    async def _ensure_listener(self) -> None:
        if self._dsn is None or (self._listener is not None and not self._listener.is_closed()):
            return
        try:
            conn = await postgres.connect(self._dsn)
            await conn.add_listener(CHANNEL, self._on_notify)
        except PersistenceError as exc:
            # Polling still finds the work; LISTEN only makes it prompt.
            log.warning("outbox relay: LISTEN unavailable, polling only: %s", exc)
            return
        self._listener = conn

    def _on_notify(self, *_args: object) -> None:
        self._wakeup.set()

    async def _close_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), timeout=5)
            except postgres.DRIVER_ERRORS:
                conn.terminate()

    async def _maybe_purge(self) -> None:
        retention = self._settings.sent_retention_s
        now = time.monotonic()
        if retention <= 0 or now - self._last_purge < 3600:
            return
        self._last_purge = now
        try:
            purged = await purge_sent(self._pool, timedelta(seconds=retention))
        except PersistenceError as exc:
            log.warning("outbox purge failed: %s", exc)
            return
        if purged:
            log.info("outbox: purged %s sent rows", purged)


def _items(rows: Sequence[ClaimedRow]) -> list[tuple[str, CloudEvent]]:
    return [(r.topic, r.event) for r in rows]
