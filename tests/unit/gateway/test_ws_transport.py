"""gateway.ws.transport: the gateway's WebSocket server protocol, in a real uvicorn on loopback.

No fakes: a real uvicorn serves a small ASGI app through ``FastWebSocketProtocol``,
and real clients (the ``websockets`` library, or raw bytes on a TCP socket for
what a library would not send) talk to it. What the app received, through its
text handler or through ``receive()``, is logged in one list, so order is checked
across both ways in.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.frames import Frame, Opcode

from config.settings import HttpSettings, Settings
from gateway.app import server_options
from gateway.ws.transport import TEXT_HANDLER, FastWebSocketProtocol
from tests.unit.gateway.support import until

MAX_SIZE = 1024


@dataclass
class App:
    """Accepts, registers a text handler unless the path is ``/plain``, logs every message."""

    log: list[tuple[str, str]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    #: Texts starting with this are refused by the handler (left to the reader).
    refuse_prefix: str = "slow"

    def handler(self, text: str) -> bool | str:
        if text.startswith(self.refuse_prefix):
            return False
        self.log.append(("handler", text))
        if text.startswith("ask "):
            return f"answer to {text[4:]}"  # written at once, by the transport
        return True

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        if scope["path"] != "/plain":
            scope["extensions"][TEXT_HANDLER](self.handler)
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.closes.append(message["code"])
                return
            text = message.get("text")
            self.log.append(("queue", text if text is not None else repr(message.get("bytes"))))

    def texts(self) -> list[str]:
        return [text for _, text in self.log]

    async def wait_for(self, count: int) -> None:
        await until(lambda: len(self.log) >= count)


@dataclass
class Server:
    app: App
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(deflate: bool) -> AsyncIterator[Server]:
    app = App()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ws=FastWebSocketProtocol,
            ws_max_size=MAX_SIZE,
            ws_per_message_deflate=deflate,
            ws_ping_interval=None,
            lifespan="off",
            log_config=None,
        )
    )
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, timeout_s=10)
    try:
        yield Server(app, port)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def served() -> AsyncIterator[Server]:
    async for server in _serve(deflate=False):
        yield server


@pytest.fixture
async def served_deflate() -> AsyncIterator[Server]:
    async for server in _serve(deflate=True):
        yield server


async def raw_socket(
    port: int, path: str = "/ws"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP socket past the opening handshake, for writing frames byte by byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def server_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """The next frame the server wrote (unmasked): its opcode and payload."""
    async with asyncio.timeout(5):
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        return head[0] & 0x0F, await reader.readexactly(length)


def text(data: str | bytes, *, fin: bool = True, opcode: Opcode = Opcode.TEXT) -> bytes:
    payload = data.encode() if isinstance(data, str) else data
    return Frame(opcode, payload, fin=fin).serialize(mask=True)


async def test_text_frames_reach_the_handler_in_order_and_pings_are_still_answered(
    served: Server,
) -> None:
    reader, writer = await raw_socket(served.port)
    writer.write(text("a") + text("b") + Frame(Opcode.PING, b"hi").serialize(mask=True) + text("c"))
    assert await server_frame(reader) == (Opcode.PONG.value, b"hi")
    await served.app.wait_for(3)
    assert served.app.log == [("handler", "a"), ("handler", "b"), ("handler", "c")]
    writer.close()


async def test_frames_split_across_reads_are_each_delivered_once(served: Server) -> None:
    _, writer = await raw_socket(served.port)
    stream = b"".join(text(f"fix {i}" * (i + 1)) for i in range(30))
    for i in range(0, len(stream), 7):  # odd chunks: headers and payloads cut anywhere
        writer.write(stream[i : i + 7])
        await writer.drain()
        await asyncio.sleep(0)
    await served.app.wait_for(30)
    assert served.app.texts() == [f"fix {i}" * (i + 1) for i in range(30)]


async def test_a_frame_trickled_a_byte_at_a_time_arrives_whole(served: Server) -> None:
    _, writer = await raw_socket(served.port)
    big = "y" * (MAX_SIZE - 10)
    for byte in text(big) + text("next"):
        writer.write(bytes([byte]))
        await writer.drain()
    await served.app.wait_for(2)
    assert served.app.log == [("handler", big), ("handler", "next")]


async def test_a_fragmented_message_goes_through_the_library_and_order_holds(
    served: Server,
) -> None:
    _, writer = await raw_socket(served.port)
    writer.write(
        text("one")
        + text("tw", fin=False)
        + Frame(Opcode.PING, b"").serialize(mask=True)  # a control frame inside it
        + text("o", opcode=Opcode.CONT)
        + text("three")
    )
    await served.app.wait_for(3)
    # "three" came while "two" was still queued: queued behind it.
    assert served.app.log == [("handler", "one"), ("queue", "two"), ("queue", "three")]


async def test_a_frame_the_handler_refuses_is_queued_and_later_frames_wait_behind_it(
    served: Server,
) -> None:
    _, writer = await raw_socket(served.port)
    writer.write(text("a") + text("slow b") + text("c"))
    await served.app.wait_for(3)
    # "c" came while "slow b" was queued: queued too, not handed over ahead of it.
    assert served.app.log == [("handler", "a"), ("queue", "slow b"), ("queue", "c")]
    writer.write(text("d"))  # the queue has drained: the handler again
    await served.app.wait_for(4)
    assert served.app.log[-1] == ("handler", "d")


async def test_a_handlers_answer_is_written_at_once_in_the_order_of_the_frames(
    served: Server,
) -> None:
    reader, writer = await raw_socket(served.port)
    writer.write(text("ask one") + text("ask two") + text("slow three"))
    assert await server_frame(reader) == (Opcode.TEXT.value, b"answer to one")
    assert await server_frame(reader) == (Opcode.TEXT.value, b"answer to two")
    await served.app.wait_for(3)
    assert served.app.log == [
        ("handler", "ask one"),
        ("handler", "ask two"),
        ("queue", "slow three"),
    ]
    # The queue has drained: the handler answers again.
    writer.write(text("ask four"))
    await served.app.wait_for(4)
    assert served.app.log[-1] == ("handler", "ask four")
    assert await server_frame(reader) == (Opcode.TEXT.value, b"answer to four")


async def test_without_a_handler_every_message_is_queued(served: Server) -> None:
    _, writer = await raw_socket(served.port, "/plain")
    writer.write(text("a") + text("b") + text(b"\x01\x02", opcode=Opcode.BINARY))
    await served.app.wait_for(3)
    assert served.app.log == [("queue", "a"), ("queue", "b"), ("queue", repr(b"\x01\x02"))]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (text(b"\xff\xfe not utf-8"), 1007),
        (Frame(Opcode.TEXT, b"unmasked").serialize(mask=False), 1002),
        (text("x" * (MAX_SIZE + 1)), 1009),
        (bytes([0x80 | 0x3, 0x80]) + b"\0\0\0\0", 1002),  # an unknown opcode
        (bytes([0x81 | 0x20, 0x80 | 1]) + b"\0\0\0\0x", 1002),  # a reserved bit set
    ],
)
async def test_bad_frames_are_closed_as_the_library_closes_them(
    served: Server, frame: bytes, code: int
) -> None:
    reader, writer = await raw_socket(served.port)
    writer.write(text("before") + frame + text("after"))
    opcode, payload = await server_frame(reader)
    assert (opcode, int.from_bytes(payload[:2], "big")) == (Opcode.CLOSE.value, code)
    await served.app.wait_for(1)
    assert served.app.texts() == ["before"]


async def test_a_real_client_and_compressed_messages(served_deflate: Server) -> None:
    async with websockets.connect(served_deflate.url + "/ws", compression="deflate") as ws:
        for i in range(5):
            await ws.send(f'{{"type":"location","n":{i}}}' + " " * 200)  # compressed
        await ws.ping()
        await served_deflate.app.wait_for(5)
    assert [t.strip() for t in served_deflate.app.texts()] == [
        f'{{"type":"location","n":{i}}}' for i in range(5)
    ]
    await until(lambda: served_deflate.app.closes)
    assert served_deflate.app.closes == [1000]


def test_serve_runs_this_protocol_by_default_and_uvicorns_when_named() -> None:
    assert server_options(Settings())["ws"] is FastWebSocketProtocol
    named = Settings(http=HttpSettings(ws_impl="websockets-sansio"))
    assert server_options(named)["ws"] == "websockets-sansio"
    assert server_options(named)["ws_max_size"] == server_options(Settings())["ws_max_size"]
