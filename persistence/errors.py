"""The one error root of the persistence package.

Driver exceptions (asyncpg, PyMongo, redis-py, aiokafka) never leave an
adapter: each adapter translates them at its edge with
``raise SomePersistenceError(...) from exc``, so callers depend on this module
only. Every error says whether retrying the same operation may succeed
(``retriable``); the gateway maps these to HTTP statuses in one place.
"""

from __future__ import annotations

from typing import Literal

Service = Literal["postgres", "mongo", "redis", "kafka"]


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


class ConfigurationError(PersistenceError):
    """The service answered but refused us: bad credentials, unknown database, ..."""

    retriable = False


class MigrationError(PersistenceError):
    """The schema cannot be brought up to date (bad file, changed checksum, failed SQL)."""

    retriable = False


class Conflict(PersistenceError):
    """A write collided with existing data (unique key, concurrent update)."""

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
