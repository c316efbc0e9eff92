"""``panic-alert import-zones`` as a subprocess against a scratch database."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import pytest

from config.settings import Settings
from panic_alert import cli
from persistence.drivers.postgres import create_pool
from tests.local import PANIC_ALERT, cli_env
from tests.scratch import on_database, scratch_database

pytestmark = pytest.mark.integration

HARBOUR = UUID("6f1c1d2e-0000-4000-8000-000000000001")
CLINIC = UUID("6f1c1d2e-0000-4000-8000-000000000002")
AREA = UUID("6f1c1d2e-0000-4000-8000-000000000003")
AGENT = UUID("6f1c1d2e-0000-4000-8000-0000000000aa")


def square(lon: float, lat: float, size: float = 0.01) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(
    geometry: dict[str, Any], feature_id: UUID | None = None, **props: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "Feature", "properties": props, "geometry": geometry}
    if feature_id is not None:
        out["id"] = str(feature_id)
    return out


FEATURES = [
    # Its kind comes from --kind.
    feature(square(13.40, 52.50), HARBOUR, name="Harbour", rules={"notify_admins": True}),
    feature(
        {"type": "Point", "coordinates": [13.45, 52.52]},
        None,
        id=str(CLINIC),  # an id among the properties counts too
        name="Clinic",
        kind="safe",
        radius_m=250,
        rules={"end_check_in": True, "dwell_s": 120},
        active=False,
    ),
    feature(  # a bow-tie: refused, the others imported
        {"type": "Polygon", "coordinates": [[[0, 0], [0.01, 0.01], [0.01, 0], [0, 0.01], [0, 0]]]},
        name="Bow-tie",
    ),
    feature(
        square(-3.70, 40.41),
        AREA,
        name="Area",
        kind="service_area",
        rules={"agent_ids": [str(AGENT)]},
    ),
]


@pytest.fixture(scope="module")
async def database(settings: Settings) -> AsyncIterator[str]:
    async with scratch_database(settings, "pa_import") as name:
        yield name


@pytest.fixture
async def pool(settings: Settings, database: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.postgres, database=database)
    await pool.execute("DELETE FROM geofence_zones")
    try:
        yield pool
    finally:
        await pool.close()


def write(path: Path, features: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


async def import_zones(
    database: str, *args: str, env: Mapping[str, str] | None = None
) -> tuple[int, dict[str, Any] | None, str]:
    result = await asyncio.to_thread(
        subprocess.run,
        [PANIC_ALERT, "import-zones", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env or cli_env(PANIC_POSTGRES__DATABASE=database)),
        timeout=120,
    )
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, report, result.stderr


async def test_import_reports_the_bad_feature_and_stores_the_rest_idempotently(
    tmp_path: Path, database: str, pool: asyncpg.Pool
) -> None:
    path = write(tmp_path / "zones.geojson", FEATURES)
    code, report, stderr = await import_zones(database, str(path), "--kind", "danger")
    assert code == 1, stderr
    assert report is not None
    assert (report["features"], report["valid"], report["imported"], report["created"]) == (
        4,
        3,
        3,
        3,
    )
    ((rejected),) = report["rejected"]
    assert rejected["index"] == 2
    assert "Self-intersection" in rejected["reason"]
    assert "stored 3/3 zones" in stderr

    rows = {
        r["id"]: r
        for r in await pool.fetch(
            "SELECT id, name, kind, radius_m, rules, dwell_s, active, cells, revision, "
            "GeometryType(geometry) AS type FROM geofence_zones"
        )
    }
    assert set(rows) == {HARBOUR, CLINIC, AREA}
    assert (rows[HARBOUR]["kind"], rows[HARBOUR]["type"]) == ("danger", "POLYGON")
    assert rows[HARBOUR]["rules"]["notify_admins"] is True
    clinic = rows[CLINIC]
    assert (clinic["kind"], clinic["type"], clinic["radius_m"]) == ("safe", "POINT", 250)
    assert (clinic["active"], clinic["dwell_s"], clinic["rules"]["end_check_in"]) == (
        False,
        120,
        True,
    )
    assert rows[AREA]["rules"]["agent_ids"] == [str(AGENT)]
    assert all(r["cells"] for r in rows.values())

    # Again: the same zones, replaced in place.
    code, again, _ = await import_zones(database, str(path), "--kind", "danger")
    assert code == 1
    assert again is not None
    assert (again["created"], again["updated"]) == (0, 3)
    assert await pool.fetchval("SELECT count(*) FROM geofence_zones") == 3
    newer = await pool.fetchval("SELECT min(revision) FROM geofence_zones")
    assert newer > max(r["revision"] for r in rows.values())


# In-process from here (the command's function, in a thread: it runs its own event loop):
# a subprocess costs seconds of imports.


async def run_in_process(
    settings: Settings,
    database: str,
    capsys: pytest.CaptureFixture[str],
    path: Path,
    **options: Any,
) -> tuple[int, dict[str, Any]]:
    args: dict[str, Any] = {"kind": None, "dry_run": False, "batch_size": 500, **options}
    code = await asyncio.to_thread(
        cli.import_zones, on_database(settings, database), str(path), **args
    )
    return code, json.loads(capsys.readouterr().out)


async def test_all_imported_in_batches_is_exit_0(
    tmp_path: Path,
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = write(tmp_path / "good.geojson", [f for i, f in enumerate(FEATURES) if i != 2])
    code, report = await run_in_process(
        settings, database, capsys, good, kind="danger", batch_size=2
    )
    assert code == 0
    assert (report["imported"], report["created"], report["rejected"]) == (3, 3, [])
    assert await pool.fetchval("SELECT count(*) FROM geofence_zones") == 3


async def test_dry_run_touches_nothing_and_features_need_a_kind(
    tmp_path: Path,
    settings: Settings,
    database: str,
    pool: asyncpg.Pool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = write(tmp_path / "zones.geojson", FEATURES)
    code, report = await run_in_process(settings, database, capsys, path, dry_run=True)
    assert code == 1
    assert report["dry_run"] is True
    assert (report["valid"], report["imported"]) == (2, 0)
    # Without --kind the Harbour names none: refused too.
    assert [r["index"] for r in report["rejected"]] == [0, 2]
    assert "kind" in report["rejected"][0]["reason"]
    assert await pool.fetchval("SELECT count(*) FROM geofence_zones") == 0


async def test_duplicate_ids_and_unreadable_files(
    tmp_path: Path, settings: Settings, database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    twice = write(tmp_path / "twice.geojson", [FEATURES[0], FEATURES[0]])
    code, report = await run_in_process(
        settings, database, capsys, twice, kind="danger", dry_run=True
    )
    assert code == 1
    assert report["rejected"] == [
        {"index": 1, "reason": f"duplicate id {HARBOUR} (also feature 0)"}
    ]
    garbage = tmp_path / "garbage.geojson"
    garbage.write_text("{not json")
    with pytest.raises(cli.CommandError, match="cannot read") as failed:
        await run_in_process(settings, database, capsys, garbage)
    assert failed.value.exit_code == cli.EXIT_FAILURE
    with pytest.raises(cli.CommandError, match="no such file") as missing:
        await run_in_process(settings, database, capsys, tmp_path / "missing.geojson")
    assert missing.value.exit_code == cli.EXIT_USAGE
