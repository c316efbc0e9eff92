"""Helpers for gateway integration tests: the real app against the real local services."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan (opening the real backends) and yield a client bound to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


async def poll(
    client: httpx.AsyncClient,
    path: str,
    until: Callable[[httpx.Response], bool],
    *,
    deadline_s: float,
    interval_s: float = 0.25,
) -> httpx.Response:
    """GET ``path`` until ``until(response)`` holds or the deadline passes; the last response."""
    deadline = time.monotonic() + deadline_s
    while True:
        response = await client.get(path)
        if until(response) or time.monotonic() >= deadline:
            return response
        await asyncio.sleep(interval_s)
