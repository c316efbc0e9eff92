"""The ``panic-alert`` command, run as a subprocess against the real local services.

``serve`` runs on free ports with an embedded Ray; ``migrate`` and
``create-admin`` run against a scratch database created (and dropped) here.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest

from config.settings import Settings
from gateway.auth.passwords import PasswordHasher
from persistence.drivers.mongo import EventStore
from persistence.drivers.postgres import create_pool
from persistence.outbox.writer import OutboxEvent
from tests.integration.persistence.helpers import write_outbox
from tests.local import PANIC_ALERT, cli_env, free_port, wait_for
from tests.scratch import drop_database, drop_mongo_database

pytestmark = pytest.mark.integration

ADMIN_PASSWORD = "a-long-admin-passphrase-42"


def run_cli(
    *args: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PANIC_ALERT, *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=timeout,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_runs_gateway_and_ray_dashboard_then_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals, migrated_db: str
) -> None:
    http_port, dashboard_port = free_port(), free_port()
    env = cli_env(
        PANIC_POSTGRES__DATABASE=migrated_db,
        PANIC_HTTP__PORT=str(http_port),
        PANIC_RAY__DASHBOARD_PORT=str(dashboard_port),
        PANIC_RAY__NUM_CPUS="1",
    )
    log_path = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{http_port}"
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [PANIC_ALERT, "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            healthz = wait_for(
                f"{base}/healthz", lambda r: r.status_code == 200, deadline_s=120, proc=proc
            )
            assert healthz is not None, log_path.read_text()[-3000:]
            assert healthz.json() == {"status": "ok"}
            assert healthz.headers["x-request-id"]

            readyz = wait_for(
                f"{base}/readyz", lambda r: r.status_code == 200, deadline_s=60, proc=proc
            )
            assert readyz is not None, log_path.read_text()[-3000:]
            assert readyz.json() == {
                "status": "ready",
                "checks": {
                    "postgres": "ok",
                    "redis": "ok",
                    "mongo": "ok",
                    "kafka": "ok",
                    "ray": "ok",
                },
            }

            health = wait_for(
                f"{dashboard}/api/gcs_healthz",
                lambda r: r.status_code == 200,
                deadline_s=30,
                proc=proc,
            )
            assert health is not None, "ray dashboard did not answer"
            page = httpx.get(f"{dashboard}/", timeout=5)
            assert page.status_code == 200
            assert "<html" in page.text.lower()

            metrics = httpx.get(f"{base}/metrics", timeout=5)
            assert 'route="/readyz"' in metrics.text

            # serve runs the outbox relay (in a Ray actor): a committed row goes out.
            assert asyncio.run(_relayed(migrated_db, deadline_s=60)), "outbox row not relayed"

            proc.send_signal(stop_signal)
            returncode = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
    output = log_path.read_text()
    assert returncode == 0, output[-3000:]
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    messages = [r["message"] for r in records]
    assert any(m.startswith("ray embedded") for m in messages)
    assert any(m.startswith("ray shut down") for m in messages)
    assert f"signal {stop_signal.name} received; stopping" in messages
    assert "Traceback" not in output
    access = [r for r in records if r["logger"] == "gateway.access"]
    assert {r["route"] for r in access} >= {"/healthz", "/readyz", "/metrics"}
    # The embedded Ray went away with the process.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{dashboard}/api/gcs_healthz", timeout=3)


async def _relayed(database: str, *, deadline_s: float) -> bool:
    """Commit one outbox row in ``database``; whether a relay marks it sent in time."""
    settings = Settings()
    pool = await create_pool(settings.postgres, database=database)
    try:
        event_id = uuid.uuid4()
        async with pool.acquire() as conn, conn.transaction():
            event = OutboxEvent(
                event_id, "system-events", "cli-serve", "system.check", None, {}, datetime.now(UTC)
            )
            await write_outbox(conn, [event])
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            sql = "SELECT sent_at IS NOT NULL FROM outbox WHERE event_id = $1"
            if await pool.fetchval(sql, event_id):
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await pool.close()


async def _admin_execute(settings: Settings, sql: str) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def scratch_databases(settings: Settings) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Factory of fresh, empty databases (PostGIS comes from template1); all dropped after."""
    created: list[str] = []

    async def create() -> str:
        name = f"panic_cli_test_{uuid.uuid4().hex[:12]}"
        await _admin_execute(settings, f'CREATE DATABASE "{name}"')
        created.append(name)
        return name

    try:
        yield create
    finally:
        for name in created:
            await drop_database(settings, name)


@pytest.fixture(scope="module")
async def migrated_db(scratch_databases: Callable[[], Awaitable[str]]) -> str:
    name = await scratch_databases()
    result = await asyncio.to_thread(run_cli, "migrate", env=cli_env(PANIC_POSTGRES__DATABASE=name))
    assert result.returncode == 0, result.stderr
    return name


@pytest.fixture
def migrated_env(migrated_db: str) -> dict[str, str]:
    return cli_env(PANIC_POSTGRES__DATABASE=migrated_db)


async def test_migrate_twice_applies_once(
    settings: Settings, scratch_databases: Callable[[], Awaitable[str]]
) -> None:
    name = await scratch_databases()
    env = cli_env(PANIC_POSTGRES__DATABASE=name)
    first = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied ")
    assert "0001" in first.stdout
    assert name in first.stdout

    second = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert "no migration applied" in second.stdout
    assert "0001" not in second.stdout

    conn = await asyncpg.connect(settings.postgres.dsn(name))
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        users_table = await conn.fetchval("SELECT to_regclass('public.users')::text")
    finally:
        await conn.close()
    recorded = [r["version"] for r in rows]
    assert recorded[0] == "0001"
    assert first.stdout.count(",") + 1 == len(recorded)
    assert users_table == "users"


async def test_create_admin_then_duplicate_is_a_clear_error(
    settings: Settings, migrated_env: dict[str, str], migrated_db: str
) -> None:
    created = await asyncio.to_thread(
        run_cli,
        "create-admin",
        "--email",
        "Ada.Admin@Example.org",
        "--full-name",
        "Ada Admin",
        "--password-stdin",
        env=migrated_env,
        stdin=ADMIN_PASSWORD + "\n",
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin ")
    account_id = uuid.UUID(created.stdout.split()[2])
    assert ADMIN_PASSWORD not in created.stdout + created.stderr

    conn = await asyncpg.connect(settings.postgres.dsn(migrated_db))
    try:
        row = await conn.fetchrow(
            "SELECT email, full_name, role, password_hash, disabled FROM users WHERE id = $1",
            account_id,
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["email"] == "ada.admin@example.org"
    assert row["full_name"] == "Ada Admin"
    assert row["role"] == "admin"
    assert row["disabled"] is False
    auth = settings.auth
    assert row["password_hash"].startswith(
        f"$argon2id$v=19$m={auth.argon2_memory_kib},t={auth.argon2_time_cost},"
        f"p={auth.argon2_parallelism}$"
    )
    assert PasswordHasher(auth).verify(row["password_hash"], ADMIN_PASSWORD)

    duplicate = await asyncio.to_thread(
        run_cli,
        "create-admin",
        "--email",
        "ada.admin@EXAMPLE.org",
        "--full-name",
        "Someone Else",
        "--password-stdin",
        env=migrated_env,
        stdin="another-long-passphrase\n",
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    assert "ada.admin@example.org" in duplicate.stderr
    assert "Traceback" not in duplicate.stderr
    assert duplicate.stdout == ""


async def test_create_admin_if_no_admin_creates_only_the_first(
    scratch_databases: Callable[[], Awaitable[str]],
) -> None:
    name = await scratch_databases()
    env = cli_env(PANIC_POSTGRES__DATABASE=name)
    migrated = await asyncio.to_thread(run_cli, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr

    def first(email: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "create-admin",
            "--if-no-admin",
            "--email",
            email,
            "--full-name",
            "First Administrator",
            "--password-stdin",
            env=env,
            stdin=ADMIN_PASSWORD + "\n",
        )

    created = await asyncio.to_thread(first, "first@example.org")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("created admin ")
    again = await asyncio.to_thread(first, "second@example.org")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "an administrator exists already; none created"


def test_create_admin_refuses_a_short_password(migrated_env: dict[str, str]) -> None:
    result = run_cli(
        "create-admin",
        "--email",
        "short@example.org",
        "--full-name",
        "Short",
        "--password-stdin",
        env=migrated_env,
        stdin="short\n",
    )
    assert result.returncode == 2
    assert "at least 12 characters" in result.stderr


def test_create_admin_without_a_terminal_asks_for_password_stdin(
    migrated_env: dict[str, str],
) -> None:
    result = run_cli(
        "create-admin", "--email", "x@example.org", "--full-name", "X", env=migrated_env
    )
    assert result.returncode == 2
    assert "--password-stdin" in result.stderr


def test_password_is_not_accepted_as_an_argument(migrated_env: dict[str, str]) -> None:
    result = run_cli(
        "create-admin",
        "--email",
        "x@example.org",
        "--full-name",
        "X",
        "--password",
        ADMIN_PASSWORD,
        env=migrated_env,
    )
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_invalid_configuration_exits_2_without_leaking_secrets() -> None:
    env = cli_env(PANIC_PROFILE="prod", PANIC_HTTP__PORT="not-a-port")
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "http.port" in result.stderr
    assert "Traceback" not in result.stderr
    assert "panic-dev-password" not in result.stderr

    env = cli_env(PANIC_PROFILE="prod")
    result = run_cli("migrate", env=env)
    assert result.returncode == 2
    assert "postgres.password" in result.stderr
    assert "panic-dev-password" not in result.stderr


async def test_relay_drain_relays_what_is_committed_and_exits(
    settings: Settings, migrated_db: str
) -> None:
    mongo_db = f"panic_cli_drain_{uuid.uuid4().hex[:8]}"
    env = cli_env(PANIC_POSTGRES__DATABASE=migrated_db, PANIC_MONGO__DATABASE=mongo_db)
    pool = await create_pool(settings.postgres, database=migrated_db)
    store = EventStore(settings.mongo, database=mongo_db)
    try:
        # Rows other tests left unsent in this database are relayed too: count ours.
        before = await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        events = [
            OutboxEvent(
                uuid.uuid4(),
                "system-events",
                "cli-drain",
                "system.check",
                None,
                {"n": n},
                datetime.now(UTC),
            )
            for n in range(3)
        ]
        async with pool.acquire() as conn, conn.transaction():
            await write_outbox(conn, events)
        result = await asyncio.to_thread(run_cli, "relay", "--drain", env=env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"relayed {before + 3} outbox event(s)"
        for event in events:
            sent = await pool.fetchval(
                "SELECT sent_at FROM outbox WHERE event_id = $1", event.event_id
            )
            assert sent is not None
            assert await store.count("system_logs", {"_id": str(event.event_id)}) == 1
        # Nothing left: a second drain relays nothing and still exits 0.
        again = await asyncio.to_thread(run_cli, "relay", "--drain", env=env)
        assert (again.returncode, again.stdout.strip()) == (0, "relayed 0 outbox event(s)")
    finally:
        await pool.close()
        await store.close()
        await drop_mongo_database(settings, mongo_db)


async def test_relay_drain_with_kafka_unreachable_exits_1(migrated_db: str) -> None:
    env = cli_env(
        PANIC_POSTGRES__DATABASE=migrated_db, PANIC_KAFKA__BOOTSTRAP_SERVERS="127.0.0.1:1"
    )
    result = await asyncio.to_thread(run_cli, "relay", "--drain", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "relay --drain failed" in result.stderr
    assert "Traceback" not in result.stderr


async def test_relay_command_publishes_committed_outbox_rows(
    settings: Settings, migrated_db: str
) -> None:
    mongo_db = f"panic_cli_relay_{uuid.uuid4().hex[:8]}"
    env = cli_env(PANIC_POSTGRES__DATABASE=migrated_db, PANIC_MONGO__DATABASE=mongo_db)
    proc = await asyncio.create_subprocess_exec(
        PANIC_ALERT,
        "relay",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    pool = await create_pool(settings.postgres, database=migrated_db)
    store = EventStore(settings.mongo, database=mongo_db)
    try:
        event_id = uuid.uuid4()
        async with pool.acquire() as conn, conn.transaction():
            await write_outbox(
                conn,
                [
                    OutboxEvent(
                        event_id,
                        "system-events",
                        "cli-test",
                        "system.check",
                        None,
                        {"n": 1},
                        datetime.now(UTC),
                    )
                ],
            )
        sent = None
        deadline = time.monotonic() + 60
        while sent is None and time.monotonic() < deadline:
            assert proc.returncode is None, "relay exited early"
            sent = await pool.fetchval("SELECT sent_at FROM outbox WHERE event_id = $1", event_id)
            await asyncio.sleep(0.2)
        assert sent is not None, "the relay did not publish the row"
        assert await store.count("system_logs", {"_id": str(event_id)}) == 1
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()[-3000:]
        assert b"Traceback" not in output
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await pool.close()
        await store.close()
        await drop_mongo_database(settings, mongo_db)
