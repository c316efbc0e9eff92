"""Probe routes and helpers for gateway unit tests (imported by conftest and tests).

The probe routes exercise each error path of the real middleware and
handlers; they are injected through ``create_app(routers=[probe_router])``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field

from cluster.errors import ClusterUnavailable
from config.settings import Settings
from gateway.deps import AccountsDep, SettingsDep
from persistence.errors import Conflict, PersistenceError, ServiceUnavailable
from persistence.stores.accounts import DuplicateEmail

#: Small limit so tests can exceed it cheaply (the settings floor is 1024).
TEST_MAX_BODY = 2048


class Signup(BaseModel):
    email: str
    password: str = Field(min_length=8)
    age: int = Field(ge=0, le=150)


probe_router = APIRouter()


@probe_router.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@probe_router.post("/signup")
async def signup(body: Signup) -> dict[str, str]:
    return {"ok": "yes"}


@probe_router.post("/raw")
async def raw(request: Request) -> dict[str, int]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    return {"received": received}


@probe_router.get("/needs-db")
async def needs_db(accounts: AccountsDep) -> dict[str, str]:
    return {"accounts": type(accounts).__name__}


@probe_router.get("/settings-echo")
async def settings_echo(settings: SettingsDep) -> dict[str, int]:
    return {"max_body_bytes": settings.http.max_body_bytes}


@probe_router.get("/boom")
async def boom() -> None:
    raise RuntimeError("secret internal detail: password=hunter2 at db-7.internal")


@probe_router.get("/forbidden")
async def forbidden() -> None:
    raise HTTPException(403, detail="You may not see this.")


@probe_router.get("/http-500")
async def http_500() -> None:
    raise HTTPException(500, detail="stack of internals")


_DOMAIN_ERRORS: dict[str, Exception] = {
    "conflict": Conflict('duplicate key value violates unique constraint "users_email_key"'),
    "retriable-conflict": Conflict("could not serialize access", retriable=True),
    "duplicate-email": DuplicateEmail(),
    "unavailable": ServiceUnavailable("postgres", "connection refused to 10.1.2.3:5432"),
    "persistence": PersistenceError("relation users_xyz does not exist"),
    "cluster": ClusterUnavailable("gcs at 10.9.9.9:6380 unreachable"),
}


@probe_router.get("/domain/{kind}")
async def domain(kind: str) -> None:
    raise _DOMAIN_ERRORS[kind]


def with_http(base: Settings, **http: Any) -> Settings:
    """``base`` with HTTP settings overridden (small body limit by default)."""
    values: dict[str, Any] = {"max_body_bytes": TEST_MAX_BODY, **http}
    return base.model_copy(update={"http": base.http.model_copy(update=values)})


ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def running_app(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run ``app``'s lifespan and yield a client bound to it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


async def until(check: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Let the loop run until ``check()`` is true (a timeout fails the test)."""
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - polled: what it waits for sets no event
            await asyncio.sleep(0.005)
