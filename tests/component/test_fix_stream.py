"""Location fixes over each shard's stream (``cluster.fix_stream``), real shards on a local Ray.

The same fixes end the same whether they go over a shard's stream or as Ray
calls; a connection without the shard's token, or breaking the stream's rules,
is closed with nothing of it tracked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from actors.effects import EntityKind
from actors.subject import SubjectRole, SubjectState, subject_key
from cluster.client import EntityClient
from cluster.fix_stream import MAX_PART, TOKEN_BYTES, encode_batch
from cluster.tracking import pack_fixes
from geo.fences import Fix
from tests.component.conftest import NAMESPACE, SHARDS

pytestmark = pytest.mark.component

SUBJECT = EntityKind.SUBJECT


def user_on(client: EntityClient, shard: int) -> str:
    while True:
        key = subject_key(SubjectRole.USER, uuid4())
        if client.shard_of(SUBJECT, key) == shard:
            return key


async def state_of(shards: list[Any], client: EntityClient, key: str) -> SubjectState | None:
    found = await shards[client.shard_of(SUBJECT, key)].inspect.remote(SUBJECT, key)
    assert found is None or isinstance(found, SubjectState)
    return found


async def state_with(shards: list[Any], client: EntityClient, key: str, fix: Fix) -> SubjectState:
    """The subject's state once its last fix is ``fix``. A shard answers a batch
    once it has taken it, not applied it: a subject activates (a read of its
    snapshot) before it applies its first fix, so the state is waited for."""
    async with asyncio.timeout(10):
        while True:
            state = await state_of(shards, client, key)
            if state is not None and state.last_fix == fix:
                return state
            await asyncio.sleep(0.05)


async def refused(shard: Any) -> int:
    return int((await shard.stats.remote())["fix_stream_refused"])


async def test_fixes_over_the_streams_end_as_fixes_sent_as_calls(
    client: EntityClient, shards: list[Any]
) -> None:
    called = EntityClient(SHARDS, namespace=NAMESPACE, fix_stream=False)
    assert client.fix_streams is not None
    assert called.fix_streams is None
    before = [(await s.stats.remote())["fix_stream_batches"] for s in shards]
    at = datetime.now(UTC)
    # The first fixes for a shard go as calls while its stream opens.
    async with asyncio.timeout(30):
        while not all(client.fix_streams.is_open(shard) for shard in range(SHARDS)):
            for shard in range(SHARDS):
                client.track(user_on(client, shard), Fix(52.5, 13.4, 10.0, at))
            await client.flush()
            await asyncio.sleep(0.05)
    sent = client.fix_streams.sent
    walk = [(52.5 + i / 1000, 13.4, 5.0 + i, at + timedelta(seconds=i)) for i in range(5)]
    pairs = [(user_on(client, shard), user_on(client, shard)) for shard in range(SHARDS)]
    for lat, lon, accuracy, when in walk:
        for by_stream, by_call in pairs:
            client.track(by_stream, Fix(lat, lon, accuracy, when))
            called.track(by_call, Fix(lat, lon, accuracy, when))
        await asyncio.gather(client.flush(), called.flush())
    assert client.fix_streams.sent >= sent + len(walk)
    after = [(await s.stats.remote())["fix_stream_batches"] for s in shards]
    assert all(a >= b + len(walk) for a, b in zip(after, before, strict=True)), (before, after)
    for by_stream, by_call in pairs:
        streamed, as_called = (
            await state_with(shards, client, by_stream, Fix(*walk[-1])),
            await state_with(shards, client, by_call, Fix(*walk[-1])),
        )
        assert streamed.presence == as_called.presence
        assert streamed.presence.last_fix_at == walk[-1][3]


async def test_a_connection_without_the_token_is_closed_and_nothing_of_it_tracked(
    client: EntityClient, shards: list[Any]
) -> None:
    shard = shards[0]
    host, port, token = await shard.fix_stream.remote()
    assert len(token) == TOKEN_BYTES
    key = user_on(client, 0)
    now = datetime.now(UTC)
    # The refused connections carry a newer fix than the accepted one: had
    # either been tracked, the subject would keep it and ignore the older.
    refused_fix = Fix(52.6, 13.5, 10.0, now)
    accepted_fix = Fix(52.5, 13.4, 10.0, now - timedelta(seconds=1))
    was = await refused(shard)

    reader, writer = await asyncio.open_connection(host, port)
    writer.write(bytes(TOKEN_BYTES) + encode_batch(pack_fixes([(key, refused_fix)])))  # zeros
    async with asyncio.timeout(10):
        assert await reader.read() == b""  # closed, nothing answered
    writer.close()
    assert await refused(shard) == was + 1

    # With the token but a header past the limit: closed too.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(token + (MAX_PART + 1).to_bytes(4, "little") + bytes(8))
    async with asyncio.timeout(10):
        assert await reader.read() == b""
    writer.close()
    assert await refused(shard) == was + 2

    # The token and a batch: answered with no fix malformed, then tracked.
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(token + encode_batch(pack_fixes([(key, accepted_fix)])))
    async with asyncio.timeout(10):
        assert await reader.readexactly(4) == bytes(4)
    writer.close()
    await state_with(shards, client, key, accepted_fix)  # times out had a refused fix been kept
    assert await refused(shard) == was + 2
