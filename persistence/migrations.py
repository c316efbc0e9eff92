"""Versioned SQL migrations for PostgreSQL.

Files live in ``persistence/migrations/`` and are named ``NNNN_name.sql``
(four-digit version, lowercase snake-case name). Each is applied once, in
version order, in its own transaction, and recorded in
``schema_migrations(version, name, checksum, applied_at)``.

Guarantees:

* **Idempotent** — applying again is a no-op that returns ``[]``.
* **Safe to run concurrently** — every runner takes one session-level
  advisory lock first, so two processes starting at once apply each file
  exactly once; the second sees the first's work and applies nothing.
* **Tamper-evident** — the SHA-256 of every applied file is recorded; if an
  applied file's content changes later, ``apply_migrations`` raises
  ``MigrationError`` before applying anything.
* **All-or-nothing per file** — a failing file is rolled back entirely and
  nothing after it is attempted.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from persistence.drivers import postgres
from persistence.drivers.postgres import Connection
from persistence.errors import MigrationError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

#: Key of the advisory lock serialising migration runners. Arbitrary but fixed:
#: the first 8 bytes of sha256("panic_alert.schema_migrations") as a signed bigint.
LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"panic_alert.schema_migrations").digest()[:8], "big", signed=True
)

#: Per-file statement timeout (the pool's command_timeout is for OLTP queries).
MIGRATION_TIMEOUT_S = 600.0

_FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: its version, name, SQL text and content checksum."""

    version: str
    name: str
    sql: str
    checksum: str

    @property
    def filename(self) -> str:
        return f"{self.version}_{self.name}.sql"


def checksum(sql: str) -> str:
    """SHA-256 hex of the SQL, line endings normalised.

    Normalising CRLF keeps a checkout with ``core.autocrlf`` from looking like
    an edited migration; any other byte change is detected.
    """
    return hashlib.sha256(sql.replace("\r\n", "\n").encode("utf-8")).hexdigest()


def parse_filename(filename: str) -> tuple[str, str]:
    """``"0001_initial.sql"`` -> ``("0001", "initial")``; ``MigrationError`` otherwise."""
    match = _FILENAME.match(filename)
    if match is None:
        raise MigrationError(f"migration file {filename!r} is not named NNNN_lower_snake_name.sql")
    return match["version"], match["name"]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``*.sql`` file of ``directory``, sorted by version.

    A misnamed ``.sql`` file or two files with one version raise
    ``MigrationError``: silently skipping either would leave a schema change
    unapplied. Files not ending in ``.sql`` are ignored.
    """
    if not directory.is_dir():
        raise MigrationError(f"migrations directory {directory} does not exist")
    found: dict[str, Migration] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix != ".sql" or not path.is_file():
            continue
        version, name = parse_filename(path.name)
        if version in found:
            raise MigrationError(
                f"two migrations share version {version}: {found[version].filename} and {path.name}"
            )
        sql = path.read_text(encoding="utf-8")
        found[version] = Migration(version=version, name=name, sql=sql, checksum=checksum(sql))
    return [found[v] for v in sorted(found)]


def plan(migrations: list[Migration], applied: dict[str, str]) -> list[Migration]:
    """The migrations still to apply, given ``applied`` = {version: checksum}.

    Raises ``MigrationError`` if an applied file's checksum changed. Versions
    recorded in the database but absent from ``migrations`` (a newer release
    migrated this database) are logged, not refused, so an older replica can
    still start during a rolling deploy.
    """
    by_version = {m.version: m for m in migrations}
    for version, recorded in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            log.warning("database has migration %s that this code does not know", version)
            continue
        if migration.checksum != recorded:
            raise MigrationError(
                f"migration {migration.filename} was changed after it was applied "
                f"(recorded checksum {recorded[:12]}..., file now {migration.checksum[:12]}...); "
                "add a new migration instead of editing an applied one"
            )
    return [m for m in migrations if m.version not in applied]


async def _lock(conn: Connection, timeout_s: float) -> None:
    # Try-lock in a loop rather than pg_advisory_lock: a blocked call would
    # run into the pool's command_timeout with an unhelpful error.
    deadline = time.monotonic() + timeout_s
    while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        if time.monotonic() >= deadline:
            raise MigrationError(
                f"another process held the migration lock for over {timeout_s:.0f}s",
                retriable=True,
            )
        await asyncio.sleep(0.2)


async def apply_migrations(
    pool: asyncpg.Pool,
    *,
    migrations: list[Migration] | None = None,
    lock_timeout_s: float = 120.0,
) -> list[str]:
    """Bring the database schema up to date; return the versions newly applied.

    Idempotent and safe to call from several processes at once (see module
    docstring). ``migrations`` defaults to the files shipped in
    ``persistence/migrations/``.
    """
    todo_source = discover() if migrations is None else migrations
    applied_now: list[str] = []
    with postgres.EDGE:  # a MigrationError passes unchanged
        async with pool.acquire() as conn:
            await _lock(conn, lock_timeout_s)
            try:
                await conn.execute(_CREATE_TABLE)
                rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
                pending = plan(todo_source, {r["version"]: r["checksum"] for r in rows})
                for migration in pending:
                    await _apply_one(conn, migration)
                    applied_now.append(migration.version)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    if applied_now:
        log.info("applied migrations: %s", ", ".join(applied_now))
    else:
        log.info("schema up to date")
    return applied_now


async def pending_versions(
    pool: asyncpg.Pool, *, migrations: list[Migration] | None = None
) -> list[str]:
    """Versions shipped with this code that the database has not applied (read-only)."""
    shipped = discover() if migrations is None else migrations
    with postgres.EDGE:
        exists = await pool.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
        rows = await pool.fetch("SELECT version FROM schema_migrations") if exists else []
    applied = {r["version"] for r in rows}
    return [m.version for m in shipped if m.version not in applied]


async def _apply_one(conn: Connection, migration: Migration) -> None:
    log.info("applying migration %s", migration.filename)
    started = time.perf_counter()
    try:
        async with conn.transaction():
            # Schema changes may legitimately outlast the pool's command_timeout.
            await conn.execute(migration.sql, timeout=MIGRATION_TIMEOUT_S)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"migration {migration.filename} failed: {exc}") from exc
    log.info(
        "applied migration %s in %.0f ms",
        migration.filename,
        (time.perf_counter() - started) * 1000,
    )
