"""Shard actors on a real local Ray: activation at scale, order, errors."""

from __future__ import annotations

import asyncio
import random
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
import ray

from actors.agent import AgentState, Heartbeat
from actors.alert import AlertState, AlertType, CreateAlert, OfferMade
from actors.effects import EntityKind
from actors.errors import EntityNotFound
from cluster.client import EntityClient
from cluster.errors import ClusterUnavailable
from config.settings import Settings
from tests.component.conftest import NAMESPACE, SHARDS
from tests.integration.reachable import agents_reachable
from tests.scratch import make_user

pytestmark = pytest.mark.component

AGENT = EntityKind.AGENT
ALERT = EntityKind.ALERT


async def shard_stats(shards: list[Any]) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(s.stats.remote() for s in shards)))


async def test_ten_thousand_entities_activate_across_two_shards(
    client: EntityClient, shards: list[Any]
) -> None:
    before = await shard_stats(shards)
    ids = [str(uuid4()) for _ in range(10_000)]
    rejected = await client.tell_many((AGENT, i, Heartbeat()) for i in ids)
    assert rejected == 0
    after = await shard_stats(shards)
    added = [a["active"] - b["active"] for a, b in zip(after, before, strict=True)]
    assert sum(added) == 10_000
    # Rendezvous hashing spreads them: each shard holds a fair share.
    assert all(n > 10_000 / SHARDS * 0.8 for n in added), added
    for entity_id in random.sample(ids, 20):
        state = await client.ask(AGENT, entity_id, Heartbeat())
        assert isinstance(state, AgentState)
        assert state.id == UUID(entity_id)
        # The tell's heartbeat activated this very entity (version 1); the ask's
        # second one, a moment later, writes nothing new (the liveness on record
        # is fresh) but is seen in memory.
        assert state.version == 1
        assert state.liveness_saved_at is not None
        assert state.last_heartbeat_at is not None
        assert state.last_heartbeat_at >= state.liveness_saved_at


async def test_order_per_sender_is_kept_under_concurrent_senders(
    component_pool: asyncpg.Pool, shards: list[Any], settings: Settings
) -> None:
    # Offers to agents without sockets move on at once: stand in for their gateways.
    async with agents_reachable(settings):
        await _order_per_sender(component_pool)


async def _order_per_sender(component_pool: asyncpg.Pool) -> None:
    user = await make_user(component_pool)
    alerts = [uuid4() for _ in range(3)]
    setup = EntityClient(SHARDS, namespace=NAMESPACE)
    for alert_id in alerts:
        await setup.ask(
            ALERT, str(alert_id), CreateAlert(alert_id, user, AlertType.PANIC, 52.5, 13.4)
        )

    senders = 4
    per_sender = 40
    plan = {s: [uuid4() for _ in range(per_sender)] for s in range(senders)}

    async def sender(index: int) -> None:
        # Each sender has its own client (own stream) and mixes all three paths.
        own = EntityClient(SHARDS, namespace=NAMESPACE, linger_s=0.001, max_batch=7)
        for n, agent_id in enumerate(plan[index]):
            for alert_id in alerts:
                message = OfferMade(agent_id, distance_m=float(n))
                if n % 3 == 0:
                    own.tell(ALERT, str(alert_id), message)
                elif n % 3 == 1:
                    await own.tell_many([(ALERT, str(alert_id), message)])
                else:
                    await own.ask(ALERT, str(alert_id), message)
            if n % 5 == 0:
                await asyncio.sleep(0)
        await own.flush()

    await asyncio.gather(*(sender(i) for i in range(senders)))
    for alert_id in alerts:
        state = await setup.ask(ALERT, str(alert_id), OfferMade(plan[0][0]))  # repeat: no-op
        assert isinstance(state, AlertState)
        offered = [o.agent_id for o in state.offered_to]
        assert len(offered) == senders * per_sender
        for index in range(senders):
            mine = [a for a in offered if a in set(plan[index])]
            assert mine == plan[index], f"sender {index} reordered at alert {alert_id}"


async def test_entity_errors_reach_the_asker_unwrapped(client: EntityClient) -> None:
    missing = str(uuid4())
    with pytest.raises(EntityNotFound) as info:
        await client.ask(ALERT, missing, OfferMade(uuid4()))
    assert info.value.entity_id == missing


async def test_shards_are_named_detached_and_restartable(shards: list[Any]) -> None:
    for index, handle in enumerate(shards):
        found = ray.get_actor(f"panic-alert-shard-{index}", namespace=NAMESPACE)
        assert found._actor_id == handle._actor_id
    stats = await shard_stats(shards)
    assert sorted(s["index"] for s in stats) == list(range(SHARDS))


async def test_ask_many_answers_in_order_with_refusals_as_values(client: EntityClient) -> None:
    agents = [str(uuid4()) for _ in range(12)]
    missing = str(uuid4())
    items: list[tuple[EntityKind, str, object]] = [(AGENT, a, Heartbeat()) for a in agents]
    items.insert(5, (ALERT, missing, OfferMade(uuid4())))
    answers = await client.ask_many(items)
    assert len(answers) == len(items)
    refusal = answers.pop(5)
    assert isinstance(refusal, EntityNotFound)
    assert refusal.entity_id == missing
    assert [getattr(a, "id", None) for a in answers] == [UUID(a) for a in agents]


async def test_a_shard_that_is_not_running_is_unavailable_not_an_internal_error(
    local_ray: None,
) -> None:
    """Ray does not know a killed shard's name until it restarts: the client says
    ``ClusterUnavailable`` (503 / a retriable error frame), not Ray's ValueError."""
    nowhere = EntityClient(SHARDS, namespace=f"{NAMESPACE}-no-shards")
    agent_id = str(uuid4())
    with pytest.raises(ClusterUnavailable):
        await nowhere.ask(EntityKind.AGENT, agent_id, Heartbeat())
    # A tell's batch fails alone (logged and counted); the caller is not hurt.
    nowhere.tell(EntityKind.AGENT, agent_id, Heartbeat())
    await nowhere.flush()


async def test_lazy_tells_wait_to_go_together_and_a_flush_sends_them(shards: list[Any]) -> None:
    """Heartbeats (``tell_lazily``) are held for the lazy linger, then go in one call
    per shard; nothing is lost when the client flushes before the linger ends."""
    lazy = EntityClient(SHARDS, namespace=NAMESPACE, lazy_linger_s=60)
    agents = [str(uuid4()) for _ in range(10)]
    for agent_id in agents:
        lazy.tell_lazily(AGENT, agent_id, Heartbeat())

    def states() -> list[Any]:
        return [
            ray.get(shards[lazy.shard_of(AGENT, agent_id)].inspect.remote(AGENT, agent_id))
            for agent_id in agents
        ]

    await asyncio.sleep(0.3)
    assert states() == [None] * len(agents)  # held: no shard has heard of them

    await lazy.flush()
    beaten = states()
    assert all(isinstance(s, AgentState) and s.last_heartbeat_at is not None for s in beaten)
    assert sorted(str(s.id) for s in beaten) == sorted(agents)
