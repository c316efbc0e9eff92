"""The errors a port to a backing service raises, declared below every adapter.

``persistence`` implements the ports that ``actors`` (the entity store),
``cluster`` and ``gateway`` declare, and raises only these: driver exceptions
(asyncpg, PyMongo, redis-py, aiokafka) never leave an adapter, each is mapped
at the adapter's edge (``persistence.drivers.edge``). They live here, in the
domain, because they cross processes: a shard's failed commit reaches the
gateway through ``EntityClient.ask``, and the gateway, which imports no
adapter, maps them to HTTP statuses and close codes in one place.
``persistence.errors`` re-exports them under their old names.

Every error says whether retrying the same operation may succeed
(``retriable``).
"""

from __future__ import annotations

from typing import Literal

#: ``objects``: the media object store (a directory or an S3-compatible bucket).
Service = Literal["postgres", "mongo", "redis", "kafka", "objects"]


class PersistenceError(Exception):
    """Root of every error raised by ``persistence``.

    ``retriable`` is True when the same call may succeed later unchanged
    (a service was down, a lock was busy); False when retrying is pointless
    (bad data, a conflicting row, a broken migration).
    """

    retriable: bool = False

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable


class ServiceUnavailable(PersistenceError):
    """A backing service cannot be reached or did not answer in time."""

    retriable = True

    def __init__(self, service: Service, detail: str = "") -> None:
        self.service: Service = service
        message = f"{service} is unavailable" + (f": {detail}" if detail else "")
        super().__init__(message)


class SchemaNotMigrated(ServiceUnavailable):
    """PostgreSQL answers but its schema is behind this build: ``panic-alert
    migrate`` (``scripts/run`` runs it) has not run yet. ``detail`` says how it
    showed (the versions pending, or the table missing)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            "postgres", f"the database schema is not migrated (panic-alert migrate): {detail}"
        )


class ConfigurationError(PersistenceError):
    """The service answered but refused us: bad credentials, unknown database, ..."""

    retriable = False


class MigrationError(PersistenceError):
    """The schema cannot be brought up to date (bad file, changed checksum, failed SQL)."""

    retriable = False


class Conflict(PersistenceError):
    """A write collided with existing data (unique key, concurrent update)."""

    retriable = False


class NotFound(PersistenceError):
    """What the caller named by key is not there (an object-store key that was
    never written, or was deleted). Not retriable: the same call finds nothing."""

    retriable = False


class EncodingError(PersistenceError):
    """A message could not be encoded or decoded (for example a malformed CloudEvent)."""

    retriable = False


class PublishError(PersistenceError):
    """Kafka accepted the connection but did not acknowledge every message.

    Retriable: with an idempotent producer a re-publish of the same events is
    safe, and consumers dedupe by event id.
    """

    retriable = True


class GeometryRejected(PersistenceError):
    """PostGIS refused a geometry that passed validation. Not retriable: a 422."""

    public_detail = "The database cannot store this geometry."


class InvalidCursor(ValueError):
    """A pagination cursor this API did not issue (malformed or tampered)."""
