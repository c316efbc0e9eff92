"""The notification workers hosted in a Ray actor: one per cluster.

Like the relay (``cluster/relay.py``): a named, detached actor that any
number of gateway replicas may "start" (``get_if_exists``), restarted by Ray
if its process or node dies; Kafka's consumer groups and the delivery record
make a restart lose nothing and send nothing twice. Outcomes go to the alert
entities through an :class:`~cluster.client.EntityClient`. The actor is a
shell: the workers come from the notifier's composition root
(``panic_alert.notifier_root``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from uuid import UUID

from actors.effects import EntityKind
from actors.errors import ActorError
from cluster.client import EntityClient
from cluster.runtime import start_singleton

log = logging.getLogger(__name__)

NOTIFIER_ACTOR_NAME = "panic-alert-notifier"

#: Hands a message (an outcome) to an alert entity.
AlertTell = Callable[[UUID, object], Awaitable[object]]
#: Runs the workers until cancelled, telling outcomes through the ``AlertTell``;
#: called in the actor's process, so it must pickle.
RunNotifier = Callable[[AlertTell], Coroutine[Any, Any, None]]


def alert_teller(client: EntityClient) -> AlertTell:
    """Ask the alert entity to keep an outcome; an entity's refusal is logged, not retried."""

    async def tell(alert_id: UUID, message: object) -> object:
        try:
            return await client.ask(EntityKind.ALERT, str(alert_id), message)
        except ActorError as exc:  # e.g. an alert this deployment never had
            log.warning("notification outcome for alert %s refused: %s", alert_id, exc)
            return None

    return tell


class NotifierActor:
    def __init__(
        self, run: RunNotifier, shard_count: int, namespace: str, ask_timeout_s: float
    ) -> None:
        client = EntityClient(shard_count, namespace=namespace, ask_timeout_s=ask_timeout_s)
        # Async actors construct inside their event loop: notify from now on.
        self._task = asyncio.get_running_loop().create_task(run(alert_teller(client)))

    async def running(self) -> bool:
        return not self._task.done()


def start_notifier_actor(
    run: RunNotifier, *, shard_count: int, namespace: str, ask_timeout_s: float
) -> Any:
    """Create the cluster's notifier actor, or find the one already running."""
    return start_singleton(
        NotifierActor, NOTIFIER_ACTOR_NAME, namespace, run, shard_count, namespace, ask_timeout_s
    )
