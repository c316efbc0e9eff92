"""The outbox relay hosted in a Ray actor: one per cluster, off the gateways.

A named, detached actor (``get_if_exists``), so however many gateway replicas
start it, one relay runs, which keeps per-key order into Kafka; Ray restarts
it if its process or node dies (rows it had claimed are re-claimed after the
claim timeout, at-least-once as always). The actor is a shell: what it runs
comes from the relay's composition root (``panic_alert.relay_root``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from cluster.runtime import start_singleton

RELAY_ACTOR_NAME = "panic-alert-outbox-relay"

#: Relays until cancelled; called in the actor's process, so it must pickle.
RunRelay = Callable[[], Coroutine[Any, Any, None]]


class RelayActor:
    def __init__(self, run: RunRelay) -> None:
        # Async actors construct inside their event loop: relay from now on.
        self._task = asyncio.get_running_loop().create_task(run())

    async def running(self) -> bool:
        return not self._task.done()


def start_relay_actor(run: RunRelay, namespace: str) -> Any:
    """Create the cluster's relay actor, or find the one already running."""
    return start_singleton(RelayActor, RELAY_ACTOR_NAME, namespace, run)
