"""The event store: CloudEvents kept in MongoDB (FerretDB here) on PyMongo's async API.

One document per event, ``_id`` = the CloudEvent id, in the collection its
Kafka topic routes to (``persistence.outbox.events.collection_for_topic``).

Guarantees: ``insert_events`` is idempotent — inserting an event that is
already stored changes nothing and is not an error — so the outbox relay can
re-deliver freely and MongoDB still holds exactly one document per event.

Retention: ``location_events`` and ``system_logs`` keep events for
``MongoSettings.location_retention_days`` / ``log_retention_days``.
``ensure_indexes`` asks for TTL indexes; FerretDB 1.24 answers
``NotImplemented`` for ``expireAfterSeconds``, so it falls back to a plain
index on ``time`` and retention is enforced by ``purge_expired()`` (run it
periodically, e.g. ``run_retention()``). On real MongoDB the TTL index does
the work and ``purge_expired`` finds nothing to delete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    OperationFailure,
    PyMongoError,
    ServerSelectionTimeoutError,
)

from config.settings import MongoSettings
from persistence.drivers.edge import DriverEdge
from persistence.errors import ConfigurationError, PersistenceError, ServiceUnavailable
from persistence.outbox.events import (
    ALERT_EVENTS,
    COLLECTIONS,
    GEOFENCE_EVENTS,
    LOCATION_EVENTS,
    SYSTEM_LOGS,
    CloudEvent,
    collection_for_topic,
)

log = logging.getLogger(__name__)

_DUPLICATE_KEY = 11000
_NOT_IMPLEMENTED = 238
_UNAUTHORIZED_CODES = frozenset({13, 18})  # Unauthorized, AuthenticationFailed

Document = dict[str, Any]


def translate_error(exc: BaseException) -> PersistenceError:
    """Map a PyMongo exception to the package's errors (use with ``from exc``)."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionFailure | ServerSelectionTimeoutError | OSError):
        return ServiceUnavailable("mongo", detail)
    if isinstance(exc, OperationFailure) and exc.code in _UNAUTHORIZED_CODES:
        return ConfigurationError(f"mongo refused us: {detail}")
    return PersistenceError(f"mongo: {detail}")


#: Maps every PyMongo error leaving a block (``with mongo.EDGE: ...``).
EDGE = DriverEdge((PyMongoError,), translate_error)


#: Indexes every event collection had in earlier versions (by entity over
#: time, by type over time). Those of them a collection no longer gets are
#: obsolete there (:func:`_obsolete_among`): ``ensure_indexes`` drops them.
_EVERY_COLLECTION_BEFORE: Final = ("subject_time", "type_time")
#: Collections of one type of event: ``location_events`` holds only
#: ``location.recorded``, so by type over time is its ``time`` index over again,
#: and each history sample paid for it (~20 % of its insert here).
_SINGLE_TYPE: Final = frozenset({LOCATION_EVENTS})


def _indexes_for(collection: str) -> list[IndexModel]:
    """Indexes an event collection gets: by entity over time, and by type over
    time where it holds more than one type."""
    indexes = []
    # geofence_events' subject_time_id (below) begins with subject and time:
    # subject_time would be that index over again, paid by every geofence event.
    if collection != GEOFENCE_EVENTS:
        indexes.append(
            IndexModel([("subject", ASCENDING), ("time", DESCENDING)], name="subject_time")
        )
    if collection not in _SINGLE_TYPE:
        indexes.append(IndexModel([("type", ASCENDING), ("time", DESCENDING)], name="type_time"))
    if collection == ALERT_EVENTS:
        # Notifications and responses keyed by alert but about another subject.
        indexes.append(
            IndexModel([("partitionkey", ASCENDING), ("time", ASCENDING)], name="key_time")
        )
    if collection == GEOFENCE_EVENTS:
        # GET /geofencing/events: oldest first by (time, _id), by subject, by
        # zone, or all (persistence.stores.geofence_events). FerretDB 1.24 accepts
        # them but sorts in memory; MongoDB walks them in order.
        indexes += [
            IndexModel(
                [("subject", ASCENDING), ("time", ASCENDING), ("_id", ASCENDING)],
                name="subject_time_id",
            ),
            IndexModel(
                [("data.zone_id", ASCENDING), ("time", ASCENDING), ("_id", ASCENDING)],
                name="zone_time_id",
            ),
            IndexModel([("time", ASCENDING), ("_id", ASCENDING)], name="time_id"),
        ]
    return indexes


def _obsolete_among(wanted: Sequence[IndexModel]) -> tuple[str, ...]:
    """The indexes an earlier version made on a collection that it no longer gets,
    ``wanted`` being what it gets (``_indexes_for``)."""
    names = {index.document["name"] for index in wanted}
    return tuple(name for name in _EVERY_COLLECTION_BEFORE if name not in names)


class EventStore:
    """Append-only store of CloudEvents, one collection per kind of event.

    Thread-compatible with one event loop (PyMongo's async client is bound to
    the loop it is first used on).
    """

    def __init__(
        self,
        settings: MongoSettings,
        *,
        database: str | None = None,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(
            settings.uri(),
            tz_aware=True,
            uuidRepresentation="standard",
            connectTimeoutMS=settings.server_selection_timeout_ms,
            maxPoolSize=20,
        )
        self.database_name = database or settings.database
        self._db = self._client[self.database_name]
        self._routes = dict(routes or {})
        #: Collection -> retention; filled in by the settings.
        self.retention: dict[str, timedelta] = {
            LOCATION_EVENTS: timedelta(days=settings.location_retention_days),
            SYSTEM_LOGS: timedelta(days=settings.log_retention_days),
        }
        #: Whether the server accepted TTL indexes (None until ensure_indexes ran).
        self.ttl_supported: bool | None = None

    def collection_for(self, topic: str) -> str:
        """Where events of ``topic`` are stored (``KeyError`` for an unrouted topic)."""
        return collection_for_topic(topic, self._routes)

    async def ping(self) -> None:
        """Round trip to the server; ``ServiceUnavailable("mongo")`` if it cannot be reached."""
        with EDGE:
            await self._client.admin.command("ping")

    async def close(self) -> None:
        await self._client.close()

    async def ensure_indexes(self) -> None:
        """Create the seed's collections and their indexes. Idempotent.

        Retention collections get a TTL index on ``time`` where the server
        supports it; otherwise a plain ``time`` index serving ``purge_expired``.
        """
        with EDGE:
            existing = set(await self._db.list_collection_names())
            for name in COLLECTIONS:
                if name not in existing:
                    await self._db.create_collection(name)
                indexes = _indexes_for(name)
                await self._reconcile(name, indexes, _obsolete_among(indexes))
            for name, keep in self.retention.items():
                await self._ensure_retention_index(name, keep)
        log.info(
            "event store %s ready (TTL indexes %s)",
            self.database_name,
            "used" if self.ttl_supported else "unsupported: purge_expired() enforces retention",
        )

    async def _reconcile(
        self, name: str, indexes: list[IndexModel], obsolete: Sequence[str] = ()
    ) -> None:
        """Create the missing ``indexes`` of collection ``name`` and drop the
        ``obsolete`` ones it has, from one listing of its indexes."""
        present = set(await self._db[name].index_information())
        # Only missing indexes, one per command: FerretDB 1.24 drops the
        # connection (a server-side panic) on a createIndexes listing several
        # indexes that all exist already.
        for index in indexes:
            if index.document["name"] not in present:
                await self._db[name].create_indexes([index])
        for index_name in obsolete:
            if index_name in present:
                await self._db[name].drop_index(index_name)
                log.info("event store: index %s of %s dropped (no longer used)", index_name, name)

    async def _ensure_retention_index(self, name: str, keep: timedelta) -> None:
        if self.ttl_supported is not False:
            ttl = IndexModel(
                [("time", ASCENDING)],
                name="time_ttl",
                expireAfterSeconds=int(keep.total_seconds()),
            )
            try:
                await self._reconcile(name, [ttl])
                self.ttl_supported = True
                return
            except OperationFailure as exc:
                if exc.code != _NOT_IMPLEMENTED:
                    raise
                log.warning("mongo server has no TTL indexes (%s); using purge_expired()", exc)
                self.ttl_supported = False
        await self._reconcile(name, [IndexModel([("time", ASCENDING)], name="time")])

    async def insert_events(self, events: Sequence[tuple[str, CloudEvent]]) -> int:
        """Store ``(topic, event)`` pairs; return how many were new.

        Idempotent: events already stored (same id) are skipped, not errors,
        and the rest of the batch is still written (unordered inserts).
        Raises ``ServiceUnavailable("mongo")`` when the server is unreachable;
        after a failure, calling again with the same events is safe.
        """
        by_collection: dict[str, list[Document]] = {}
        for topic, event in events:
            try:
                name = self.collection_for(topic)
            except KeyError as exc:
                raise PersistenceError(str(exc.args[0])) from exc
            by_collection.setdefault(name, []).append(event.to_document(topic))
        results = await asyncio.gather(
            *(self._insert(name, docs) for name, docs in by_collection.items())
        )
        return sum(results)

    async def _insert(self, name: str, docs: list[Document]) -> int:
        with EDGE:
            try:
                result = await self._db[name].insert_many(docs, ordered=False)
                return len(result.inserted_ids)
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                others = [e for e in errors if e.get("code") != _DUPLICATE_KEY]
                if others:
                    raise PersistenceError(
                        f"mongo rejected {len(others)} events in {name}: {others[0].get('errmsg')}"
                    ) from exc
                inserted = int(exc.details.get("nInserted", 0))
                log.debug("%s: %s duplicates skipped, %s inserted", name, len(errors), inserted)
                return inserted

    async def find_events(
        self,
        collection: str,
        *,
        subject: str | None = None,
        event_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[CloudEvent]:
        """Events of one collection, oldest first, filtered by subject/type/time range."""
        query: Document = {}
        if subject is not None:
            query["subject"] = subject
        if event_type is not None:
            query["type"] = event_type
        if since is not None or until is not None:
            window: Document = {}
            if since is not None:
                window["$gte"] = since
            if until is not None:
                window["$lt"] = until
            query["time"] = window
        with EDGE:
            cursor = self._db[collection].find(query).sort("time", ASCENDING).limit(limit)
            return [CloudEvent.from_document(doc) async for doc in cursor]

    async def find_documents(
        self,
        collection: str,
        query: Document,
        *,
        sort: Sequence[tuple[str, int]],
        limit: int,
    ) -> list[Document]:
        """Raw documents of one collection, for read models that decode their own ``data``.

        Read-only; ``ServiceUnavailable("mongo")`` when the server is unreachable.
        """
        with EDGE:
            cursor = self._db[collection].find(query).sort(list(sort)).limit(limit)
            return [doc async for doc in cursor]

    async def get_event(self, collection: str, event_id: str) -> CloudEvent | None:
        """One event by id, or None."""
        with EDGE:
            doc = await self._db[collection].find_one({"_id": event_id})
        return None if doc is None else CloudEvent.from_document(doc)

    async def count(self, collection: str, query: Document | None = None) -> int:
        with EDGE:
            return await self._db[collection].count_documents(query or {})

    async def purge_expired(self, now: datetime | None = None) -> dict[str, int]:
        """Delete events older than their collection's retention. Idempotent.

        Returns deleted counts per collection. Cheap to run often; needed
        where TTL indexes are not supported (FerretDB 1.x).
        """
        now = now or datetime.now(UTC)
        deleted: dict[str, int] = {}
        with EDGE:
            for name, keep in self.retention.items():
                result = await self._db[name].delete_many({"time": {"$lt": now - keep}})
                deleted[name] = result.deleted_count
        if any(deleted.values()):
            log.info("event store retention: deleted %s", deleted)
        return deleted

    async def run_retention(self, interval_s: float = 3600.0, first_after_s: float = 0.0) -> None:
        """Call ``purge_expired`` every ``interval_s`` until cancelled; errors are logged.

        The first call waits ``first_after_s``: on FerretDB a purge scans the
        whole collection, and a process that has just started (or restarted
        under load) should not spend its first minutes on that.
        """
        await asyncio.sleep(first_after_s)
        while True:
            try:
                await self.purge_expired()
            except PersistenceError as exc:
                log.warning("event store retention failed, will retry: %s", exc)
            await asyncio.sleep(interval_s)
