"""Signing in and out of the console: the second factor when the account has
one, and a sign-out that ends the session on the server and closes the socket."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import httpx
import pytest
from playwright.async_api import Page, Response, WebSocket, expect

from gateway.auth.totp import code_at, step_of
from tests.browser.conftest import Admin, Console, SignIn
from tests.browser.test_console import assert_accessible

pytestmark = pytest.mark.integration


async def test_an_admin_with_a_second_factor_signs_in_with_the_code(
    console: Console, page: Page, admin: Admin
) -> None:
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        login = await http.post(
            "/auth/login/user", json={"email": admin.email, "password": admin.password}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        started = await http.post(
            "/auth/totp/enrolment", json={"password": admin.password}, headers=headers
        )
        assert started.status_code == 201, started.text
        secret = started.json()["secret"]
        step = step_of(datetime.now(UTC))
        confirmed = await http.post(
            "/auth/totp/enrolment/confirm",
            json={"totp_code": code_at(secret, step)},
            headers=headers,
        )
        assert confirmed.status_code == 200, confirmed.text

    await page.goto(console.url)
    await page.get_by_label("Email").fill(admin.email)
    await page.get_by_label("Password").fill(admin.password)
    await page.get_by_role("button", name="Sign in").click()
    code = page.get_by_label("Authentication code")
    await expect(page.get_by_role("alert")).to_contain_text("authenticator")
    await assert_accessible(page, "the second-factor step")
    await code.fill("000000")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("not accepted")
    # The code that confirmed the enrolment is spent: the next one.
    await code.fill(code_at(secret, step + 1))
    await page.get_by_role("button", name="Sign in").click()
    await page.get_by_role("heading", name=re.compile(r"^Open alerts")).wait_for()


async def test_signing_out_ends_the_session_and_closes_the_socket(
    console: Console, page: Page, admin: Admin, sign_in: SignIn
) -> None:
    sockets: list[WebSocket] = []
    closed = asyncio.Event()
    tokens: list[str] = []

    def opened(ws: WebSocket) -> None:
        sockets.append(ws)
        ws.on("close", lambda _ws: closed.set())

    async def answered(response: Response) -> None:
        if response.url.endswith("/auth/login/user") and response.ok:
            tokens.append((await response.json())["access_token"])

    page.on("websocket", opened)
    page.on("response", answered)
    await sign_in(page, admin)
    assert sockets, "the console opened no socket"
    assert tokens, "no sign-in answer was seen"
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("button", name="Sign in").wait_for()
    await asyncio.wait_for(closed.wait(), 5)
    async with httpx.AsyncClient(base_url=console.gateway.base_url, timeout=20) as http:
        me = await http.get("/auth/me", headers={"Authorization": f"Bearer {tokens[-1]}"})
    assert me.status_code == 401, me.text
