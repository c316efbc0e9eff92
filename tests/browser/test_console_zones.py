"""Zones drawn in the console reach the API, and the server's refusals are
shown next to the field they concern; the Zones and Analytics pages pass axe."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Admin, Console, SignIn
from tests.browser.test_console import assert_accessible

pytestmark = pytest.mark.integration


async def open_page(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Console").get_by_role("button", name=name).click()
    await page.get_by_role("heading", name=name, level=1).wait_for()


async def test_a_zone_drawn_in_the_console_is_returned_by_the_api(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    name = f"Harbour danger {uuid.uuid4().hex[:6]}"
    await sign_in(page, admin)
    await open_page(page, "Zones")
    canvas = page.get_by_role("region", name="Zones map").get_by_role("region", name="Map")
    await canvas.wait_for()
    # Close in (a zone over 10,000 km² is refused): by keyboard, as a
    # dispatcher without a mouse would, on the map's canvas.
    await canvas.focus()
    # Each step's zoom animation must end before the next key: a key pressed
    # during one restarts it from where it was, and a busy machine then lost
    # steps (the shape came out over 10,000 km² and was refused).
    for _ in range(8):
        await page.keyboard.press("Equal")
        await page.wait_for_timeout(500)
    await page.wait_for_timeout(1000)
    box = await canvas.bounding_box()
    assert box is not None
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    for dx, dy in ((-60, -40), (60, -40), (60, 40), (-60, 40)):
        await page.mouse.click(cx + dx, cy + dy)
    form = page.get_by_role("form", name="New zone")
    await form.get_by_role("button", name="Finish shape").click()
    await form.get_by_label("Name").fill(name)
    await form.get_by_label("Kind").select_option("danger")
    await assert_accessible(page, "the zones page with a drawn shape")
    await form.get_by_role("button", name="Save zone").click()
    await expect(page.get_by_role("list", name="Zones").get_by_text(name)).to_be_visible()

    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        listed = await http.get(
            "/geofencing/zones", params={"limit": 100}, headers=admin.account.headers
        )
    assert listed.status_code == 200, listed.text
    zones = [z for z in listed.json()["items"] if z["name"] == name]
    assert len(zones) == 1, listed.text
    zone = zones[0]
    assert zone["kind"] == "danger"
    assert zone["geometry"]["type"] == "Polygon"
    ring = zone["geometry"]["coordinates"][0]
    assert len(ring) == 5
    assert ring[0] == ring[-1]


async def test_the_servers_refusal_is_shown_next_to_the_shape(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    await sign_in(page, admin)
    await open_page(page, "Zones")
    form = page.get_by_role("form", name="New zone")
    await form.get_by_label("Name").fill(f"Bow tie {uuid.uuid4().hex[:6]}")
    coordinates = form.get_by_label("Coordinates (lon,lat per line)")
    # A bow tie: its edges cross, which the server refuses.
    await coordinates.fill("2.30,48.80\n2.40,48.90\n2.40,48.80\n2.30,48.90")
    await form.get_by_role("button", name="Save zone").click()
    summary = form.get_by_role("alert")
    await expect(summary).to_be_visible()
    await expect(coordinates).to_have_attribute("aria-invalid", "true")
    described = await coordinates.get_attribute("aria-describedby")
    assert described
    notes = " ".join([await page.locator(f"#{i}").inner_text() for i in described.split()])
    assert re.search(r"intersect|invalid|valid", notes, re.IGNORECASE), notes
    await assert_accessible(page, "the zones page with an error")


async def test_the_analytics_page_shows_response_times_and_passes_axe(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    await sign_in(page, admin)
    await open_page(page, "Analytics")
    await page.get_by_role("button", name="Show").click()
    await expect(page.get_by_role("table", name="Response times")).to_be_attached()
    await assert_accessible(page, "the analytics page")
