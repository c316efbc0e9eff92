"""``panic-alert demo`` as a user runs it: a subprocess driving a live
``panic-alert serve`` (embedded Ray, the relay, every real service) on a
migrated scratch database, checked afterwards through the REST API as an
administrator.

The demo server gets room for the demo's 25 registrations and logins from
one address (``--help`` documents the same settings for a demo server).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import REPO_ROOT, Settings
from panic_alert_client import AsyncClient
from tests.local import cli_env, free_port, serve_process
from tests.scratch import create_database, drop_database, migrate, scratch_name

pytestmark = pytest.mark.integration

RESPONDERS = 20
USERS = 5
ROOMY_LIMITS = {
    "PANIC_RATE_LIMIT__REGISTER_PER_IP": '{"limit":200,"window_s":3600}',
    "PANIC_RATE_LIMIT__LOGIN_PER_IP": '{"limit":200,"window_s":60}',
}


def demo_env(database: str, data_dir: Path) -> dict[str, str]:
    """The demo's environment: the server's database (for its administrator),
    its own data dir (its state file), the client importable from its folder."""
    client = str(REPO_ROOT / "clients" / "python")
    path = os.pathsep.join(p for p in (client, os.environ.get("PYTHONPATH", "")) if p)
    return cli_env(PANIC_POSTGRES__DATABASE=database, PANIC_DATA_DIR=str(data_dir), PYTHONPATH=path)


@pytest.fixture(scope="module")
def demo_server(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str]]:
    """A live server on a scratch database: (its base URL, the database)."""
    database = scratch_name("pa_demo")

    async def prepare() -> None:
        await create_database(settings, database)
        await migrate(settings, database)

    asyncio.run(prepare())
    env = cli_env(
        PANIC_POSTGRES__DATABASE=database,
        PANIC_HTTP__PORT=str(free_port()),
        PANIC_RAY__DASHBOARD_PORT=str(free_port()),
        PANIC_RAY__NUM_CPUS="1",
        PANIC_RAY__SHARDS="1",
        PANIC_MEDIA__ROOT=str(tmp_path_factory.mktemp("demo-media")),
        **ROOMY_LIMITS,
    )
    log = tmp_path_factory.mktemp("demo") / "serve.log"
    try:
        with serve_process(env, log) as base:
            yield base, database
    finally:
        asyncio.run(drop_database(settings, database))


def run_demo(
    base: str, database: str, data_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "panic_alert.cli", "demo", "--url", base, *args],
        env=demo_env(database, data_dir),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_demo_runs_alerts_from_press_to_resolved_through_the_api(
    demo_server: tuple[str, str], tmp_path: Path
) -> None:
    base, database = demo_server
    ran = run_demo(
        base,
        database,
        tmp_path,
        *("--responders", str(RESPONDERS), "--users", str(USERS)),
        *("--duration", "30", "--speed", "5", "--seed", "19"),
        # A small town and frequent alerts, so that 30 s see some resolved.
        *("--radius-km", "2", "--alert-every", "20"),
    )
    report = f"exit {ran.returncode}\nstdout:\n{ran.stdout}\nstderr:\n{ran.stderr[-6000:]}"
    assert ran.returncode == 0, report
    assert "error:" not in ran.stderr, report
    assert "created admin" in ran.stdout, report
    lines = ran.stderr.splitlines()
    assert any(line.startswith("demo: 5s: responders") for line in lines), report
    assert lines[-1].startswith("demo: stopped. "), report
    assert lines[-1].endswith("errors 0"), report

    state = json.loads((tmp_path / "demo" / "state.json").read_text())
    assert len(state["registered"]) == RESPONDERS + USERS
    checked = asyncio.run(_check_through_rest(base, state))
    assert checked["resolved_by_demo_responders"] >= 1, (checked, report)
    assert checked["open"] == 0, (checked, report)  # the clean stop cancelled the rest
    assert checked["on_duty"] == 0, (checked, report)  # and took responders off duty

    # A rerun signs the same accounts in (no registration, no second
    # administrator) and runs until Ctrl-C, which stops it cleanly.
    rerun = subprocess.Popen(
        [
            *(sys.executable, "-m", "panic_alert.cli", "demo", "--url", base),
            *("--responders", str(RESPONDERS), "--users", str(USERS), "--speed", "5"),
        ],
        env=demo_env(database, tmp_path),
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rerun.stderr is not None
        seen: list[str] = []
        while not any(line.startswith("demo: 5s: ") for line in seen):
            line = rerun.stderr.readline()
            assert line, f"the rerun ended early: {seen}"
            seen.append(line)
        rerun.send_signal(signal.SIGINT)
        out, err = rerun.communicate(timeout=120)
    finally:
        if rerun.poll() is None:
            rerun.kill()
            rerun.wait()
    err = "".join(seen) + err
    assert rerun.returncode == 0, err
    assert "error:" not in err, err
    assert "created admin" not in out
    assert "demo: stopping: " in err
    assert json.loads((tmp_path / "demo" / "state.json").read_text()) == state
    after = asyncio.run(_check_through_rest(base, state))
    assert after["open"] == 0, (after, err)
    assert after["on_duty"] == 0, (after, err)


async def _check_through_rest(base: str, state: dict[str, object]) -> dict[str, int]:
    """As the demo's administrator: alerts of demo users that demo responders resolved."""
    password = str(state["password"])
    async with AsyncClient(base) as admin:
        await admin.login_user(str(state["admin_email"]), str(state["admin_password"]))
        roster = [agent async for agent in admin.list_agents()]
        responders = {a.id for a in roster if a.email.startswith("demo-responder-")}
        assert len(responders) == RESPONDERS
        assert all(a.vetting == "approved" for a in roster if a.id in responders)
        on_duty = sum(1 for a in roster if a.id in responders and a.availability == "available")
        users = set()
        for number in range(1, USERS + 1):
            async with AsyncClient(base) as user:
                await user.login_user(f"demo-user-{number:04d}@demo.example.org", password)
                users.add((await user.me()).id)
        alerts = [alert async for alert in admin.list_alerts()]
        ours = [a for a in alerts if a.user_id in users]
        assert ours, "no alert was raised by a demo user"
        resolved = [a for a in ours if a.status == "resolved" and a.assigned_agent_id in responders]
        for alert in resolved[:3]:
            items = await admin.timeline(alert.id)
            kinds = [item.type for item in items]
            assert "offer_received" in kinds, kinds  # the responder's device acknowledged
            steps = [item for item in items if item.type == "status_changed"]
            assert len(steps) == 3, kinds  # en_route, on_scene, resolved
            assert {item.actor_id for item in steps} == {alert.assigned_agent_id}, items
        return {
            "raised": len(ours),
            "resolved_by_demo_responders": len(resolved),
            "open": sum(1 for a in ours if a.status not in ("resolved", "cancelled")),
            "on_duty": on_duty,
        }
