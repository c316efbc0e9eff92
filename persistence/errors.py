"""The one error root of the persistence package, under its old names.

The classes are declared with the ports the adapters implement
(``actors.store_errors``), so code that imports no adapter (the gateway) can
catch and map them; adapters raise them only through
``persistence.drivers.edge``.
"""

from __future__ import annotations

from actors.store_errors import (
    ConfigurationError,
    Conflict,
    EncodingError,
    GeometryRejected,
    MigrationError,
    NotFound,
    PersistenceError,
    PublishError,
    SchemaNotMigrated,
    Service,
    ServiceUnavailable,
)

__all__ = [
    "ConfigurationError",
    "Conflict",
    "EncodingError",
    "GeometryRejected",
    "MigrationError",
    "NotFound",
    "PersistenceError",
    "PublishError",
    "SchemaNotMigrated",
    "Service",
    "ServiceUnavailable",
]
