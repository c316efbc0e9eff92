"""Migrations and the schema they build, on real PostgreSQL + PostGIS."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import asyncpg
import pytest

from config.settings import Settings
from persistence import migrations
from persistence.drivers.postgres import EDGE, connect, create_pool, ping
from persistence.errors import ConfigurationError, MigrationError, ServiceUnavailable

pytestmark = pytest.mark.integration

TABLES = {
    "users",
    "agents",
    "alerts",
    "emergency_contacts",
    "geofence_zones",
    "user_devices",
    "system_config",
    "refresh_tokens",
    "outbox",
    "schema_migrations",
    "agent_invites",
}


async def test_apply_on_empty_database_then_again_is_a_noop(
    settings: Settings, empty_database: str
) -> None:
    shipped = migrations.discover()
    pool = await create_pool(settings.postgres, database=empty_database)
    try:
        assert await migrations.apply_migrations(pool) == [m.version for m in shipped]
        assert await migrations.apply_migrations(pool) == []
        rows = await pool.fetch(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        )
        assert [(r["version"], r["name"], r["checksum"]) for r in rows] == [
            (m.version, m.name, m.checksum) for m in shipped
        ]
        assert rows[0]["name"] == "initial"
    finally:
        await pool.close()


async def test_a_table_not_yet_made_is_postgres_unavailable_not_an_error(
    settings: Settings, empty_database: str
) -> None:
    """Served before ``panic-alert migrate``: every read says so, as a 503 would."""
    pool = await create_pool(settings.postgres, database=empty_database)
    try:
        with pytest.raises(ServiceUnavailable) as info, EDGE:
            await pool.fetchval("SELECT count(*) FROM users")
        assert info.value.service == "postgres"
        assert info.value.retriable is True
        assert "not migrated (panic-alert migrate)" in str(info.value)
    finally:
        await pool.close()


async def test_concurrent_runners_apply_each_file_once(
    settings: Settings, empty_database: str
) -> None:
    pools = [await create_pool(settings.postgres, database=empty_database) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrations.apply_migrations(p) for p in pools))
        shipped = [m.version for m in migrations.discover()]
        assert sorted(results) == [[], [], shipped]
        count = await pools[0].fetchval("SELECT count(*) FROM schema_migrations")
        assert count == len(shipped)
    finally:
        for p in pools:
            await p.close()


async def test_changed_checksum_of_applied_file_is_refused(pool: asyncpg.Pool) -> None:
    shipped = migrations.discover()
    edited = [dataclasses.replace(shipped[0], checksum="0" * 64), *shipped[1:]]
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        await migrations.apply_migrations(pool, migrations=edited)


async def test_failing_migration_rolls_back_and_is_not_recorded(
    settings: Settings, empty_database: str
) -> None:
    shipped = migrations.discover()
    broken_sql = "CREATE TABLE half_done (id int); SELECT no_such_function();"
    broken = migrations.Migration("0099", "broken", broken_sql, migrations.checksum(broken_sql))
    pool = await create_pool(settings.postgres, database=empty_database)
    try:
        with pytest.raises(MigrationError, match=r"0099_broken\.sql failed"):
            await migrations.apply_migrations(pool, migrations=[*shipped, broken])
        versions = await pool.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        assert [r["version"] for r in versions] == [m.version for m in shipped]
        assert await pool.fetchval("SELECT to_regclass('half_done')") is None
    finally:
        await pool.close()


async def test_schema_has_every_table_and_the_gist_indexes(pool: asyncpg.Pool) -> None:
    tables = {
        r["tablename"]
        for r in await pool.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    }
    assert tables >= TABLES
    gist = {
        (r["tablename"], r["indexname"])
        for r in await pool.fetch(
            "SELECT tablename, indexname FROM pg_indexes "
            "WHERE schemaname = 'public' AND indexdef LIKE '%USING gist%'"
        )
    }
    assert {
        ("alerts", "alerts_location_gist"),
        ("agents", "agents_last_location_gist"),
        ("geofence_zones", "geofence_zones_geometry_gist"),
    } <= gist
    partial = await pool.fetchval(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'outbox_unsent_idx'"
    )
    assert "WHERE (sent_at IS NULL)" in partial


async def new_user(
    conn: asyncpg.Connection, email: str | None = None, role: str = "user"
) -> uuid.UUID:
    user_id: uuid.UUID = await conn.fetchval(
        "INSERT INTO users (email, password_hash, full_name, role) "
        "VALUES ($1, 'argon2id$x', 'Test User', $2) RETURNING id",
        email or f"{uuid.uuid4().hex}@example.org",
        role,
    )
    return user_id


async def test_users_email_is_case_insensitively_unique(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        email = f"Mixed.{uuid.uuid4().hex}@Example.org"
        await new_user(conn, email)
        with pytest.raises(asyncpg.UniqueViolationError):
            await new_user(conn, email.lower())
        with pytest.raises(asyncpg.CheckViolationError):
            await new_user(conn, role="root")


async def test_alert_constraints_and_generated_location(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user_id = await new_user(conn)
        row = await conn.fetchrow(
            "INSERT INTO alerts (user_id, alert_type, latitude, longitude, idempotency_key,"
            " request_hash) VALUES ($1, 'medical', -33.9, 18.4, 'k1', '\\x01') "
            "RETURNING status, ST_Y(location::geometry) AS lat, ST_X(location::geometry) AS lon",
            user_id,
        )
        assert (row["status"], row["lat"], row["lon"]) == ("dispatching", -33.9, 18.4)
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO alerts (user_id, alert_type, latitude, longitude, idempotency_key,"
                " request_hash) VALUES ($1, 'panic', 0, 0, 'k1', '\\x02')",
                user_id,
            )
        for bad in (
            "alert_type, latitude, longitude) VALUES ($1, 'party', 0, 0)",
            "alert_type, latitude, longitude) VALUES ($1, 'panic', 91, 0)",
            "alert_type, latitude, longitude) VALUES ($1, 'panic', 0, -181)",
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute(f"INSERT INTO alerts (user_id, {bad}", user_id)
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO alerts (user_id, alert_type, latitude, longitude, status)"
                " VALUES ($1, 'panic', 0, 0, 'lost')",
                user_id,
            )
        # A nearby-alerts query uses the geography column.
        near = await conn.fetchval(
            "SELECT count(*) FROM alerts WHERE user_id = $1 AND "
            "ST_DWithin(location, ST_SetSRID(ST_MakePoint(18.401, -33.9), 4326)::geography, 200)",
            user_id,
        )
        assert near == 1


async def test_contacts_zones_and_cascade(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user_id = await new_user(conn)
        await conn.execute(
            "INSERT INTO emergency_contacts (user_id, name, notify_via) VALUES ($1, 'Mum', $2)",
            user_id,
            ["sms", "push"],
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO emergency_contacts (user_id, name, notify_via) VALUES ($1, 'X', $2)",
                user_id,
                ["pigeon"],
            )
        zone = await conn.fetchrow(
            "INSERT INTO geofence_zones (name, kind, geometry, rules) VALUES ('Park', 'danger',"
            " ST_GeomFromText('POLYGON((0 0, 0 1, 1 1, 1 0, 0 0))', 4326), $1) RETURNING id, rules",
            {"notify": ["agents"]},
        )
        assert zone["rules"] == {"notify": ["agents"]}
        inside = await conn.fetchval(
            "SELECT ST_Contains(geometry, ST_SetSRID(ST_MakePoint(0.5, 0.5), 4326))"
            " FROM geofence_zones WHERE id = $1",
            zone["id"],
        )
        assert inside is True
        with pytest.raises(asyncpg.CheckViolationError):  # a point zone needs a radius
            await conn.execute(
                "INSERT INTO geofence_zones (name, kind, geometry) VALUES ('P', 'safe',"
                " ST_SetSRID(ST_MakePoint(0, 0), 4326))"
            )
        await conn.execute("DELETE FROM users WHERE id = $1", user_id)
        left = await conn.fetchval(
            "SELECT count(*) FROM emergency_contacts WHERE user_id = $1", user_id
        )
        assert left == 0


async def test_agents_before_vetting_are_approved_and_new_ones_pending(
    settings: Settings, empty_database: str
) -> None:
    shipped = migrations.discover()
    before = [m for m in shipped if m.version < "0008"]
    pool = await create_pool(settings.postgres, database=empty_database)
    try:
        await migrations.apply_migrations(pool, migrations=before)
        async with pool.acquire() as conn:
            old = await new_user(conn, role="agent")
            await conn.execute("INSERT INTO agents (id) VALUES ($1)", old)
            await migrations.apply_migrations(pool)
            assert await conn.fetchval("SELECT vetting FROM agents WHERE id = $1", old) == (
                "approved"
            )
            new = await new_user(conn, role="agent")
            await conn.execute("INSERT INTO agents (id) VALUES ($1)", new)
            assert await conn.fetchval("SELECT vetting FROM agents WHERE id = $1", new) == (
                "pending"
            )
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE agents SET vetting = 'trusted' WHERE id = $1", new)
            with pytest.raises(asyncpg.NotNullViolationError):
                await conn.execute("UPDATE agents SET vetting = NULL WHERE id = $1", new)
            invite = (
                "INSERT INTO agent_invites (code_hash, created_at, expires_at) "
                "VALUES ($1, now(), now() + interval '1 day')"
            )
            await conn.execute(invite, b"h" * 32)
            with pytest.raises(asyncpg.UniqueViolationError):  # one row per code
                await conn.execute(invite, b"h" * 32)
            with pytest.raises(asyncpg.CheckViolationError):  # used by somebody, never used
                await conn.execute(
                    "INSERT INTO agent_invites (code_hash, expires_at, used_by) "
                    "VALUES ($1, now() + interval '1 day', $2)",
                    b"i" * 32,
                    new,
                )
    finally:
        await pool.close()


async def test_updated_at_is_maintained_by_trigger(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        user_id = await new_user(conn)
        async with conn.transaction():
            before = await conn.fetchval("SELECT updated_at FROM users WHERE id = $1", user_id)
        await asyncio.sleep(0.01)
        after = await conn.fetchval(
            "UPDATE users SET full_name = 'Renamed' WHERE id = $1 RETURNING updated_at", user_id
        )
        assert after > before


async def test_outbox_insert_notifies_once_per_statement(
    settings: Settings, pool: asyncpg.Pool, database: str
) -> None:
    listener = await connect(settings.postgres.dsn(database))
    received: list[str] = []
    await listener.add_listener("outbox", lambda *args: received.append(args[2]))
    try:
        await pool.execute(
            "INSERT INTO outbox (event_id, topic, key, type, source, time, data) "
            "SELECT gen_random_uuid(), 'system-events', 'k', 't', 's', now(), '{}'::jsonb "
            "FROM generate_series(1, 25)"
        )
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # a second notification would have arrived by now
        assert received == ["outbox"]
    finally:
        await listener.close()


async def test_jsonb_round_trips_as_python_objects(pool: asyncpg.Pool) -> None:
    key = f"test.{uuid.uuid4().hex}"
    value = {"escalation": [{"after_s": 60, "notify": "supervisor"}], "enabled": True, "n": 1.5}
    await pool.execute("INSERT INTO system_config (key, value) VALUES ($1, $2)", key, value)
    assert await pool.fetchval("SELECT value FROM system_config WHERE key = $1", key) == value
    assert (
        await pool.fetchval(
            "SELECT value->'escalation'->0->>'notify' FROM system_config WHERE key = $1", key
        )
        == "supervisor"
    )


async def test_ping_and_unreachable_or_misconfigured_server(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    await ping(pool)
    closed = settings.postgres.model_copy(update={"port": 1})
    with pytest.raises(ServiceUnavailable) as info:
        await create_pool(closed)
    assert info.value.service == "postgres"
    with pytest.raises(ConfigurationError):
        await create_pool(settings.postgres, database=f"missing_{uuid.uuid4().hex[:8]}")
    scratch = await create_pool(
        settings.postgres.model_copy(update={"pool_min": 1}), database="postgres"
    )
    await scratch.close()
    with pytest.raises(ServiceUnavailable):
        await ping(scratch)
