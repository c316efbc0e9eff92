"""cluster.fix_stream: batches of fixes over a loopback TCP stream, answered in order.

No Ray here: a ``FixStreamServer`` whose ``track`` is a recorder (a fake of the
shard) and a ``FixStreams`` client whose address lookup points at it. The real
shard's side is in ``tests/component/test_fix_stream.py``.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
from datetime import UTC, datetime

import pytest

from cluster.errors import ClusterUnavailable
from cluster.fix_stream import (
    MAX_PART,
    REFUSAL_LOG_EVERY_S,
    TOKEN_BYTES,
    Address,
    BadFrame,
    FixStreams,
    FixStreamServer,
    encode_batch,
    part_sizes,
    read_batch,
)
from cluster.tracking import PackedFixes, pack_fixes
from geo.fences import Fix

AT = datetime(2026, 12, 7, 2, tzinfo=UTC)


def batch(*keys: str) -> PackedFixes:
    return pack_fixes([(key, Fix(52.5, 13.4 + i / 1000, 10.0, AT)) for i, key in enumerate(keys)])


class FakeShard:
    """A shard's ``track`` that records each batch and answers its size, or waits."""

    def __init__(self) -> None:
        self.batches: list[PackedFixes] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def track(self, packed: PackedFixes) -> int:
        await self.hold.wait()
        self.batches.append(packed)
        return len(packed[2]) // 8


class FakeClock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: object, deadline_s: float = 5.0) -> None:
    async with asyncio.timeout(deadline_s):
        while not callable(condition) or not condition():  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)


async def opened(streams: FixStreams, shard: int, packed: PackedFixes) -> asyncio.Future[object]:
    """The first answer ``send`` gives once its stream is open (the first sends open it)."""
    async with asyncio.timeout(5):
        while (answer := streams.send(shard, packed)) is None:  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.01)
    return answer


def test_a_batch_on_the_wire_is_its_header_then_its_parts() -> None:
    packed = batch("user:a", "agent:b")
    wire = encode_batch(packed)
    keys = packed[0].encode()
    assert part_sizes(wire[:12]) == (len(keys), len(packed[1]), len(packed[2]))
    assert wire[12:] == keys + packed[1] + packed[2]


async def test_a_batch_read_back_is_the_batch_sent() -> None:
    packed = batch("user:ü", "user:b")
    reader = asyncio.StreamReader()
    reader.feed_data(encode_batch(packed) + encode_batch(batch()))
    reader.feed_eof()
    assert await read_batch(reader) == packed
    assert await read_batch(reader) == ("", b"", b"")
    with pytest.raises(asyncio.IncompleteReadError):
        await read_batch(reader)


async def test_a_part_past_the_limit_or_keys_not_utf8_break_the_rules() -> None:
    with pytest.raises(BadFrame, match="bytes"):
        part_sizes(struct.pack("<III", 10, MAX_PART + 1, 8))
    reader = asyncio.StreamReader()
    reader.feed_data(struct.pack("<III", 2, 0, 0) + b"\xff\xfe")
    with pytest.raises(BadFrame, match="UTF-8"):
        await read_batch(reader)


async def test_batches_go_over_the_stream_once_open_and_are_answered_in_order() -> None:
    shard = FakeShard()
    server = FixStreamServer(shard.track, "127.0.0.1")
    asked: list[int] = []

    async def address_of(index: int) -> Address:
        asked.append(index)
        return await server.address()

    streams = FixStreams(address_of)
    try:
        # No stream yet: the caller sends this one as a call; a stream opens meanwhile.
        assert streams.send(3, batch("user:first")) is None
        first = await opened(streams, 3, batch("user:a"))
        assert await first == 1
        shard.hold.clear()  # the next two wait in the shard, answered in their order
        second = streams.send(3, batch("user:b", "user:c"))
        third = streams.send(3, batch("user:d"))
        assert second is not None
        assert third is not None
        await asyncio.sleep(0.05)
        assert not second.done()
        assert not third.done()
        shard.hold.set()
        assert [await second, await third] == [2, 1]
        assert [p[0] for p in shard.batches] == ["user:a", "user:b\nuser:c", "user:d"]
        assert asked == [3]  # one connection, asked for once
        assert streams.sent == 3
        assert server.batches == 3
        assert server.refused == 0
    finally:
        streams.close()
        server.close()


async def test_a_wrong_token_is_refused_and_calls_go_on_until_the_retry() -> None:
    shard = FakeShard()
    server = FixStreamServer(shard.track, "127.0.0.1")
    now = [100.0]

    async def wrong_token(_index: int) -> Address:
        host, port, _token = await server.address()
        return host, port, b"x" * TOKEN_BYTES

    streams = FixStreams(wrong_token, retry_s=5.0, clock=lambda: now[0])
    try:
        assert streams.send(0, batch("user:a")) is None  # a call; a stream opens meanwhile
        await until(lambda: server.refused == 1 and not streams.is_open(0))
        assert shard.batches == []  # nothing over it tracked
        # Refused: calls still, and no new connection before retry_s.
        assert streams.send(0, batch("user:b")) is None
        await asyncio.sleep(0.05)
        assert streams.send(0, batch("user:c")) is None
        await asyncio.sleep(0.05)
        assert server.refused == 1
        now[0] += 6
        assert streams.send(0, batch("user:d")) is None
        await until(lambda: server.refused == 2)
        assert streams.sent == 0
    finally:
        streams.close()
        server.close()


async def test_a_stream_that_breaks_fails_its_unanswered_batches_and_opens_again() -> None:
    shard = FakeShard()
    servers = [FixStreamServer(shard.track, "127.0.0.1")]
    now = [0.0]

    async def address_of(_index: int) -> Address:
        return await servers[-1].address()

    streams = FixStreams(address_of, retry_s=1.0, clock=lambda: now[0])
    try:
        assert await (await opened(streams, 1, batch("user:a"))) == 1
        shard.hold.clear()
        waiting = streams.send(1, batch("user:b"))
        assert waiting is not None
        await asyncio.sleep(0.05)
        servers[0].close()  # as when the shard's process ends: listener and connections
        with pytest.raises(ClusterUnavailable):
            await waiting
        assert streams.send(1, batch("user:c")) is None  # calls meanwhile
        shard.hold.set()
        servers.append(FixStreamServer(shard.track, "127.0.0.1"))  # restarted: a new token
        now[0] += 2
        assert await (await opened(streams, 1, batch("user:e"))) == 1
        assert servers[1].batches == 1
    finally:
        streams.close()
        for server in servers:
            server.close()


async def test_a_header_past_the_limit_closes_the_connection() -> None:
    shard = FakeShard()
    server = FixStreamServer(shard.track, "127.0.0.1")
    try:
        host, port, token = await server.address()
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(token + struct.pack("<III", MAX_PART + 1, 0, 0))
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed, nothing answered
        writer.close()
        assert server.refused == 1
        assert shard.batches == []
    finally:
        server.close()


async def test_batches_read_at_once_let_the_shards_other_work_run_between_them() -> None:
    """Three batches in one write are all buffered before the first is tracked: the
    listener still lets other tasks run between them, as between Ray calls."""
    seen: list[str] = []

    async def track(packed: PackedFixes) -> int:
        seen.append(packed[0])
        return 0

    async def other_work() -> None:
        while True:
            seen.append("other")
            await asyncio.sleep(0)

    server = FixStreamServer(track, "127.0.0.1")
    host, port, token = await server.address()
    reader, writer = await asyncio.open_connection(host, port)
    other = asyncio.create_task(other_work())
    try:
        writer.write(token + b"".join(encode_batch(batch(f"user:{n}")) for n in "abc"))
        async with asyncio.timeout(5):
            assert await reader.readexactly(12) == bytes(12)
        batches = [i for i, item in enumerate(seen) if item != "other"]
        assert [seen[i] for i in batches] == ["user:a", "user:b", "user:c"]
        assert all(b - a > 1 for a, b in itertools.pairwise(batches)), seen
    finally:
        other.cancel()
        writer.close()
        server.close()


async def test_a_flood_of_refused_connections_is_counted_each_and_logged_sparingly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every refusal counts; the log gets one warning per ``REFUSAL_LOG_EVERY_S``,
    the next one saying how many it left out."""
    clock = FakeClock()
    server = FixStreamServer(FakeShard().track, "127.0.0.1", clock=clock)

    async def refused_once() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(bytes(TOKEN_BYTES))
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()

    try:
        host, port, _token = await server.address()
        for _ in range(5):
            await refused_once()
        clock.now += REFUSAL_LOG_EVERY_S
        await refused_once()
        await until(lambda: server.refused == 6)
        warnings = [r.getMessage() for r in caplog.records if "closed" in r.getMessage()]
        assert len(warnings) == 2, warnings
        assert warnings[0].endswith("a wrong token")
        assert warnings[1].endswith("a wrong token (4 more refused since the last warning)")
    finally:
        server.close()
