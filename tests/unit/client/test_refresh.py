"""The 401 → refresh → retry path, over httpx's MockTransport (no server):
concurrent 401s spend the single-use refresh token once."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from panic_alert_client import AsyncClient, SessionEnded, Tokens

ME = {"id": "6f1c1d6e-8a9e-4d6b-9f3e-1a2b3c4d5e6f", "email": "a@example.org"}
ME |= {"full_name": "A", "role": "user"}


class FakeAuth:
    """Accepts access token ``a<n>`` of the newest pair only; refresh token ``r<n>`` once."""

    def __init__(self) -> None:
        self.generation = 0
        self.refreshes = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/auth/refresh":
            await asyncio.sleep(0.01)  # let the other callers pile up behind the lock
            self.refreshes += 1
            if json.loads(request.content)["refresh_token"] != f"r{self.generation}":
                return httpx.Response(401, json={"title": "Unauthorized", "status": 401})
            self.generation += 1
            pair = {"access_token": f"a{self.generation}", "refresh_token": f"r{self.generation}"}
            return httpx.Response(200, json={**pair, "expires_in": 900})
        if request.headers.get("Authorization") != f"Bearer a{self.generation}":
            return httpx.Response(401, json={"title": "Unauthorized", "status": 401})
        return httpx.Response(200, json=ME)


async def test_concurrent_401s_refresh_once_then_all_succeed() -> None:
    auth = FakeAuth()
    http = httpx.AsyncClient(base_url="http://test", transport=httpx.MockTransport(auth))
    async with AsyncClient("http://test", tokens=Tokens("stale", "r0", 900), http=http) as api:
        accounts = await asyncio.gather(*(api.me() for _ in range(5)))
    assert {a.email for a in accounts} == {"a@example.org"}
    assert auth.refreshes == 1
    assert api.tokens == Tokens("a1", "r1", 900)


async def test_a_refused_refresh_ends_the_session_and_forgets_the_tokens() -> None:
    auth = FakeAuth()
    told: list[Tokens | None] = []
    http = httpx.AsyncClient(base_url="http://test", transport=httpx.MockTransport(auth))
    tokens = Tokens("stale", "spent", 900)
    async with AsyncClient("http://test", tokens=tokens, on_tokens=told.append, http=http) as api:
        with pytest.raises(SessionEnded) as ended:
            await api.me()
    assert ended.value.status == 401
    assert api.tokens is None
    assert told == [None]
