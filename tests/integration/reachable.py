"""Agents made reachable without a gateway, for tests that drive entities directly.

An offer whose push finds no socket of its agent moves on at once
(``actors.alert``: ``OfferUnreachable``; ``persistence.pushes`` counts the
listeners of each publish). Tests that offer alerts to agent ids they made
up, without sockets, stand in for the gateways with :func:`agents_reachable`:
one real Redis connection pattern-subscribed to every agent's push channel,
so every offer push has a listener. It receives and drops the frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from actors.effects import AudienceKind, push_channel
from config.settings import Settings
from persistence.drivers.redis import create_redis


@asynccontextmanager
async def agents_reachable(settings: Settings) -> AsyncIterator[None]:
    redis = create_redis(settings.redis)
    pubsub = redis.pubsub()
    try:
        await pubsub.psubscribe(push_channel(AudienceKind.AGENT.value, "*"))
        confirmed = await pubsub.get_message(timeout=5.0)
        assert confirmed is not None, "pattern subscription not confirmed"
        assert confirmed["type"] == "psubscribe", confirmed
        yield
    finally:
        await pubsub.aclose()
        await redis.aclose()
