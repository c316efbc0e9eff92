"""Media processing hosted in Ray: one worker actor per cluster, renders as tasks.

Like the notifier (``cluster/notifier.py``): a named, detached actor that any
number of gateway replicas may "start", restarted by Ray if its process or
node dies; the consumer group's committed offsets and the idempotent steps
of ``media.processing`` make a restart lose nothing. Each rendering is a Ray
task of ``num_cpus`` CPUs (``settings.media.processing_cpus``), so the
scheduler never runs more of them than the cluster has room for, and an
encoder cannot starve the shards. The actor is a shell: the consumer and
processor come from ``panic_alert.media_root``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import ray

from cluster.client import EntityClient
from cluster.notifier import AlertTell, alert_teller
from cluster.runtime import start_singleton
from media.model import MediaRow
from media.processing import RunRender

log = logging.getLogger(__name__)

MEDIA_WORKER_ACTOR_NAME = "panic-alert-media-worker"

#: Renders one original into renditions (``media.processing.render_original``
#: with its store and keys bound); runs in a task's process, so it must pickle.
Render = Callable[[MediaRow], list[MediaRow]]
#: Runs the consumer until cancelled; called in the actor's process (pickles).
RunMediaWorker = Callable[[AlertTell, RunRender], Coroutine[Any, Any, None]]


@ray.remote(max_retries=0)
def _render_task(render: Render, row: MediaRow) -> list[MediaRow]:
    return render(row)


def ray_render(render: Render, *, num_cpus: float, timeout_s: float) -> RunRender:
    """Each call a Ray task of ``num_cpus`` CPUs; cancelled after ``timeout_s``."""

    async def run(row: MediaRow) -> list[MediaRow]:
        ref = _render_task.options(num_cpus=num_cpus).remote(render, row)
        try:
            # A task's error arrives as an instance of its own class too (Ray's
            # RayTaskError subclasses the cause), so RenderError is caught as such.
            result: list[MediaRow] = await asyncio.wait_for(ref, timeout_s)
        except TimeoutError:
            ray.cancel(ref, force=True)
            raise
        return result

    return run


class MediaWorkerActor:
    def __init__(
        self,
        run: RunMediaWorker,
        render: Render,
        shard_count: int,
        namespace: str,
        ask_timeout_s: float,
        num_cpus: float,
        timeout_s: float,
    ) -> None:
        client = EntityClient(shard_count, namespace=namespace, ask_timeout_s=ask_timeout_s)
        runner = ray_render(render, num_cpus=num_cpus, timeout_s=timeout_s)
        self._task = asyncio.get_running_loop().create_task(run(alert_teller(client), runner))

    async def running(self) -> bool:
        return not self._task.done()


def start_media_worker_actor(
    run: RunMediaWorker,
    render: Render,
    *,
    shard_count: int,
    namespace: str,
    ask_timeout_s: float,
    num_cpus: float,
    timeout_s: float,
) -> Any:
    """Create the cluster's media worker actor, or find the one already running."""
    return start_singleton(
        MediaWorkerActor,
        MEDIA_WORKER_ACTOR_NAME,
        namespace,
        run,
        render,
        shard_count,
        namespace,
        ask_timeout_s,
        num_cpus,
        timeout_s,
    )
