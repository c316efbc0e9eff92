"""The user app's extra screens in Chromium against the live ``panic-alert serve``:
emergency contacts (add with a refused field, edit, delete), a check-in set,
surviving a reload and completed, a photo attached to an open alert by tus
(one PATCH cut by the network and resumed from HEAD; a reload mid-upload
resumed from the kept URL), and a danger-zone warning when the user's
position enters a zone an admin made. axe-core checks every screen."""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
import struct
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, expect

from gateway.auth.principal import Role
from tests.browser.conftest import SHOTS, Admin, Console
from tests.browser.test_apps import PASSWORD, hold, own_alerts, phone, register, sign_in
from tests.browser.test_console import assert_accessible, spot

pytestmark = pytest.mark.integration

CHUNK = 1024 * 1024  # the app's tus chunk (web/app/src/media/tus.ts)


async def signed_in_user(
    console: Console, browser: Browser, phones: list[BrowserContext], at: tuple[float, float]
) -> tuple[Page, str, list[str]]:
    """A new user on a phone at ``at``, signed in to the app; uncaught page errors
    are collected in the list returned (asserted empty by the tests)."""
    email, _ = await register(console, Role.USER)
    phones.append(await phone(browser, at))
    person = await phones[-1].new_page()
    errors: list[str] = []
    person.on("pageerror", lambda error: errors.append(str(error)))
    await sign_in(person, f"{console.gateway.base_url}/app/", email)
    await expect(person.get_by_role("button", name="Send panic alert")).to_be_visible()
    return person, email, errors


async def user_headers(console: Console, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        login = await http.post("/auth/login/user", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def get_json(console: Console, path: str, headers: dict[str, str]) -> Any:
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        answer = await http.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def noise_png(width: int, height: int, seed: int) -> bytes:
    """A real PNG of random pixels (incompressible: about width*height*3 bytes)."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 1))
        + chunk(b"IEND", b"")
    )


async def open_alert(console: Console, person: Page, email: str) -> str:
    """Press and hold; the open alert's id once the app shows it."""
    await hold(person)
    status = person.get_by_role("status", name="Alert status")
    await expect(status).to_contain_text("Looking for a responder", timeout=15_000)
    alerts = await own_alerts(console, email)
    assert len(alerts) == 1, alerts
    return str(alerts[0]["id"])


# --- emergency contacts -------------------------------------------------------------


async def test_contacts_are_added_with_field_errors_shown_then_edited_and_deleted(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    person, email, errors = await signed_in_user(console, browser, phones, spot())
    headers = await user_headers(console, email)
    await person.get_by_role("button", name="Emergency contacts").click()
    section = person.get_by_role("region", name="Emergency contacts")
    await expect(section.get_by_text("No contacts yet.")).to_be_visible()
    await section.get_by_role("button", name="Add a contact").click()

    form = person.get_by_role("form", name="Add a contact")
    await form.get_by_label("Name").fill("Ada Lovelace")
    phone_number = form.get_by_label("Phone number")
    await phone_number.fill("12345")  # not E.164: the server's 422 names the field
    await form.get_by_role("button", name="Add contact").click()
    await expect(phone_number).to_have_attribute("aria-invalid", "true")
    await expect(phone_number).to_have_accessible_description(
        re.compile(r"Use the international format")
    )
    await expect(form.get_by_role("alert")).to_contain_text("Check the fields marked above")
    await assert_accessible(person, "a contact with a refused phone number")
    await person.screenshot(path=str(SHOTS / "user-extras-contact-error.png"), full_page=True)
    assert (await get_json(console, "/users/emergency-contacts", headers))["items"] == []

    await phone_number.fill("+44 7700 900123")
    await form.get_by_role("button", name="Add contact").click()
    listing = section.get_by_role("list", name="Your emergency contacts")
    await expect(listing).to_contain_text("Ada Lovelace")
    await expect(phone_number).to_be_hidden()
    [made] = (await get_json(console, "/users/emergency-contacts", headers))["items"]
    assert (made["name"], made["phone"], made["notify_via"]) == (
        "Ada Lovelace",
        "+447700900123",
        ["sms"],
    )

    await section.get_by_role("button", name="Edit Ada Lovelace").click()
    edit = person.get_by_role("form", name="Edit Ada Lovelace")
    await edit.get_by_label("Relationship (optional)").fill("sister")
    await edit.get_by_role("checkbox", name="Email").check()
    await edit.get_by_role("button", name="Save contact").click()
    # Email listed without an address: refused before sending, next to the field.
    address = edit.get_by_label("Email address")
    await expect(address).to_have_accessible_description(re.compile("needs an email address"))
    await address.fill("ada@example.org")
    await edit.get_by_role("button", name="Save contact").click()
    await expect(listing).to_contain_text("(sister)")
    await assert_accessible(person, "the contacts list")
    [edited] = (await get_json(console, "/users/emergency-contacts", headers))["items"]
    assert edited["id"] == made["id"]
    assert (edited["relationship"], edited["email"], edited["notify_via"]) == (
        "sister",
        "ada@example.org",
        ["sms", "email"],
    )

    await section.get_by_role("button", name="Delete Ada Lovelace").click()
    await section.get_by_role("button", name="Yes, delete Ada Lovelace").click()
    await expect(section.get_by_text("No contacts yet.")).to_be_visible()
    await expect(section.get_by_role("status")).to_contain_text("Ada Lovelace deleted.")
    assert (await get_json(console, "/users/emergency-contacts", headers))["items"] == []
    assert errors == []


# --- check-in -----------------------------------------------------------------------


async def test_a_check_in_is_set_survives_a_reload_and_is_completed(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    person, email, errors = await signed_in_user(console, browser, phones, spot())
    headers = await user_headers(console, email)
    section = person.get_by_role("region", name="Check-in")
    by = section.get_by_label("Tell my contacts if I'm not home by")
    in_half_an_hour = await person.evaluate(
        """() => {
            const at = new Date(Date.now() + 30 * 60_000);
            const two = (n) => String(n).padStart(2, "0");
            return `${two(at.getHours())}:${two(at.getMinutes())}`;
        }"""
    )
    await by.fill(in_half_an_hour)
    await section.get_by_label("Where are you going? (optional)").fill("Walking home")
    await assert_accessible(person, "the check-in form")
    await section.get_by_role("button", name="Start check-in").click()

    timer = section.get_by_role("timer", name="Time left to check in")
    await expect(timer).to_contain_text(re.compile(r"^(29|30) min \d\d s left$"))
    running = await get_json(console, "/checkins/current", headers)
    assert (running["status"], running["note"]) == ("running", "Walking home")
    due = datetime.fromisoformat(running["due_at"])
    left = (due - datetime.now(UTC)).total_seconds()
    assert 28 * 60 < left <= 30 * 60, left
    before = await timer.inner_text()
    await expect(timer).not_to_have_text(before)  # it counts down

    await person.reload()
    await expect(timer).to_contain_text(re.compile(r"min \d\d s left$"))
    await expect(section).to_contain_text("(Walking home)")
    await assert_accessible(person, "a running check-in")
    await person.screenshot(path=str(SHOTS / "user-extras-checkin.png"), full_page=True)

    await section.get_by_role("button", name="I'm safe").click()
    await expect(section.get_by_role("status")).to_contain_text("You checked in")
    await expect(timer).to_be_hidden()
    await expect(section.get_by_role("button", name="Start check-in")).to_be_visible()
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        current = await http.get("/checkins/current", headers=headers)
    assert current.status_code == 404, current.text
    assert errors == []


# --- attachments --------------------------------------------------------------------


async def test_a_photo_goes_up_by_tus_and_resumes_after_a_cut_patch(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    person, email, errors = await signed_in_user(console, browser, phones, spot())
    alert_id = await open_alert(console, person, email)
    section = person.get_by_role("region", name="Photos, audio and video")
    await expect(section.get_by_text("Nothing attached yet.")).to_be_visible()
    await assert_accessible(person, "an open alert's attachments")

    photo = noise_png(1024, 860, seed=1)  # about 2.5 MiB: three chunks
    asked: list[tuple[str, str | None]] = []
    person.on(
        "request",
        lambda r: (
            asked.append((r.method, r.headers.get("upload-offset")))
            if "/media/uploads" in r.url
            else None
        ),
    )
    cut: list[str] = []

    async def cut_the_second_patch(route: Route) -> None:
        request = route.request
        at = request.headers.get("upload-offset")
        if request.method == "PATCH" and at == str(CHUNK) and not cut:
            cut.append(request.url)
            await route.abort("internetdisconnected")
            return
        await route.continue_()

    await person.route("**/media/uploads/**", cut_the_second_patch)
    await section.get_by_label("Attach photo, audio or video").set_input_files(
        {"name": "scene.png", "mimeType": "image/png", "buffer": photo}
    )
    progress = section.get_by_role("progressbar", name="Upload progress")
    await expect(progress).to_be_visible()
    await expect(section.get_by_role("status")).to_contain_text(
        "scene.png uploaded", timeout=30_000
    )
    await expect(progress).to_be_hidden()
    await expect(section.get_by_role("list", name="Attached files")).to_contain_text(
        re.compile(r"Photo · 2\.\d MB")
    )
    await assert_accessible(person, "an attached photo")
    await person.screenshot(path=str(SHOTS / "user-extras-attached.png"), full_page=True)

    # One creation; the cut chunk was asked about (HEAD) and sent again from there.
    assert len(cut) == 1
    assert asked == [
        ("POST", None),
        ("PATCH", "0"),
        ("PATCH", str(CHUNK)),
        ("HEAD", None),
        ("PATCH", str(CHUNK)),
        ("PATCH", str(2 * CHUNK)),
    ], asked
    listed = await get_json(console, f"/media/alert/{alert_id}", await user_headers(console, email))
    [media] = listed["items"]
    assert (media["size"], media["sha256"], media["content_type"]) == (
        len(photo),
        hashlib.sha256(photo).hexdigest(),
        "image/png",
    )
    assert errors == []


async def test_an_upload_cut_off_by_a_reload_resumes_from_the_kept_url(
    console: Console, browser: Browser, phones: list[BrowserContext]
) -> None:
    person, email, errors = await signed_in_user(console, browser, phones, spot())
    alert_id = await open_alert(console, person, email)
    section = person.get_by_role("region", name="Photos, audio and video")
    photo = noise_png(900, 800, seed=2)  # about 2.1 MiB
    asked: list[tuple[str, str | None]] = []
    person.on(
        "request",
        lambda r: (
            asked.append((r.method, r.headers.get("upload-offset")))
            if "/media/uploads" in r.url
            else None
        ),
    )

    network = {"up": False}

    async def no_network_after_the_first_chunk(route: Route) -> None:
        at = route.request.headers.get("upload-offset")
        if route.request.method == "PATCH" and at != "0" and not network["up"]:
            await route.abort("internetdisconnected")
        else:
            await route.continue_()

    await person.route("**/media/uploads/**", no_network_after_the_first_chunk)
    await section.get_by_label("Attach photo, audio or video").set_input_files(
        {"name": "street.png", "mimeType": "image/png", "buffer": photo}
    )
    progress = section.get_by_role("progressbar", name="Upload progress")
    await expect(progress).to_have_attribute("value", str(CHUNK))
    for _ in range(100):  # two cut attempts, each followed by a HEAD
        if asked.count(("HEAD", None)) >= 2:
            break
        await asyncio.sleep(0.1)
    assert asked.count(("HEAD", None)) >= 2, asked
    await person.screenshot(path=str(SHOTS / "user-extras-upload-stalled.png"), full_page=True)

    network["up"] = True
    before_reload = len(asked)
    await person.reload()
    await expect(section.get_by_role("status")).to_contain_text(
        "street.png uploaded", timeout=30_000
    )
    # The same upload, asked where it stands, and sent on from there (not from 0).
    after = asked[before_reload:]
    assert asked.count(("POST", None)) == 1, asked
    assert ("HEAD", None) in after, after
    patched = [int(at or -1) for method, at in after if method == "PATCH"]
    assert patched, after
    assert min(patched) >= CHUNK, after
    listed = await get_json(console, f"/media/alert/{alert_id}", await user_headers(console, email))
    [media] = listed["items"]
    assert media["sha256"] == hashlib.sha256(photo).hexdigest()
    await expect(section.get_by_role("list", name="Attached files")).to_contain_text("Photo")
    kept = await person.evaluate(
        """() => new Promise((done) => {
            const open = indexedDB.open("panic-alert-uploads", 1);
            open.onsuccess = () => {
                const all = open.result.transaction("uploads").objectStore("uploads").count();
                all.onsuccess = () => done(all.result);
            };
        })"""
    )
    assert kept == 0  # nothing left to resume
    assert errors == []


# --- danger zones -------------------------------------------------------------------


async def test_entering_a_danger_zone_shows_a_dismissible_warning(
    console: Console, browser: Browser, phones: list[BrowserContext], admin: Admin
) -> None:
    where = spot()
    person, email, errors = await signed_in_user(console, browser, phones, where)
    await expect(person.get_by_text("Connected", exact=True)).to_be_visible(timeout=15_000)
    name = f"Dock 9 after dark {uuid.uuid4().hex[:4]}"
    zone = {
        "name": name,
        "kind": "danger",
        "geometry": {"type": "Point", "coordinates": [where[1], where[0]]},
        "radius_m": 150,
        "rules": {"notify_subject": True},
    }
    headers = await user_headers(console, email)
    warning = person.get_by_role("alert").filter(has_text="You are in a danger zone")
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        made = await http.post("/geofencing/zones", json=zone, headers=admin.account.headers)
        assert made.status_code == 201, made.text

        async def fix(at: tuple[float, float]) -> None:
            body = {
                "latitude": at[0],
                "longitude": at[1],
                "accuracy_m": 10,
                "recorded_at": datetime.now(UTC).isoformat(),
            }
            sent = await http.post("/geofencing/location", json=body, headers=headers)
            assert sent.status_code == 202, sent.text

        await fix((where[0] + 0.05, where[1]))  # well outside first
        # Inside until the user's shard knows the new zone: then one entry, one frame.
        for _ in range(30):
            await fix(where)
            if await warning.count():
                break
            await asyncio.sleep(1)
    await expect(warning).to_contain_text(name)
    await expect(warning).to_contain_text("leave the area if you can")
    await assert_accessible(person, "a danger-zone warning")
    await person.screenshot(path=str(SHOTS / "user-extras-danger-zone.png"), full_page=True)
    await warning.get_by_role("button", name=f"Dismiss warning about {name}").click()
    await expect(warning).to_have_count(0)
    await expect(person.get_by_role("button", name="Send panic alert")).to_be_visible()
    assert errors == []


async def test_while_a_check_in_runs_the_apps_own_position_warns_of_a_danger_zone(
    console: Console, browser: Browser, phones: list[BrowserContext], admin: Admin
) -> None:
    where = spot()
    outside = (where[0] + 0.05, where[1])
    person, _, errors = await signed_in_user(console, browser, phones, outside)
    context = phones[-1]
    name = f"Underpass {uuid.uuid4().hex[:4]}"
    zone = {
        "name": name,
        "kind": "danger",
        "geometry": {"type": "Point", "coordinates": [where[1], where[0]]},
        "radius_m": 150,
        "rules": {"notify_subject": True},
    }
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        made = await http.post("/geofencing/zones", json=zone, headers=admin.account.headers)
    assert made.status_code == 201, made.text
    section = person.get_by_role("region", name="Check-in")
    await section.get_by_role("button", name="Start check-in").click()
    await expect(section.get_by_role("timer", name="Time left to check in")).to_be_visible()
    warning = person.get_by_role("alert").filter(has_text="You are in a danger zone")
    # The phone walks in (and out and in again until the user's shard knows the
    # new zone): the app's own fixes, sent on its socket, raise the warning.
    for _ in range(30):
        await context.set_geolocation({"latitude": where[0], "longitude": where[1], "accuracy": 10})
        try:
            await expect(warning).to_contain_text(name, timeout=1_000)
            break
        except AssertionError:
            lat, lon = outside
            await context.set_geolocation({"latitude": lat, "longitude": lon, "accuracy": 10})
            await asyncio.sleep(0.5)
    await expect(warning).to_contain_text(name)
    await section.get_by_role("button", name="I'm safe").click()
    assert errors == []
