"""Client WebSocket frames cut from a byte buffer: the decisions of the /ws fast reader.

Pure (no I/O, no state). :func:`cut_frame` looks at the frame that starts at
``start`` in what a socket has received and says what to do with it:

- :class:`TextFrame`: a whole, unfragmented, masked text frame with no
  extension bits (a location fix, a ping: nearly every frame a phone sends),
  its payload unmasked. The reader decodes and delivers it itself;
- :class:`OtherFrame`: a whole frame of a known opcode, masked, within the
  size limit, that is anything else (a control frame, a fragment, binary, a
  compressed message). The reader hands exactly its bytes to the WebSocket
  library's parser, which stays at a frame boundary;
- :data:`INCOMPLETE`: the frame has not all arrived; wait for more bytes;
- :data:`UNSURE`: not a frame this module judges (an unknown opcode, an
  unmasked client frame, a length over the limit). The reader hands the rest
  of the stream to the library, which fails or handles it as it always has.

RFC 6455 section 5.2 for the layout. Whether a text payload is valid UTF-8
is the reader's to check (it decodes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - a websockets built without its C helper
    from websockets.utils import apply_mask

_FIN: Final = 0x80
_RSV: Final = 0x70
_OPCODE: Final = 0x0F
_MASK: Final = 0x80
_TEXT: Final = 0x1
#: Continuation, text, binary, close, ping, pong.
_KNOWN_OPCODES: Final = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))


@dataclass(frozen=True, slots=True)
class TextFrame:
    """A whole simple text frame: ``payload`` unmasked; the next frame starts at ``end``."""

    payload: bytes
    end: int


@dataclass(frozen=True, slots=True)
class OtherFrame:
    """A whole frame for the library's parser: ``buffer[start:end]``."""

    end: int


class _Incomplete:
    __slots__ = ()

    def __repr__(self) -> str:
        return "INCOMPLETE"


class _Unsure:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSURE"


INCOMPLETE: Final = _Incomplete()
UNSURE: Final = _Unsure()

Cut = TextFrame | OtherFrame | _Incomplete | _Unsure


def cut_frame(buffer: bytes | bytearray, start: int, max_size: int) -> Cut:
    """The frame of ``buffer`` beginning at ``start``; ``max_size`` is the largest
    payload accepted (the library's limit: a larger frame is :data:`UNSURE`)."""
    available = len(buffer) - start
    if available < 2:
        return INCOMPLETE
    head, second = buffer[start], buffer[start + 1]
    if head & _OPCODE not in _KNOWN_OPCODES or not second & _MASK:
        return UNSURE
    length = second & 0x7F
    at = start + 2
    if length == 126:
        if available < 4:
            return INCOMPLETE
        length = int.from_bytes(buffer[at : at + 2], "big")
        at += 2
    elif length == 127:
        if available < 10:
            return INCOMPLETE
        length = int.from_bytes(buffer[at : at + 8], "big")
        at += 8
    if length > max_size:
        return UNSURE
    end = at + 4 + length
    if end > len(buffer):
        return INCOMPLETE
    if head & (_FIN | _RSV | _OPCODE) != _FIN | _TEXT:
        return OtherFrame(end)
    return TextFrame(apply_mask(buffer[at + 4 : end], buffer[at : at + 4]), end)
