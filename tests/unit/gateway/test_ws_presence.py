"""The gateway's agent sockets (``gateway.ws.presence``) over a fake broker: what
each agent entity is told, and the re-announcement a restarted shard asks for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from actors.agent import LocationFix, SocketClosed, SocketOpened
from actors.effects import PRESENCE_CHANNEL, EntityKind
from cluster.client import EntityClient
from gateway.ws.hub import PushHub
from gateway.ws.presence import AgentSockets
from tests.fakes.pubsub import FakeBroker


class RecordingEntities:
    """Fake entity client: records each tell."""

    def __init__(self) -> None:
        self.told: list[tuple[EntityKind, str, object]] = []

    def tell(self, kind: EntityKind, entity_id: str, message: object) -> None:
        self.told.append((kind, entity_id, message))


@pytest.fixture
async def hub_and_broker() -> AsyncIterator[tuple[PushHub, FakeBroker]]:
    broker = FakeBroker()
    hub = PushHub(broker.open, subscribe_timeout_s=0.5, retry_delay_s=0.01)
    task = asyncio.create_task(hub.run())
    yield hub, broker
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_sockets_are_announced_and_announced_again_when_a_shard_asks(
    hub_and_broker: tuple[PushHub, FakeBroker],
) -> None:
    hub, broker = hub_and_broker
    entities = RecordingEntities()
    sockets = AgentSockets(hub, lambda: cast("EntityClient", entities))
    await sockets.listen()
    assert sockets.listening
    assert broker.subscribers(PRESENCE_CHANNEL) == 1
    a, b = uuid4(), uuid4()
    sockets.opened("s1", a)
    sockets.opened("s2", b)
    assert entities.told == [
        (EntityKind.AGENT, str(a), SocketOpened("s1")),
        (EntityKind.AGENT, str(b), SocketOpened("s2")),
    ]
    sockets.closed("s1")
    sockets.closed("s1")  # a second close says nothing more
    assert entities.told[-1] == (EntityKind.AGENT, str(a), SocketClosed("s1"))
    assert len(entities.told) == 3

    # A shard restarted: every live socket is announced again, and only those,
    # each after the last fix it relayed (a restored entity may have lost it).
    fix = LocationFix(52.5, 13.4, recorded_at=datetime(2026, 12, 4, tzinfo=UTC))
    sockets.located("s2", fix)
    sockets.located("s1", fix)  # closed: not kept
    entities.told.clear()
    assert broker.publish(PRESENCE_CHANNEL, "announce") == 1
    await until(lambda: len(entities.told) == 2)
    assert entities.told == [
        (EntityKind.AGENT, str(b), fix),
        (EntityKind.AGENT, str(b), SocketOpened("s2")),
    ]
    assert sockets.reannounced == 1


async def test_without_an_entity_client_nothing_is_told(
    hub_and_broker: tuple[PushHub, FakeBroker],
) -> None:
    hub, _ = hub_and_broker
    sockets = AgentSockets(hub, lambda: None)
    sockets.opened("s1", UUID(int=1))
    assert len(sockets) == 1
    sockets.closed("s1")
    assert len(sockets) == 0


async def until(check: Any, tries: int = 200) -> None:
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")
