"""The outbox relay hosted in a Ray actor: one per cluster, off the gateways.

A named, detached actor (``get_if_exists``), so however many gateway replicas
start it, one relay runs, which keeps per-key order into Kafka; Ray restarts
it if its process or node dies (rows it had claimed are re-claimed after the
claim timeout, at-least-once as always).
"""

from __future__ import annotations

import asyncio
from typing import Any

from cluster.runtime import start_singleton
from config.settings import Settings, get_settings
from persistence.outbox.service import run_relay

RELAY_ACTOR_NAME = "panic-alert-outbox-relay"


class RelayActor:
    def __init__(self) -> None:
        # Async actors construct inside their event loop: relay from now on.
        self._task = asyncio.get_running_loop().create_task(run_relay(get_settings()))

    async def running(self) -> bool:
        return not self._task.done()


def start_relay_actor(settings: Settings) -> Any:
    """Create the cluster's relay actor, or find the one already running."""
    return start_singleton(RelayActor, RELAY_ACTOR_NAME, settings.ray.namespace)
