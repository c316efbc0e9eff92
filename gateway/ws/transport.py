"""The gateway's WebSocket server protocol: uvicorn's websockets-sansio, with a fast reader.

uvicorn parses every frame with the ``websockets`` library's sans-I/O parser,
puts each message on a queue, pauses the socket's reads, and the ASGI app's
task wakes to take it and resumes them. For a gateway whose sockets mostly
send one small text frame a second each (a phone's location fixes) that was
most of the cost of a frame (``bench/ws_stack.py``: 34 µs a frame, against
19 for the same frames cut and delivered in ``data_received``).

:class:`FastWebSocketProtocol` is uvicorn's protocol with two changes, both
falling back to it unchanged:

- **Its own framing** once the handshake is done: complete frames are cut
  from the received bytes by :func:`gateway.ws.wire.cut_frame`. A simple
  text frame (whole, masked, no extension bits, valid UTF-8, within the size
  limit, not inside a fragmented message) is decoded here. Any other whole
  frame (pings, pongs, close, fragments, binary, compressed) is handed, as
  exactly its bytes, to the library's parser, which is so always at a frame
  boundary and judges it as it would have; anything this module does not
  judge (an unknown opcode, an unmasked frame, a frame over the size limit)
  hands the rest of the stream to the library for good. So is every byte once
  the connection is no longer open (closing), or if anything but the
  replayed upgrade request arrived before the handshake finished.
- **A text handler** the app may register through the ASGI scope's
  extension :data:`TEXT_HANDLER` (``scope["extensions"][TEXT_HANDLER](handler)``).
  While one is set, no message is queued and the socket takes writes (its
  transport not paused by flow control), a text frame is given to
  ``handler(text)`` at once, in ``data_received``; it returns True when it
  took the frame, False to have it queued for ``receive()`` as usual (the
  app's reader is busy, say), or a ``str``: it took the frame, and that is
  its answer, written at once as one text frame (as ``websocket.send`` would,
  without the app's send path: the bulk feed answers each frame so). Frames
  are so never reordered, nor answers.

Everything else (the handshake, sending, closing, keepalive pings, the
queue's disconnect messages) is uvicorn's. It relies on the attributes of
uvicorn's ``WebSocketsSansIOProtocol`` (``conn``, ``queue``, ``frames``,
``curr_msg_data_type``, ``close_sent``, ``handshake_initiated``,
``send_receive_event_to_app``), pinned by
``uv.lock`` and covered by the /ws tests, which run through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway.ws.wire import INCOMPLETE, UNSURE, OtherFrame, TextFrame, cut_frame

log = logging.getLogger(__name__)

#: The ASGI scope extension through which an app registers its text handler.
TEXT_HANDLER: Final = "panic.ws.text_handler"

#: True: taken; False: queue it for ``receive()``; a str: taken, and write this answer now.
TextHandler = Callable[[str], bool | str]

_END_OF_HEADERS: Final = b"\r\n\r\n"


class FastWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol with its own framing and a text handler."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        #: Whether this protocol cuts frames itself (None: not decided yet).
        self._framing: bool | None = None
        self._text_handler: TextHandler | None = None

    # --- the handshake ----------------------------------------------------------------

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][TEXT_HANDLER] = self._set_text_handler

    def _set_text_handler(self, handler: TextHandler | None) -> None:
        self._text_handler = handler

    # --- reading ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        framing = self._framing
        if framing is None:
            conn: ServerProtocol = self.conn
            if conn.state is State.CONNECTING:
                # Framing only if the first read was the upgrade request, whole and
                # alone (uvicorn replays just the request), and nothing came after it
                # before the 101: else the library's parser may be inside a frame.
                if self.handshake_initiated or data.find(_END_OF_HEADERS) != len(data) - 4:
                    self._framing = False
                super().data_received(data)
                return
            framing = self._framing = conn.state is State.OPEN and not conn.reader.buffer
        if not framing:
            super().data_received(data)
            return
        # A frame's start waits in _pending until the frame is whole; a bytearray,
        # so a frame trickled in small reads is not copied again with every read.
        pending = self._pending
        buffer: bytes | bytearray = data
        if pending:
            pending += data
            buffer = pending
        start = 0
        conn = self.conn
        max_size = conn.max_message_size
        while start < len(buffer):
            if conn.state is not State.OPEN or max_size is None or conn.max_fragment_size:
                self._hand_over(buffer[start:])
                return
            cut = cut_frame(buffer, start, max_size)
            if (
                isinstance(cut, TextFrame)
                and conn.current_size is None
                and self._deliver(cut.payload)
            ):
                start = cut.end
            elif isinstance(cut, TextFrame | OtherFrame):
                # Inside a fragmented message, not UTF-8, or not a simple text frame.
                super().data_received(bytes(buffer[start : cut.end]))
                start = cut.end
            elif cut is INCOMPLETE:
                break
            else:
                assert cut is UNSURE
                self._hand_over(buffer[start:])
                return
        if buffer is pending:
            del pending[:start]
        elif start < len(buffer):
            self._pending = bytearray(buffer[start:])

    def _deliver(self, payload: bytes) -> bool:
        """Deliver a simple text frame here; False: let the library's parser have it
        (invalid UTF-8, which it closes with 1007)."""
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            return False
        if self.close_sent:
            return True  # past our close: uvicorn discards messages too
        handler = self._text_handler
        if handler is not None and self.queue.empty() and self.writable.is_set():
            try:
                taken = handler(text)
            except Exception:
                # The app's bug must not break the server's read loop; the
                # frame still reaches the app the slow way.
                log.exception("ws: text handler failed")
                taken = False
            if isinstance(taken, str):
                self._write_text(taken)
                return True
            if taken:
                return True
        self.frames = [payload]
        self.curr_msg_data_type = "text"
        self.send_receive_event_to_app()
        return True

    def _write_text(self, text: str) -> None:
        """One text frame written now, as uvicorn's ``send`` writes a ``websocket.send``
        (the handler was called only while the socket takes writes)."""
        try:
            self.conn.send_text(text.encode())
        except InvalidState:  # closing meanwhile: the answer has no one to go to
            return
        self.transport.write(b"".join(self.conn.data_to_send()))

    def _hand_over(self, rest: bytes | bytearray) -> None:
        """From here on, every byte to the library's parser (at a frame boundary)."""
        self._framing = False
        self._pending = bytearray()
        if rest:
            super().data_received(bytes(rest))
