"""The console in a real browser: Debian's Chromium, driven by Playwright,
against a live ``panic-alert serve`` (embedded Ray, the relay, every real
service) on this package's own migrated scratch database.

There is no browser download on these machines: Playwright launches
``/usr/bin/chromium`` (``scripts/bootstrap`` installs it); a missing browser
or a missing console build fails these tests, never skips them. The map has
no tile server here (``PANIC_CONSOLE__TILE_URL`` empty): it draws on the
bundled world outline, as a console without internet does.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from config.settings import REPO_ROOT, Settings
from gateway.auth.passwords import PasswordHasher
from gateway.auth.principal import Role
from persistence.drivers.postgres import create_pool
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.conftest import Gateway
from tests.local import cli_env, free_port, serve_process
from tests.scratch import create_database, drop_database, migrate, on_database, scratch_name

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FOUND = Path(CHROMIUM).exists()
AXE = REPO_ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
AXE_SOURCE = AXE.read_text() + "\n;true" if AXE.exists() else ""
#: Screenshots of every browser test (look at them); the README's is under docs/.
SHOTS = REPO_ROOT / ".data" / "screenshots"
ADMIN_PASSWORD = "console-test-password-1"


@dataclass(frozen=True)
class Console:
    """The live server, a pool on its database, and settings pointed at it."""

    gateway: Gateway
    pool: asyncpg.Pool
    settings: Settings
    log: Path

    @property
    def url(self) -> str:
        return f"{self.gateway.base_url}/console/"


@dataclass(frozen=True)
class Admin:
    account: Account
    email: str
    password: str


@dataclass(frozen=True)
class Served:
    base_url: str
    settings: Settings
    log: Path


@pytest.fixture(scope="package")
def served(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``panic-alert serve`` as a subprocess, as a user runs it."""
    database = scratch_name("pa_console")
    asyncio.run(_prepare(settings, database))
    port, dashboard = free_port(), free_port()
    env = cli_env(
        PANIC_POSTGRES__DATABASE=database,
        PANIC_HTTP__PORT=str(port),
        PANIC_RAY__DASHBOARD_PORT=str(dashboard),
        PANIC_RAY__NUM_CPUS="1",
        PANIC_RAY__SHARDS="1",
        PANIC_CONSOLE__TILE_URL="",
        PANIC_HTTP__WS_FLEET_INTERVAL_S="0.5",
        PANIC_MEDIA__ROOT=str(tmp_path_factory.mktemp("console-media")),
    )
    log = tmp_path_factory.mktemp("console") / "serve.log"
    try:
        with serve_process(env, log) as base:
            built = httpx.get(f"{base}/console/", timeout=10)
            assert built.status_code == 200, f"the console is not built: {built.text}"
            yield Served(base, on_database(settings, database), log)
    finally:
        asyncio.run(drop_database(settings, database))


async def _prepare(settings: Settings, database: str) -> None:
    await create_database(settings, database)
    await migrate(settings, database)


@pytest.fixture(scope="package")
async def console(served: Served) -> AsyncIterator[Console]:
    pool = await create_pool(served.settings.postgres)
    try:
        ws_url = served.base_url.replace("http://", "ws://") + "/ws"
        gateway = Gateway(served.base_url, ws_url, served.settings)
        yield Console(gateway, pool, served.settings, served.log)
    finally:
        await pool.close()


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM_FOUND, f"{CHROMIUM} is missing: run scripts/bootstrap"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # Headless WebGL 2 through SwiftShader (no GPU on these machines).
            args=["--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh page (its own context: no shared tokens); a screenshot at the end;
    any uncaught page error fails the test."""
    context = await browser.new_context(viewport={"width": 1400, "height": 860})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await opened.screenshot(path=str(SHOTS / f"{request.node.name}.png"))
        await context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture
async def phones(browser: Browser) -> AsyncIterator[list[BrowserContext]]:
    """The contexts a test opens as phones (``test_apps.phone``), closed after it."""
    opened: list[BrowserContext] = []
    try:
        yield opened
    finally:
        for context in opened:
            await context.close()


@pytest.fixture
async def admin(console: Console) -> Admin:
    """An administrator with a real password (no second factor)."""
    account = await make_account(console.pool, console.settings, Role.ADMIN)
    email = f"admin-{uuid.uuid4().hex[:10]}@example.org"
    hashed = PasswordHasher(console.settings.auth).hash(ADMIN_PASSWORD)
    await console.pool.execute(
        "UPDATE users SET email = $2, password_hash = $3, full_name = 'Dana Dispatcher' "
        "WHERE id = $1",
        account.id,
        email,
        hashed,
    )
    return Admin(account, email, ADMIN_PASSWORD)


SignIn = Callable[[Page, Admin], Awaitable[None]]


@pytest.fixture
def sign_in(console: Console) -> SignIn:
    async def go(page: Page, admin: Admin) -> None:
        await page.goto(console.url)
        await page.get_by_label("Email").fill(admin.email)
        await page.get_by_label("Password").fill(admin.password)
        await page.get_by_role("button", name="Sign in").click()
        await page.get_by_role("heading", name=re.compile(r"^Open alerts")).wait_for()
        await page.get_by_role("status").filter(has_text="Live").wait_for()

    return go


async def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is."""
    assert AXE_SOURCE, f"{AXE} is missing: run scripts/bootstrap (npm ci in web/)"
    # Through the DevTools protocol, which the page's CSP (no inline script)
    # does not govern: the console's own policy stays as it is served.
    await page.evaluate(AXE_SOURCE)
    result = await page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" ")),
            }));
        }"""
    )
    violations: list[dict[str, Any]] = json.loads(json.dumps(result))
    return [v for v in violations if v["impact"] in ("serious", "critical")]
