"""The user app (``/app/``) and the responder app (``/responder/``) in
Chromium, each in its own browser context with an emulated position, against
the live ``panic-alert serve``: the panic press reaches the responder's phone,
which rings; Accept; the person sees the responder coming, then each status
through to resolved. axe-core checks every screen they pass."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    Request,
    async_playwright,
    expect,
)

from gateway.auth.principal import Role
from tests.browser.conftest import CHROMIUM, SHOTS, Admin, Console
from tests.browser.test_console import assert_accessible, queue_item, spot
from tests.integration.api.accounts import approve_agent

pytestmark = pytest.mark.integration

PASSWORD = "a-long-pass-phrase-7"  # a scratch database's accounts


async def phone(browser: Browser, at: tuple[float, float]) -> BrowserContext:
    return await browser.new_context(
        viewport={"width": 412, "height": 860},
        geolocation={"latitude": at[0], "longitude": at[1], "accuracy": 12},
        permissions=["geolocation"],
    )


async def register(console: Console, role: Role) -> tuple[str, str]:
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.org"
    name = f"{'Rhea Responder' if role is Role.AGENT else 'Uma User'} {uuid.uuid4().hex[:4]}"
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        made = await http.post(
            f"/auth/register/{role.value}",
            json={"email": email, "password": PASSWORD, "full_name": name},
        )
    assert made.status_code == 201, made.text
    if role is Role.AGENT:
        await approve_agent(console.pool, made.json()["id"])
    return email, made.json()["id"]


async def sign_in(page: Page, url: str, email: str) -> None:
    await page.goto(url)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()


async def listed(console: Console, admin: Admin, agent_id: str) -> None:
    """Until the fleet shows the responder available at a position."""
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        for _ in range(100):
            fleet = await http.get("/admin/fleet", headers=admin.account.headers)
            items = [a for a in fleet.json()["items"] if a["agent_id"] == agent_id]
            if items and items[0]["available"] and items[0]["latitude"] is not None:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the responder was never listed available")


async def on_duty_and_signed_in(
    console: Console,
    browser: Browser,
    phones: list[BrowserContext],
    admin: Admin,
    where: tuple[float, float],
    apart: float,
) -> tuple[Page, Page, str]:
    """A responder on duty ``apart`` degrees north of ``where`` (listed available)
    and a person at ``where`` signed in to the app: (responder, person, the
    person's email)."""
    user_email, _ = await register(console, Role.USER)
    agent_email, agent_id = await register(console, Role.AGENT)
    phones.append(await phone(browser, (where[0] + apart, where[1])))
    phones.append(await phone(browser, where))
    responder, person = [await context.new_page() for context in phones[-2:]]
    await sign_in(responder, f"{console.gateway.base_url}/responder/", agent_email)
    await responder.get_by_role("switch", name=re.compile("^On duty")).click()
    await listed(console, admin, agent_id)
    await sign_in(person, f"{console.gateway.base_url}/app/", user_email)
    return responder, person, user_email


async def test_a_press_rings_the_responder_who_accepts_and_resolves(
    console: Console, browser: Browser, phones: list[BrowserContext], admin: Admin
) -> None:
    where = spot()
    user_email, _ = await register(console, Role.USER)
    agent_email, agent_id = await register(console, Role.AGENT)
    phones.append(await phone(browser, (where[0] + 0.002, where[1])))
    phones.append(await phone(browser, where))
    responder, person = [await context.new_page() for context in phones]

    await sign_in(responder, f"{console.gateway.base_url}/responder/", agent_email)
    duty = responder.get_by_role("switch", name=re.compile("^On duty"))
    await expect(duty).to_have_attribute("aria-checked", "false")
    await assert_accessible(responder, "the responder app, off duty")
    await duty.click()
    await expect(duty).to_have_attribute("aria-checked", "true")
    await listed(console, admin, agent_id)

    await sign_in(person, f"{console.gateway.base_url}/app/", user_email)
    button = person.get_by_role("button", name="Send panic alert")
    status = person.get_by_role("status", name="Alert status")
    await expect(status).to_contain_text("No alert")
    await assert_accessible(person, "the user app")
    # The deliberate gesture: press and hold.
    await button.hover()
    await person.mouse.down()
    await person.wait_for_timeout(1700)
    await person.mouse.up()
    await expect(status).to_contain_text("Looking for a responder")

    incoming = responder.get_by_role("dialog", name="Incoming alert")
    await expect(incoming).to_be_visible(timeout=10_000)
    await expect(incoming).to_contain_text(re.compile(r"\d+ m away"))
    await assert_accessible(responder, "the incoming alert")
    await incoming.get_by_role("button", name="Accept").click()
    await expect(incoming).to_be_hidden()
    await expect(status).to_contain_text("A responder is coming", timeout=10_000)
    # The responder sets off: its fixes reach the person's map, with the server's estimate.
    await phones[0].set_geolocation(
        {"latitude": where[0] + 0.0015, "longitude": where[1], "accuracy": 8}
    )
    await expect(status).to_contain_text(
        re.compile(r"Arriving (now|in about \d+ min) \(\d+ m away\)"), timeout=10_000
    )
    await expect(person.get_by_role("region", name="Map of your responder")).to_be_visible()
    await expect(person.get_by_text(re.compile(r"^Your responder is \d+ m away\."))).to_be_visible()
    await expect(
        responder.get_by_role("region", name="Map of the route to the person")
    ).to_be_visible()
    await expect(
        responder.get_by_text(re.compile(r"^Arriving (now|in about \d+ min)"))
    ).to_be_visible()
    await person.screenshot(path=str(SHOTS / "apps-user-responder-coming.png"))
    await responder.screenshot(path=str(SHOTS / "apps-responder-route.png"))
    await assert_accessible(person, "the user app, a responder coming")
    await assert_accessible(responder, "the responder app, responding")

    for step, words in (
        ("En route", "Arriving"),
        ("On scene", "A responder is with you"),
        ("Resolved", "Resolved"),
    ):
        await responder.get_by_role("button", name=step).click()
        await expect(status).to_contain_text(words, timeout=10_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    await person.screenshot(path=str(SHOTS / "apps-user-resolved.png"))
    await responder.screenshot(path=str(SHOTS / "apps-responder-resolved.png"))


async def test_the_person_and_the_responder_chat_and_the_dispatcher_reads_it(
    console: Console, browser: Browser, phones: list[BrowserContext], admin: Admin, page: Page
) -> None:
    where = spot()
    responder, person, user_email = await on_duty_and_signed_in(
        console, browser, phones, admin, where, apart=0.003
    )
    await person.get_by_role("button", name="Send panic alert").click()
    await person.get_by_role("button", name="Send panic alert").click()  # two taps
    # Before anyone accepts, the person may already write: it waits for the responder.
    person_chat = person.get_by_role("log", name="Messages")
    await expect(person_chat).to_contain_text("No messages yet.", timeout=10_000)
    await person.get_by_role("textbox", name="Message").fill("Side door, second floor")
    await person.get_by_role("button", name="Send").click()
    await expect(person_chat).to_contain_text("You: Side door, second floor")

    incoming = responder.get_by_role("dialog", name="Incoming alert")
    await incoming.get_by_role("button", name="Accept").click(timeout=10_000)
    responder_chat = responder.get_by_role("log", name="Messages")
    await expect(responder_chat).to_contain_text("Person: Side door, second floor", timeout=10_000)
    await responder.get_by_role("textbox", name="Message").fill("Two minutes away")
    await responder.get_by_role("button", name="Send").click()
    await expect(responder_chat).to_contain_text("You: Two minutes away")
    await expect(person_chat).to_contain_text("Responder: Two minutes away", timeout=10_000)
    await assert_accessible(person, "the user app's chat")
    await assert_accessible(responder, "the responder app's chat")
    await person.screenshot(path=str(SHOTS / "apps-user-chat.png"))
    await responder.screenshot(path=str(SHOTS / "apps-responder-chat.png"))

    # The dispatcher reads both in the alert's timeline in the console.
    await page.goto(console.url)
    await page.get_by_label("Email").fill(admin.email)
    await page.get_by_label("Password").fill(admin.password)
    await page.get_by_role("button", name="Sign in").click()
    (raised,) = await own_alerts(console, user_email)
    await queue_item(page, "panic", str(raised["id"])).click(timeout=10_000)
    timeline = page.get_by_role("list", name="Timeline")
    await expect(timeline).to_contain_text("message from the person: Side door, second floor")
    await expect(timeline).to_contain_text("message from the responder: Two minutes away")


async def test_a_short_press_sends_nothing_and_a_restart_keeps_the_session_even_offline(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    user_email, _ = await register(console, Role.USER)
    phones.append(await phone(browser, spot()))
    person = await phones[0].new_page()
    await sign_in(person, f"{console.gateway.base_url}/app/", user_email)
    button = person.get_by_role("button", name="Send panic alert")
    await button.hover()
    await person.mouse.down()
    await person.wait_for_timeout(300)
    await person.mouse.up()
    await person.wait_for_timeout(1500)
    await expect(person.get_by_role("status", name="Alert status")).to_contain_text("No alert")
    # A restart (a new page, the same phone): still signed in, from the vault.
    await person.close()
    again = await phones[0].new_page()
    await again.goto(f"{console.gateway.base_url}/app/")
    await expect(again.get_by_role("button", name="Send panic alert")).to_be_visible()
    stored = await again.evaluate("() => [localStorage.length, document.cookie]")
    assert stored == [0, ""]

    # Opened again without network: still signed in (from the vault), and a
    # press is kept until the network returns.
    await again.close()
    await phones[0].set_offline(True)
    offline = await phones[0].new_page()
    await offline.goto(f"{console.gateway.base_url}/app/")
    status = offline.get_by_role("status", name="Alert status")
    await expect(offline.get_by_role("button", name="Send panic alert")).to_be_visible()
    await hold(offline)
    await expect(status).to_contain_text("Still sending your alert")
    await phones[0].set_offline(False)
    await expect(status).to_contain_text("Looking for a responder", timeout=20_000)
    assert len(await own_alerts(console, user_email)) == 1


@pytest.mark.parametrize("path", ["/app/", "/responder/"])
async def test_the_app_is_installable_and_its_shell_works_offline(
    console: Console, path: str, tmp_path: Path
) -> None:
    # A profile on disk: Chromium never offers to install from an incognito
    # context, which every ordinary Playwright context is.
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            viewport={"width": 412, "height": 860},
        )
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            await page.goto(f"{console.gateway.base_url}{path}")
            await page.get_by_role("button", name="Sign in").wait_for()
            ready = await page.evaluate(
                """() => Promise.race([
                    navigator.serviceWorker.ready.then(() => true),
                    new Promise((done) => setTimeout(() => done(false), 15000)),
                ])"""
            )
            assert ready, "no service worker became ready"
            # Chromium's own installability check (what makes it offer "Install app").
            cdp = await context.new_cdp_session(page)
            check = await cdp.send("Page.getInstallabilityErrors")
            assert check["installabilityErrors"] == [], check
            manifest = await cdp.send("Page.getAppManifest")
            assert manifest["errors"] == [], manifest
            # Offline: the shell still comes up from the service worker's cache.
            await context.set_offline(True)
            await page.reload()
            await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            await expect(page.get_by_label("Email")).to_be_visible()
            await page.screenshot(path=str(SHOTS / f"apps-offline-{path.strip('/')}.png"))
        finally:
            await context.close()


async def test_turning_on_notifications_says_plainly_what_came_of_it(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    """Web push needs a push service, which this machine's Chromium cannot reach:
    the app must then say so (and register nothing), or, where it can, register
    the device (``GET /users/devices`` lists it). A refusal says "blocked"."""
    email, _ = await register(console, Role.USER)
    phones.append(await phone(browser, spot()))
    refused = await phones[-1].new_page()
    await sign_in(refused, f"{console.gateway.base_url}/app/", email)
    await refused.get_by_role("button", name="Turn on notifications").click()
    await expect(refused.get_by_role("status").filter(has_text="Notifications")).to_contain_text(
        "blocked"
    )

    phones.append(await phone(browser, spot()))
    await phones[-1].grant_permissions(["geolocation", "notifications"])
    person = await phones[-1].new_page()
    await sign_in(person, f"{console.gateway.base_url}/app/", email)
    await person.get_by_role("button", name="Turn on notifications").click()
    said = person.get_by_role("status").filter(has_text="Notifications")
    await expect(said).to_contain_text(re.compile(r"on for this device|could not be turned on"))
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        login = await http.post("/auth/login/user", json={"email": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        devices = (await http.get("/users/devices", headers=headers)).json()["items"]
    registered = "on for this device" in await said.inner_text()
    assert len(devices) == (1 if registered else 0), devices
    await assert_accessible(person, "the user app, notifications answered")


async def own_alerts(console: Console, email: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        login = await http.post("/auth/login/user", json={"email": email, "password": PASSWORD})
        token = login.json()["access_token"]
        page = await http.get(
            "/alerts", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"}
        )
    items: list[dict[str, object]] = page.json()["items"]
    return items


async def hold(page: Page) -> None:
    await page.get_by_role("button", name="Send panic alert").hover()
    await page.mouse.down()
    await page.wait_for_timeout(1700)
    await page.mouse.up()


async def test_a_press_made_offline_is_delivered_once_when_the_network_returns(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    user_email, _ = await register(console, Role.USER)
    phones.append(await phone(browser, spot()))
    person = await phones[0].new_page()
    await sign_in(person, f"{console.gateway.base_url}/app/", user_email)
    status = person.get_by_role("status", name="Alert status")
    await expect(status).to_contain_text("No alert")

    await phones[0].set_offline(True)
    await hold(person)
    await expect(status).to_contain_text("Still sending your alert")
    await expect(person.get_by_role("link", name="Call 112")).to_be_visible()
    await assert_accessible(person, "the user app, still sending")
    await person.wait_for_timeout(6000)  # a retry or two while offline
    assert await own_alerts(console, user_email) == []

    await phones[0].set_offline(False)
    await expect(status).to_contain_text("Looking for a responder", timeout=15_000)
    await person.wait_for_timeout(6000)  # the retry timer fires again: nothing more is sent
    alerts = await own_alerts(console, user_email)
    assert len(alerts) == 1, alerts


async def test_a_duress_cancel_looks_exactly_like_a_real_one(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    screens = []
    for pin in ("4831", "9264"):  # the cancel PIN, then the duress PIN
        user_email, _ = await register(console, Role.USER)
        async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
            login = await http.post(
                "/auth/login/user", json={"email": user_email, "password": PASSWORD}
            )
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            pins = await http.put(
                "/users/profile",
                json={
                    "full_name": "Uma User",
                    "cancel_pin": "4831",
                    "duress_pin": "9264",
                    "password": PASSWORD,
                },
                headers=headers,
            )
            assert pins.status_code == 200, pins.text
        phones.append(await phone(browser, spot()))
        person = await phones[-1].new_page()
        await sign_in(person, f"{console.gateway.base_url}/app/", user_email)
        status = person.get_by_role("status", name="Alert status")
        await hold(person)
        await expect(status).to_contain_text("Looking for a responder")
        await person.get_by_role("button", name="Cancel alert").click()
        await person.get_by_label("PIN").fill(pin)
        await person.get_by_role("button", name="Cancel alert").click()
        await expect(status).to_contain_text("Cancelled")
        await person.wait_for_timeout(1500)  # whatever the server pushes next
        main = person.get_by_role("main")
        screens.append((await main.inner_text()).replace(user_email, "").splitlines())
        await person.screenshot(path=str(SHOTS / f"apps-cancelled-{pin}.png"))
    real, duress = screens
    # Both accounts carry the same name: every line on screen is the same.
    assert real == duress, (real, duress)
    assert "Cancelled" in real


async def test_press_to_ring_is_measured_over_several_presses(
    console: Console, browser: Browser, phones: list[BrowserContext], admin: Admin
) -> None:
    """The time from the app's `POST /alerts` leaving the user's page to the
    responder's "Incoming alert" dialog showing, over 7 presses; written to
    ``.data/screenshots/apps-ring.json`` (speed is not asserted here)."""
    where = spot()
    responder, person, _ = await on_duty_and_signed_in(
        console, browser, phones, admin, where, apart=0.002
    )
    status = person.get_by_role("status", name="Alert status")
    incoming = responder.get_by_role("dialog", name="Incoming alert")
    sent: list[float] = []

    def leaving(request: Request) -> None:
        if request.method == "POST" and request.url.endswith("/alerts"):
            sent.append(time.monotonic())

    person.on("request", leaving)
    rings_ms = []
    for _ in range(7):
        await hold(person)
        await incoming.wait_for()
        rings_ms.append((time.monotonic() - sent[-1]) * 1000)
        await incoming.get_by_role("button", name="Decline").click()
        await expect(incoming).to_be_hidden()
        await person.get_by_role("button", name="Cancel alert").click()
        await expect(status).to_contain_text("Cancelled")
    ordered = sorted(rings_ms)
    figure = {
        "presses": len(ordered),
        "press_to_ring_median_ms": round(statistics.median(ordered), 1),
        "press_to_ring_max_ms": round(ordered[-1], 1),
        "press_to_ring_ms": [round(v, 1) for v in rings_ms],
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "apps-ring.json").write_text(json.dumps(figure) + "\n")
    print("press to ring:", json.dumps(figure))
    assert len(rings_ms) == 7
