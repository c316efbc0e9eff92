"""The media worker's composition root: the processor (``media.processing``)
wired to PostgreSQL, the object store, Kafka and the alert entities, plus the
retention purge.

``MediaWorkerRunner(settings)`` is what ``cluster.media_worker`` sends to the
cluster's media worker actor, which calls it in its own process;
:func:`run_media_worker` opens the ports and starts again after an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from cluster.media_worker import Render, start_media_worker_actor
from cluster.notifier import AlertTell
from config.settings import Settings
from media.processing import Processor, RunRender, consume, render_original
from media.resumable import expire_uploads
from media.retention import purge_due
from media.vault import media_keys
from panic_alert.supervise import restarting
from persistence.drivers.kafka import KafkaConsumer
from persistence.drivers.postgres import create_pool
from persistence.media.objects import object_store
from persistence.notifications import KafkaIncoming
from persistence.stores.media import PostgresMediaRecords
from persistence.stores.media_uploads import PostgresMediaUploads

log = logging.getLogger(__name__)

#: The consumer group of the media worker.
MEDIA_GROUP = "panic-media-worker"
MEDIA_TOPICS = ("media-uploads", "media-processing")


def renderer(settings: Settings) -> Render:
    """``render_original`` bound to this deployment's store and keys (pickles)."""
    media = settings.media
    return partial(
        render_original,
        objects=partial(object_store, media, settings.data_dir),
        keys=media_keys(media),
        timeout_s=media.processing_timeout_s,
        threads=max(1, math.floor(media.processing_cpus)),
    )


async def run_media_worker(
    settings: Settings,
    tell: AlertTell,
    run_render: RunRender,
    *,
    offset_reset: str = "earliest",
    group_suffix: str = "",
    ready: asyncio.Event | None = None,
) -> None:
    """Process and purge until cancelled; starts again by itself after an outage.

    A new consumer group starts from the oldest events kept (``offset_reset``):
    evidence uploaded before the worker first ran is processed too.
    """
    await restarting(
        "media worker", lambda: _run(settings, tell, run_render, offset_reset, group_suffix, ready)
    )


async def _purge_forever(
    records: PostgresMediaRecords, uploads: PostgresMediaUploads, settings: Settings
) -> None:
    """Deleted files past their retention, and resumable uploads past their expiry."""
    objects = object_store(settings.media, settings.data_dir)
    while True:
        now = datetime.now(UTC)
        purged = await purge_due(records, objects, now)
        expired = await expire_uploads(uploads, objects, now)
        if purged or expired:
            log.info("purged %d deleted media files, %d expired uploads", purged, expired)
        await asyncio.sleep(settings.media.purge_interval_s)


async def _run(
    settings: Settings,
    tell: AlertTell,
    run_render: RunRender,
    offset_reset: str,
    group_suffix: str,
    ready: asyncio.Event | None,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pool = await create_pool(settings.postgres)
        stack.push_async_callback(pool.close)
        records = PostgresMediaRecords(pool, source=settings.kafka.source)
        consumer = KafkaConsumer(
            settings.kafka,
            group_id=MEDIA_GROUP + group_suffix,
            topics=MEDIA_TOPICS,
            auto_offset_reset=offset_reset,
        )
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        processor = Processor(
            records, object_store(settings.media, settings.data_dir), tell, run_render
        )
        async with asyncio.TaskGroup() as group:
            uploads = PostgresMediaUploads(pool, source=settings.kafka.source)
            group.create_task(_purge_forever(records, uploads, settings))
            group.create_task(consume(KafkaIncoming(consumer), processor, ready=ready))


@dataclass(frozen=True, slots=True)
class MediaWorkerRunner:
    """Runs the worker until cancelled (``cluster.media_worker.RunMediaWorker``); pickles."""

    settings: Settings
    offset_reset: str = "earliest"
    group_suffix: str = ""

    async def __call__(self, tell: AlertTell, run_render: RunRender) -> None:
        await run_media_worker(
            self.settings,
            tell,
            run_render,
            offset_reset=self.offset_reset,
            group_suffix=self.group_suffix,
        )


def start(settings: Settings, shard_count: int) -> None:
    """The cluster's media worker actor, created once however many gateways ask."""
    start_media_worker_actor(
        MediaWorkerRunner(settings),
        renderer(settings),
        shard_count=shard_count,
        namespace=settings.ray.namespace,
        ask_timeout_s=settings.actors.ask_timeout_s,
        num_cpus=settings.media.processing_cpus,
        timeout_s=settings.media.processing_timeout_s + 30,
    )
