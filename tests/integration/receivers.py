"""Local stand-ins for notification receivers, as pytest fixtures: an SMTP
server (aiosmtpd) that keeps every message, and an HTTP server (uvicorn)
that answers POSTs, failing the first ``fail_first`` of them on purpose.

Import the fixtures into a test module by name (``smtp``, ``receiver``).
"""

from __future__ import annotations

import asyncio
import email
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
import uvicorn
from aiosmtpd.controller import Controller
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.local import LOOPBACK, free_port


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class Receiver:
    """Answers POSTs: the first ``fail_first`` of each delivery (``X-Panic-Delivery``)
    with ``fail_status``, the rest 200; keeps every one, with its status."""

    fail_first: int = 0
    fail_status: int = 503
    hits: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        headers = dict(request.headers)
        delivery = headers.get("x-panic-delivery")
        seen = sum(1 for _p, h, _b in self.hits if h.get("x-panic-delivery") == delivery)
        self.hits.append((request.url.path, headers, await request.body()))
        status = self.fail_status if seen < self.fail_first else 200
        self.statuses.append(status)
        return Response(status_code=status)

    def for_alert(self, alert_id: str) -> list[tuple[int, dict[str, Any]]]:
        """(status, JSON body) of each POST about ``alert_id``, in order."""
        found = []
        for (_path, _headers, body), status in zip(self.hits, self.statuses, strict=True):
            data = json.loads(body) if body.startswith(b"{") else {}
            if data.get("alert_id") == alert_id:
                found.append((status, data))
        return found


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname=LOOPBACK, port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    found = Receiver()
    app = Starlette(routes=[Route("/{path:path}", found.endpoint, methods=["POST"])])
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_config=None))
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # up to 10 s
        if server.started:
            break
        await asyncio.sleep(0.02)
    assert server.started, "the local HTTP receiver did not start"
    try:
        yield found, f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        await task
