"""The notifier's composition root: the emergency-contact workers
(``notify.worker``) wired to the alert entities that keep each outcome.

``NotifierRunner(settings)`` is what ``cluster.notifier.start_notifier_actor``
sends to the cluster's notifier actor, which calls it in its own process.
"""

from __future__ import annotations

from dataclasses import dataclass

from cluster.notifier import AlertTell, start_notifier_actor
from config.settings import Settings
from notify.worker import entity_report, run_notifier


@dataclass(frozen=True, slots=True)
class NotifierRunner:
    """Runs the workers until cancelled (``cluster.notifier.RunNotifier``); pickles."""

    settings: Settings

    async def __call__(self, tell: AlertTell) -> None:
        await run_notifier(self.settings, entity_report(tell))


def start(settings: Settings, shard_count: int) -> None:
    """The cluster's notifier actor, created once however many gateways ask."""
    start_notifier_actor(
        NotifierRunner(settings),
        shard_count=shard_count,
        namespace=settings.ray.namespace,
        ask_timeout_s=settings.actors.ask_timeout_s,
    )
