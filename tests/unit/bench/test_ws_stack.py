"""bench/ws_stack.py's own parts: the apps' count, the process tree's CPU, what is missing.

The apps are driven with a scripted ASGI ``receive``/``send`` pair (a fake of a
server, pure logic); the process tree is this test's own, from the real /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from bench import ws_stack


def _scripted(
    messages: list[dict[str, Any]],
) -> tuple[Callable[[], Any], Callable[[dict[str, Any]], Any], list[dict[str, Any]]]:
    """A fake server: ``receive`` hands out ``messages`` in order, ``send`` keeps what is sent."""
    pending = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return receive, send, sent


@pytest.mark.parametrize("app", ["raw", "starlette"])
def test_each_app_accepts_then_counts_every_text_frame_until_the_disconnect(
    app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ws_stack, "FRAMES", 0)
    frame = ws_stack.FRAME % 1
    receive, send, sent = _scripted(
        [
            {"type": "websocket.connect"},
            {"type": "websocket.receive", "text": frame},
            {"type": "websocket.receive", "bytes": b"\x00"},  # not a text frame: not counted
            {"type": "websocket.receive", "text": frame},
            {"type": "websocket.disconnect", "code": 1000},
        ]
    )
    scope = {"type": "websocket", "path": "/", "headers": [], "query_string": b""}
    asyncio.run(ws_stack.APP_OBJECTS[app](scope, receive, send))
    assert [m["type"] for m in sent] == ["websocket.accept"]
    assert ws_stack.FRAMES == 2


@pytest.mark.parametrize("app", ["raw", "starlette"])
def test_under_the_gateways_protocol_the_apps_count_in_the_text_handler(
    app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ws_stack._gateway_protocol() is not None  # this venv has the gateway
    monkeypatch.setattr(ws_stack, "FRAMES", 0)
    handlers: list[Any] = []
    receive, send, _ = _scripted(
        [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]
    )
    scope = {
        "type": "websocket",
        "path": "/",
        "headers": [],
        "query_string": b"",
        "extensions": {ws_stack.TEXT_HANDLER: handlers.append},
    }
    asyncio.run(ws_stack.APP_OBJECTS[app](scope, receive, send))
    [handler] = handlers
    assert handler(ws_stack.FRAME % 1) is True
    assert ws_stack.FRAMES == 1


def test_count_answers_over_plain_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ws_stack, "FRAMES", 41)
    receive, send, sent = _scripted([])
    asyncio.run(ws_stack.raw_app({"type": "http", "path": "/count"}, receive, send))
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"41"


def test_a_frame_that_is_not_json_fails_the_count_rather_than_passing_unparsed() -> None:
    with pytest.raises(json.JSONDecodeError):
        ws_stack._count("not json")


def test_the_process_tree_holds_a_child_and_its_cpu_counts_the_child() -> None:
    burner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nend = time.process_time() + 0.3\n"
            "while time.process_time() < end: pass\nimport sys; sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while ws_stack.tree_cpu_seconds(burner.pid)[0] < 0.25 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = ws_stack.process_tree(os.getpid())
        assert burner.pid in tree
        cpu, count = ws_stack.tree_cpu_seconds(burner.pid)
        assert count == 1
        assert cpu >= 0.25
    finally:
        burner.kill()
        burner.wait()


def test_an_unknown_server_or_a_missing_package_is_named_not_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ws_stack.unavailable_reason("nginx", "raw") == "unknown server 'nginx'"
    monkeypatch.setattr(ws_stack, "_has", lambda *modules: "granian" not in modules)
    assert ws_stack.unavailable_reason("granian", "raw") == "granian (or uvloop) is not installed"
    assert ws_stack.unavailable_reason("uvicorn-sansio", "raw") is None
