"""The process's push hub (gateway.ws.hub) over an in-memory pub/sub broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from gateway.ws.hub import PushHub
from persistence.errors import ServiceUnavailable
from tests.fakes.pubsub import FakeBroker


@pytest.fixture
def broker() -> FakeBroker:
    return FakeBroker()


@pytest.fixture
async def hub(broker: FakeBroker) -> AsyncIterator[PushHub]:
    hub = PushHub(broker.open, subscribe_timeout_s=0.3, retry_delay_s=0.01)
    task = asyncio.create_task(hub.run())
    try:
        yield hub
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def recorder() -> tuple[list[str], Callable[[str], None]]:
    got: list[str] = []
    return got, got.append


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_nothing_connects_before_a_socket_attaches(hub: PushHub, broker: FakeBroker) -> None:
    await asyncio.sleep(0.05)
    assert broker.connects == 0


async def test_attach_returns_subscribed_and_frames_reach_every_sink(
    hub: PushHub, broker: FakeBroker
) -> None:
    first, sink1 = recorder()
    second, sink2 = recorder()
    await hub.attach("ws:agent:a", sink1)
    await hub.attach("ws:agent:a", sink2)
    assert hub.subscribed == {"ws:agent:a"}
    assert broker.subscribers("ws:agent:a") == 1  # one connection, one subscription
    assert broker.connects == 1
    assert broker.publish("ws:agent:a", '{"type":"x"}') == 1
    assert broker.publish("ws:agent:b", '{"type":"y"}') == 0
    await settle()
    assert first == second == ['{"type":"x"}']
    assert hub.delivered == 2


async def test_the_last_detach_unsubscribes(hub: PushHub, broker: FakeBroker) -> None:
    got, sink1 = recorder()
    _, sink2 = recorder()
    await hub.attach("ws:user:u", sink1)
    await hub.attach("ws:user:u", sink2)
    hub.detach("ws:user:u", sink2)
    await settle()
    assert broker.subscribers("ws:user:u") == 1
    hub.detach("ws:user:u", sink1)
    await settle()
    assert broker.subscribers("ws:user:u") == 0
    assert hub.channels == frozenset()
    assert ("unsubscribe", ("ws:user:u",)) in broker.commands
    hub.detach("ws:user:u", sink1)  # a second detach is a no-op
    broker.publish("ws:user:u", "late")
    await settle()
    assert got == []


async def test_a_channel_can_be_attached_again_after_its_last_detach(
    hub: PushHub, broker: FakeBroker
) -> None:
    got, sink = recorder()
    await hub.attach("ws:user:u", sink)
    hub.detach("ws:user:u", sink)
    await hub.attach("ws:user:u", sink)
    await settle()
    broker.publish("ws:user:u", "again")
    await settle()
    assert got == ["again"]


async def test_after_a_dropped_connection_the_hub_resubscribes(
    hub: PushHub, broker: FakeBroker
) -> None:
    got, sink = recorder()
    await hub.attach("ws:agent:a", sink)
    broker.drop_connections()
    for _ in range(100):
        await asyncio.sleep(0.01)
        if broker.connects == 2 and hub.subscribed == {"ws:agent:a"}:
            break
    assert broker.connects == 2
    assert broker.pubsubs[0].closed
    broker.publish("ws:agent:a", "after")
    await settle()
    assert got == ["after"]


async def test_an_unconfirmed_subscription_fails_and_attaches_nothing(
    hub: PushHub, broker: FakeBroker
) -> None:
    broker.confirm = False
    _, sink = recorder()
    with pytest.raises(ServiceUnavailable):
        await hub.attach("ws:agent:a", sink)
    assert hub.channels == frozenset()


async def test_a_failing_sink_does_not_starve_the_others(hub: PushHub, broker: FakeBroker) -> None:
    def broken(_: str) -> None:
        raise RuntimeError("boom")

    got, sink = recorder()
    await hub.attach("ws:agent:a", broken)
    await hub.attach("ws:agent:a", sink)
    broker.publish("ws:agent:a", "one")
    broker.publish("ws:agent:a", "two")
    await settle()
    assert got == ["one", "two"]
