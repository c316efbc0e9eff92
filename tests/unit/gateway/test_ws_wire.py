"""gateway.ws.wire: client frames cut from a byte stream, against websockets' own serializer."""

from __future__ import annotations

import random

import pytest
from websockets.frames import Frame, Opcode

from gateway.ws.wire import INCOMPLETE, UNSURE, OtherFrame, TextFrame, cut_frame

MAX = 64 * 1024


def client_frame(opcode: Opcode, data: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    """One frame as a client writes it (masked with a random key)."""
    raw = Frame(opcode, data, fin=fin).serialize(mask=True)
    return bytes([raw[0] | 0x40]) + raw[1:] if rsv1 else raw  # the serializer checks rsv1


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536])
def test_a_simple_text_frame_is_cut_and_unmasked_at_every_length_encoding(size: int) -> None:
    payload = bytes(random.Random(size).randrange(32, 127) for _ in range(size))
    raw = client_frame(Opcode.TEXT, payload)
    assert cut_frame(raw, 0, 1 << 20) == TextFrame(payload, len(raw))
    # The same frame behind another one: cut from where it starts.
    before = client_frame(Opcode.TEXT, b'{"type":"ping"}')
    assert cut_frame(before + raw, len(before), 1 << 20) == TextFrame(
        payload, len(before) + len(raw)
    )


def test_until_the_whole_frame_is_there_it_is_incomplete() -> None:
    for size in (10, 300, 70_000):
        raw = client_frame(Opcode.TEXT, b"x" * size)
        for cut_at in sorted({0, 1, 2, 3, 5, 9, 10, 13, len(raw) - 1}):
            assert cut_frame(raw[:cut_at], 0, 1 << 20) is INCOMPLETE, (size, cut_at)
        assert isinstance(cut_frame(raw, 0, 1 << 20), TextFrame)


@pytest.mark.parametrize(
    ("opcode", "data", "fin", "rsv1"),
    [
        (Opcode.PING, b"hi", True, False),
        (Opcode.PONG, b"", True, False),
        (Opcode.CLOSE, b"\x03\xe8bye", True, False),
        (Opcode.BINARY, b"\x00\x01", True, False),
        (Opcode.TEXT, b'{"type":', False, False),  # the first fragment of a message
        (Opcode.CONT, b'"ping"}', True, False),
        (Opcode.TEXT, b"\x00compressed", True, True),  # permessage-deflate's bit
    ],
)
def test_any_other_whole_frame_is_for_the_library_as_exactly_its_bytes(
    opcode: Opcode, data: bytes, fin: bool, rsv1: bool
) -> None:
    raw = client_frame(opcode, data, fin=fin, rsv1=rsv1)
    after = client_frame(Opcode.TEXT, b"next")
    assert cut_frame(raw + after, 0, MAX) == OtherFrame(len(raw))
    assert cut_frame(raw[:-1], 0, MAX) is INCOMPLETE


def test_what_it_does_not_judge_goes_to_the_library() -> None:
    unmasked = Frame(Opcode.TEXT, b"hello").serialize(mask=False)
    assert cut_frame(unmasked, 0, MAX) is UNSURE
    unknown_opcode = bytes([0x80 | 0x3, 0x80 | 1]) + b"\0\0\0\0" + b"x"
    assert cut_frame(unknown_opcode, 0, MAX) is UNSURE
    # Over the limit: judged from the header alone, before the payload arrives.
    too_big = client_frame(Opcode.TEXT, b"x" * (MAX + 1))
    assert cut_frame(too_big[:14], 0, MAX) is UNSURE
    assert isinstance(cut_frame(client_frame(Opcode.TEXT, b"x" * MAX), 0, MAX), TextFrame)


def test_a_stream_of_mixed_frames_cuts_back_into_the_frames_sent() -> None:
    rng = random.Random(20)
    kinds = [Opcode.TEXT, Opcode.TEXT, Opcode.TEXT, Opcode.PING, Opcode.PONG, Opcode.BINARY]
    frames = []
    for _ in range(300):
        opcode = rng.choice(kinds)
        sizes = [0, 5, 125] if opcode in (Opcode.PING, Opcode.PONG) else [0, 5, 125, 126, 400]
        data = bytes(rng.randrange(32, 127) for _ in range(rng.choice(sizes)))
        frames.append((opcode, data, client_frame(opcode, data)))
    stream = b"".join(raw for _, _, raw in frames)
    start = 0
    for opcode, data, raw in frames:
        cut = cut_frame(stream, start, MAX)
        if opcode is Opcode.TEXT:
            assert cut == TextFrame(data, start + len(raw))
        else:
            assert cut == OtherFrame(start + len(raw))
        start += len(raw)
    assert cut_frame(stream, start, MAX) is INCOMPLETE
