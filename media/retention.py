"""Keeping and letting go of evidence: the purge of deleted files past their
retention, and the rewrap of data keys under a new master key.

Both are batch jobs over ports, safe to interrupt and run again: each file
is purged (objects first, then the row marks it) or rewrapped (one
conditional update) on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from media.errors import MediaError
from media.ports import MediaRecords, ObjectStore
from media.vault import MasterKeys, remove_objects

log = logging.getLogger(__name__)

BATCH = 100


async def purge_due(
    records: MediaRecords, objects: ObjectStore, now: datetime, *, limit: int = BATCH
) -> int:
    """Purge up to ``limit`` deleted originals whose retention is over (and not
    held), with their renditions; the number purged."""
    purged = 0
    for due in await records.due_for_purge(now, limit):
        row = await records.get(due.id)
        if row is None or row.legal_hold or row.purged_at is not None:
            continue
        for rendition in row.renditions:
            await remove_objects(objects, rendition.id)
        await remove_objects(objects, row.id)
        await records.purged(row, now)
        purged += 1
    return purged


@dataclass(frozen=True, slots=True)
class Rotation:
    rewrapped: int
    #: Rows whose key would not open (an unknown key id, a wrong key): left as they are.
    failed: int


async def rewrap_all(
    records: MediaRecords,
    keys: MasterKeys,
    *,
    progress: Callable[[int, int], None] | None = None,
    batch: int = BATCH,
) -> Rotation:
    """Rewrap every data key not under the active master key (media and
    resumable uploads); the content is not touched. Repeatable: a second run
    finds nothing to do."""
    done = failed = 0
    skip: set[object] = set()
    while True:
        rows = [
            r
            for r in await records.keys_not_wrapped_by(keys.active, batch + len(skip))
            if r[1] not in skip
        ]
        if not rows:
            return Rotation(done, failed)
        for table, media_id, key_id, wrapped in rows:
            try:
                new_id, new_wrapped = keys.rewrap(media_id, key_id, wrapped)
            except MediaError as exc:
                log.error("media %s: cannot rewrap its data key: %s", media_id, exc)
                skip.add(media_id)
                failed += 1
                continue
            if await records.rewrap(table, media_id, key_id, new_id, new_wrapped):
                done += 1
        if progress is not None:
            progress(done, failed)
