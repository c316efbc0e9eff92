"""The dispatcher console in Chromium against a live ``panic-alert serve``.

Each test drives the console as a dispatcher does (by role and accessible
name, the names issue 18 lists), while users and responders use the real
API and real sockets next to it. axe-core checks every page it passes.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest
from playwright.async_api import Locator, Page, WebSocketRoute, expect

from config.settings import REPO_ROOT
from gateway.auth.principal import Role
from tests.browser.conftest import Admin, Console, SignIn, axe_violations
from tests.integration.api.accounts import Account, make_account
from tests.integration.api.mediakit import noise_png, upload
from tests.integration.api.test_alerts import make_available
from tests.integration.api.test_ws import session

pytestmark = pytest.mark.integration

FOCUS_IN_QUEUE = "() => document.activeElement?.classList.contains('alert-item')"
#: The README's screenshot (docs/), taken by the assign test.
README_SHOT = REPO_ROOT / "docs" / "console.png"


def spot() -> tuple[float, float]:
    """A point in the console's first view (Europe), different per test."""
    return round(random.uniform(40, 55), 5), round(random.uniform(-5, 20), 5)


async def named(console: Console, account: Account, full_name: str) -> Account:
    await console.pool.execute(
        "UPDATE users SET full_name = $2 WHERE id = $1", account.id, full_name
    )
    return account


async def raise_alert(
    console: Console, user: Account, at: tuple[float, float], alert_type: str = "medical"
) -> str:
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        created = await http.post(
            "/alerts",
            json={"latitude": at[0], "longitude": at[1], "alert_type": alert_type},
            headers=user.headers,
        )
    assert created.status_code == 201, created.text
    alert_id: str = created.json()["id"]
    return alert_id


def queue_item(page: Page, alert_type: str, alert_id: str) -> Locator:
    """The queue's entry of an alert: its name begins with the type and holds the short id."""
    name = re.compile(rf"^{alert_type} alert {alert_id[:8]}\b")
    return page.get_by_role("list", name="Open alerts").get_by_role("button", name=name)


async def assert_accessible(page: Page, where: str) -> None:
    violations = await axe_violations(page)
    assert violations == [], f"axe on {where}: {violations}"


async def test_an_alert_a_user_raises_appears_in_the_queue_and_on_the_map_within_2_s(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    await page.goto(console.url)
    await page.get_by_role("button", name="Sign in").wait_for()
    await assert_accessible(page, "the sign-in page")
    await sign_in(page, admin)
    # Tokens live in the page's memory only: nothing in storage or cookies.
    stored = await page.evaluate(
        "() => [localStorage.length, sessionStorage.length, document.cookie]"
    )
    assert stored == [0, 0, ""]
    user = await make_account(console.pool, console.settings, Role.USER)

    alert_id = await raise_alert(console, user, spot(), "fire")
    raised = time.monotonic()
    await expect(queue_item(page, "fire", alert_id)).to_be_visible(timeout=2000)
    left_ms = max(0.0, 2000 - (time.monotonic() - raised) * 1000)
    drawn = page.locator(f'[data-drawn-alerts~="{alert_id}"]')
    await expect(drawn).to_have_count(1, timeout=left_ms)
    # The polite live region told screen readers.
    await expect(page.get_by_test_id("announcer")).to_contain_text(f"New fire alert {alert_id[:8]}")
    await assert_accessible(page, "the live view")


async def test_assigning_by_keyboard_alone_puts_the_assignment_on_the_agents_socket(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    where = spot()
    user = await make_account(console.pool, console.settings, Role.USER)
    responder = f"Rory Responder {uuid.uuid4().hex[:4]}"
    agent = await make_account(console.pool, console.settings, Role.AGENT)
    agent = await named(console, agent, responder)
    async with AsyncExitStack() as sockets:
        app = await make_available(console.gateway, sockets, agent, (where[0] + 0.001, where[1]))
        await sign_in(page, admin)
        alert_id = await raise_alert(console, user, where)
        item = queue_item(page, "medical", alert_id)
        await item.wait_for()

        # Keyboard only: Tab into the queue, arrows to the alert, Enter opens it.
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await page.evaluate(FOCUS_IN_QUEUE):
                break
        for _ in range(50):
            focused = await page.evaluate("() => document.activeElement?.dataset.alertId")
            if focused == alert_id:
                break
            await page.keyboard.press("ArrowDown")
        assert await page.evaluate("() => document.activeElement?.dataset.alertId") == alert_id
        await page.keyboard.press("Enter")
        heading = re.compile(f"medical alert {alert_id[:8]}")
        await page.get_by_role("heading", name=heading).wait_for()
        for _ in range(60):
            await page.keyboard.press("Tab")
            if await page.evaluate("() => document.activeElement?.textContent === 'Assign'"):
                break
        await page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Assign responder")
        await dialog.wait_for()
        option = dialog.get_by_role("radio", name=re.compile(responder))
        await expect(option).to_be_focused()
        await expect(option).to_be_checked()
        await assert_accessible(page, "the assign dialog")
        await page.keyboard.press("Tab")
        await expect(dialog.get_by_role("button", name="Confirm assignment")).to_be_focused()
        await page.keyboard.press("Enter")

        assigned = await app.expect("alert.assigned", wait_s=10, alert_id=alert_id)
        assert assigned["data"]["alert_id"] == alert_id
        await expect(dialog).to_be_hidden()
        await expect(item).to_have_accessible_name(re.compile(r"\bassigned\b"), timeout=5000)
        await page.get_by_role("list", name="Timeline").get_by_text("assigned").first.wait_for()
        await assert_accessible(page, "the alert detail")
        README_SHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(README_SHOT))


async def test_approving_a_pending_responder_makes_it_eligible_for_offers(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    where = spot()
    email = f"pending-{uuid.uuid4().hex[:8]}@example.org"
    full_name = f"Pat Pending {uuid.uuid4().hex[:4]}"
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        registered = await http.post(
            "/auth/register/agent",
            json={"email": email, "password": "a-long-pass-phrase-9", "full_name": full_name},
        )
        assert registered.status_code == 201, registered.text
        login = await http.post(
            "/auth/login/agent", json={"email": email, "password": "a-long-pass-phrase-9"}
        )
        assert login.status_code == 200, login.text
    agent = Account(uuid.UUID(registered.json()["id"]), Role.AGENT, login.json()["access_token"])
    user = await make_account(console.pool, console.settings, Role.USER)
    async with AsyncExitStack() as sockets:
        app, _ = await sockets.enter_async_context(session(console.gateway, agent))
        await app.send("agent.status", {"status": "available"}, id="before")
        refused = await app.expect("error", ref="before")
        assert refused["data"]["code"] == "forbidden"

        await sign_in(page, admin)
        await (
            page.get_by_role("navigation", name="Console")
            .get_by_role("button", name="Responders")
            .click()
        )
        pending = page.get_by_role("list", name="Pending responders")
        row = pending.get_by_role("listitem", name=full_name)
        await row.wait_for()
        await assert_accessible(page, "the responders page")
        await row.get_by_role("button", name="Suspend").wait_for()
        await row.get_by_role("button", name="Approve").click()
        await expect(pending.get_by_role("listitem", name=full_name)).to_have_count(0)
        approved = page.get_by_role("list", name="Approved responders")
        await expect(approved.get_by_role("listitem", name=full_name)).to_have_count(1)

        await app.send("agent.status", {"status": "available"}, id="after")
        await app.expect("ack", ref="after", status="available")
        await app.send("location", {"latitude": where[0], "longitude": where[1] + 0.001})
        await app.ping()
        alert_id = await raise_alert(console, user, where)
        offer = await app.expect("alert.offer", wait_s=10, alert_id=alert_id)
        assert offer["data"]["alert_id"] == alert_id


async def test_a_closed_socket_resynchronises_without_a_reload(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    routes: list[WebSocketRoute] = []
    refusing = asyncio.Event()

    async def route(ws: WebSocketRoute) -> None:
        if refusing.is_set():
            await ws.close(code=1013, reason="try again later")
            return
        ws.connect_to_server()
        routes.append(ws)

    await page.route_web_socket(re.compile(r"/ws$"), route)
    user = await make_account(console.pool, console.settings, Role.USER)
    other = await make_account(console.pool, console.settings, Role.USER)
    before = await raise_alert(console, user, spot(), "security")
    await sign_in(page, admin)
    await expect(queue_item(page, "security", before)).to_be_visible()
    loads = await page.evaluate("() => performance.getEntriesByType('navigation').length")

    # The socket drops, and stays down while things happen.
    refusing.set()
    await routes[-1].close(code=1012, reason="restart")
    down = page.get_by_role("status").filter(has_text=re.compile("Reconnecting|Offline"))
    await expect(down).to_be_visible()
    missed = await raise_alert(console, other, spot(), "panic")
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        cancelled = await http.put(
            f"/alerts/{before}/status", json={"status": "cancelled"}, headers=user.headers
        )
        assert cancelled.status_code == 200, cancelled.text
    await asyncio.sleep(1.5)
    await expect(queue_item(page, "panic", missed)).to_have_count(0)
    await expect(queue_item(page, "security", before)).to_be_visible()

    # It comes back: the console catches up from the server, without a reload.
    refusing.clear()
    await expect(page.get_by_role("status").filter(has_text=re.compile("^Live$"))).to_be_visible(
        timeout=15_000
    )
    await expect(queue_item(page, "panic", missed)).to_be_visible(timeout=5000)
    await expect(queue_item(page, "security", before)).to_have_count(0)
    assert await page.evaluate("() => performance.getEntriesByType('navigation').length") == loads
    assert len(routes) >= 2


async def test_the_alert_detail_shows_the_alerts_media(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    user = await make_account(console.pool, console.settings, Role.USER)
    alert_id = await raise_alert(console, user, spot())
    await sign_in(page, admin)
    await queue_item(page, "medical", alert_id).click()
    await expect(page.get_by_role("list", name="Media")).to_have_count(0)
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=30) as http:
        stored = await upload(http, user, alert_id, noise_png(320, 240))
    assert stored.status_code == 201, stored.text
    # media.added (stored, then processed) refreshes the detail: the thumbnail
    # is read with the dispatcher's token into a blob: URL.
    thumbnail = page.get_by_role("img", name=re.compile(r"^Thumbnail: image from the user"))
    await expect(thumbnail).to_be_visible(timeout=30_000)
    assert (await thumbnail.get_attribute("src") or "").startswith("blob:")
    await page.get_by_role("button", name="Open image").click()
    full = page.locator("img.evidence-full")
    await expect(full).to_be_visible()
    assert await full.evaluate("(img) => img.naturalWidth") == 320
    await assert_accessible(page, "the alert detail with media")
