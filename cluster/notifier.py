"""The notification workers hosted in a Ray actor: one per cluster.

Like the relay (``cluster/relay.py``): a named, detached actor that any
number of gateway replicas may "start" (``get_if_exists``), restarted by Ray
if its process or node dies; Kafka's consumer groups and the delivery record
make a restart lose nothing and send nothing twice. Outcomes go to the alert
entities through an :class:`~cluster.client.EntityClient`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from actors.effects import EntityKind
from actors.errors import ActorError
from cluster.client import EntityClient
from cluster.runtime import start_singleton
from config.settings import Settings, get_settings
from notify.worker import entity_report, run_notifier

log = logging.getLogger(__name__)

NOTIFIER_ACTOR_NAME = "panic-alert-notifier"


def alert_teller(client: EntityClient) -> Callable[[UUID, object], Awaitable[object]]:
    """Ask the alert entity to keep an outcome; an entity's refusal is logged, not retried."""

    async def tell(alert_id: UUID, message: object) -> object:
        try:
            return await client.ask(EntityKind.ALERT, str(alert_id), message)
        except ActorError as exc:  # e.g. an alert this deployment never had
            log.warning("notification outcome for alert %s refused: %s", alert_id, exc)
            return None

    return tell


class NotifierActor:
    def __init__(self, shard_count: int) -> None:
        settings = get_settings()
        client = EntityClient(
            shard_count,
            namespace=settings.ray.namespace,
            ask_timeout_s=settings.actors.ask_timeout_s,
        )
        report = entity_report(alert_teller(client))
        # Async actors construct inside their event loop: notify from now on.
        self._task = asyncio.get_running_loop().create_task(run_notifier(settings, report))

    async def running(self) -> bool:
        return not self._task.done()


def start_notifier_actor(settings: Settings, shard_count: int) -> Any:
    """Create the cluster's notifier actor, or find the one already running."""
    return start_singleton(NotifierActor, NOTIFIER_ACTOR_NAME, settings.ray.namespace, shard_count)
