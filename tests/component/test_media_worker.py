"""The media worker's Ray shell: one named actor runs the worker it was given,
and each rendering is a real Ray task of the CPUs asked for, whose error
arrives as the error's own class."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
import ray

from actors.roles import Role
from cluster.media_worker import (
    MEDIA_WORKER_ACTOR_NAME,
    ray_render,
    start_media_worker_actor,
)
from cluster.notifier import AlertTell
from media.model import MediaKind, MediaRow, Part, Sealed
from media.processing import RunRender
from media.render import RenderError
from tests.component.conftest import NAMESPACE, SHARDS

pytestmark = pytest.mark.component


def _row(kind: MediaKind = MediaKind.IMAGE) -> MediaRow:
    return MediaRow(
        id=uuid4(),
        alert_id=uuid4(),
        uploader_id=uuid4(),
        uploader_role=Role.USER,
        content_type="image/png",
        kind=kind,
        size=1,
        sha256="0" * 64,
        created_at=datetime.now(UTC),
        sealed=Sealed("k1", b"wrapped", 65536, (Part("p", 1),)),
    )


def fake_render(row: MediaRow) -> list[MediaRow]:
    """A fake rendering (pure, for the shell): one copy of the row, or a refusal."""
    if row.kind is MediaKind.VIDEO:
        raise RenderError("cannot decode this video")
    return [row]


@dataclass(frozen=True)
class RecordingWorker:
    """A fake worker: renders one row through what it is handed, writes what it saw."""

    out: Path

    async def __call__(self, tell: AlertTell, run_render: RunRender) -> None:
        row = _row()
        rendered = await run_render(row)
        # Written aside, then renamed: the test polls for the file and must never
        # read it created but not yet written (CI saw that once: '' is not JSON).
        partial = self.out.with_suffix(".partial")
        partial.write_text(
            json.dumps({"rendered": [str(r.id) for r in rendered], "asked": str(row.id)})
        )
        partial.replace(self.out)
        await asyncio.Event().wait()  # runs until the actor goes


async def test_the_actor_runs_its_worker_and_renders_in_a_task(
    local_ray: None, tmp_path: Path
) -> None:
    out = tmp_path / "seen.json"
    actor = start_media_worker_actor(
        RecordingWorker(out),
        fake_render,
        shard_count=SHARDS,
        namespace=NAMESPACE,
        ask_timeout_s=5.0,
        num_cpus=1,
        timeout_s=60,
    )
    try:
        assert await actor.running.remote()
        seen = await asyncio.to_thread(_written, out, 60.0)
        assert seen["rendered"] == [seen["asked"]]
    finally:
        ray.kill(ray.get_actor(MEDIA_WORKER_ACTOR_NAME, namespace=NAMESPACE))


async def test_a_task_error_arrives_as_its_own_class(local_ray: None) -> None:
    run = ray_render(fake_render, num_cpus=1, timeout_s=60)
    row = _row()
    assert [r.id for r in await run(row)] == [row.id]
    with pytest.raises(RenderError, match="cannot decode"):
        await run(_row(MediaKind.VIDEO))


async def test_a_task_past_its_time_is_cancelled(local_ray: None) -> None:
    run = ray_render(slow_render, num_cpus=1, timeout_s=1)
    with pytest.raises(TimeoutError):
        await run(_row())


def slow_render(row: MediaRow) -> list[MediaRow]:
    time.sleep(60)
    return [row]


def _written(path: Path, timeout_s: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.1)
    seen: dict[str, str] = json.loads(path.read_text())
    return seen
