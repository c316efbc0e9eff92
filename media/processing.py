"""Processing of evidence, off the request path (issue 17, item 5).

The flow, at least once end to end:

1. An upload commits its row with ``media.uploaded`` (topic ``media-uploads``).
2. :class:`Processor` consumes it: tells the alert (``MediaAdded``: the
   timeline, and ``media.added`` to the assignee and admins) and queues the
   processing (``media.processing_queued`` on ``media-processing``, also what
   ``POST /media/{id}/process`` writes).
3. It consumes that: marks the file running, renders it in a bounded task
   (:func:`render_original`, run as a Ray task by ``cluster.media_worker``),
   stores the renditions and marks it done (``media.processed``) or failed,
   and tells the alert (``MediaProcessed``).

Every step is idempotent: a redelivered event finds the state moved on, or
redoes the work (a rendition run replaces the previous run's renditions, whose
objects are removed). Plaintext exists only in a private scratch folder
(``/dev/shm`` when there is one) for the length of one task.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

from actors.alert_messages import MediaAdded, MediaProcessed
from actors.effects import EventType
from media.errors import MediaError
from media.model import MediaKind, MediaRow, Processing
from media.ports import MediaRecords, ObjectStore
from media.render import RenderError, render
from media.vault import MasterKeys, Vault, remove_objects

log = logging.getLogger(__name__)

#: Hands a message to an alert entity (``cluster.notifier.alert_teller``).
AlertTell = Callable[[UUID, object], Awaitable[object]]
#: Renders an original into stored renditions, somewhere bounded (a Ray task).
RunRender = Callable[[MediaRow], Awaitable[list[MediaRow]]]
#: An error's text kept in the row and the timeline, at most this long.
MAX_ERROR = 300
#: Largest rendition stored (a runaway encode is refused, not stored).
MAX_RENDITION_BYTES = 2 * 1024**3


class Incoming(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...


class EventConsumer(Protocol):
    """A consumer-group member of ``media-uploads`` and ``media-processing``."""

    async def get_many(self, timeout_ms: int = 1000) -> Sequence[Incoming]: ...

    async def commit(self) -> None: ...

    async def ready(self, timeout_s: float = 30.0) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC)


class Processor:
    """Turns media events into alert notes, processing runs and their outcomes."""

    def __init__(
        self,
        records: MediaRecords,
        objects: ObjectStore,
        tell: AlertTell,
        run_render: RunRender,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._records = records
        self._objects = objects
        self._tell = tell
        self._render = run_render
        self._clock = clock

    async def handle(self, event_type: str, data: Mapping[str, Any]) -> None:
        """One consumed event; others (and renditions' events) are ignored."""
        if "parent_id" in data or "media_id" not in data:
            return
        media_id = UUID(str(data["media_id"]))
        if event_type == EventType.MEDIA_UPLOADED:
            await self.uploaded(media_id)
        elif event_type == EventType.MEDIA_PROCESSING_QUEUED:
            await self.process(media_id)

    async def uploaded(self, media_id: UUID) -> None:
        row = await self._records.get(media_id)
        if row is None or row.parent_id is not None:
            return
        note = MediaAdded(
            row.id, row.kind.value, row.content_type, row.size, row.uploader_role.value
        )
        await self._tell(row.alert_id, note)
        await self._records.set_processing(
            row, Processing.QUEUED, self._clock(), only_from=(Processing.NONE,)
        )

    async def process(self, media_id: UUID) -> None:
        row = await self._records.get(media_id)
        if row is None or row.parent_id is not None or row.purged_at is not None:
            return
        # RUNNING too: a run cut short by a crash is redone on redelivery.
        started = await self._records.set_processing(
            row,
            Processing.RUNNING,
            self._clock(),
            only_from=(Processing.QUEUED, Processing.RUNNING),
        )
        if not started:
            return
        try:
            renditions = await self._render(row)
        except (RenderError, MediaError) as exc:
            if getattr(exc, "retriable", False):
                raise  # a timeout or an outage: redelivered, tried again
            error = str(exc)[:MAX_ERROR] or type(exc).__name__
            log.warning("processing of media %s failed: %s", row.id, error)
            await self._records.set_processing(row, Processing.FAILED, self._clock(), error=error)
            await self._tell(row.alert_id, MediaProcessed(row.id, "failed", error=error))
            return
        # Renditions get fresh ids: every earlier one is replaced.
        await self._records.add_renditions(row, renditions, self._clock())
        for old in row.renditions:
            await remove_objects(self._objects, old.id)
        kinds = tuple(r.rendition.value for r in renditions if r.rendition is not None)
        await self._tell(row.alert_id, MediaProcessed(row.id, "done", renditions=kinds))


async def consume(
    consumer: EventConsumer, processor: Processor, *, ready: asyncio.Event | None = None
) -> None:
    """Handle batches until cancelled; a batch is committed once every event in it
    was handled (an error leaves it uncommitted: redelivered after a restart)."""
    await consumer.ready()
    if ready is not None:
        ready.set()
    while True:
        batch = await consumer.get_many(timeout_ms=1000)
        for event in batch:
            await processor.handle(event.type, event.data)
        if batch:
            await consumer.commit()


# --- the bounded task ------------------------------------------------------------------


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A private folder (0700) for one task's plaintext, in memory when the
    machine has ``/dev/shm``; removed with everything in it afterwards."""
    shm = Path("/dev/shm")  # noqa: S108  (tmpfs: plaintext never reaches a disk)
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="panic-media-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _file_chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while chunk := await asyncio.to_thread(source.read, size):
            yield chunk


async def _render_original(
    row: MediaRow, objects: ObjectStore, keys: MasterKeys, *, timeout_s: float, threads: int
) -> list[MediaRow]:
    vault = Vault(objects, keys)
    with scratch_folder() as folder:
        source = folder / "original"
        with source.open("wb") as out:
            async for piece in vault.read(row, 0, row.size) if row.size else _nothing():
                out.write(piece)
        out_dir = folder / "out"
        out_dir.mkdir()
        try:
            rendered = await asyncio.to_thread(
                render, row.kind, source, out_dir, timeout_s=timeout_s, threads=threads
            )
        except RenderError as exc:
            # An MP4/QuickTime/WebM container holding sound only (a phone's voice
            # memo) sniffs as video; it is rendered as the recording it is.
            if row.kind is not MediaKind.VIDEO or exc.retriable:
                raise
            rendered = await asyncio.to_thread(
                render, MediaKind.AUDIO, source, out_dir, timeout_s=timeout_s, threads=threads
            )
        rows: list[MediaRow] = []
        for item in rendered:
            rendition_id = uuid4()
            written = await vault.write(
                rendition_id, _file_chunks(item.path), max_bytes=MAX_RENDITION_BYTES
            )
            rows.append(
                MediaRow(
                    id=rendition_id,
                    alert_id=row.alert_id,
                    uploader_id=row.uploader_id,
                    uploader_role=row.uploader_role,
                    content_type=item.content_type,
                    kind=written.sniffed.kind,
                    size=written.size,
                    sha256=written.sha256,
                    created_at=_now(),
                    sealed=written.sealed,
                    parent_id=row.id,
                    rendition=item.kind,
                )
            )
        return rows


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


def render_original(
    row: MediaRow,
    objects: Callable[[], ObjectStore],
    keys: MasterKeys,
    *,
    timeout_s: float,
    threads: int,
) -> list[MediaRow]:
    """Open ``row``, render it (``media.render``), seal and store each rendition;
    the renditions' rows (not yet recorded). Synchronous: the body of a task in
    its own process. Raises ``RenderError`` when the file cannot be rendered."""
    return asyncio.run(_render_original(row, objects(), keys, timeout_s=timeout_s, threads=threads))
