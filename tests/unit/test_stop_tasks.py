"""tests.tasks.stop: cancelled tasks are waited for, and one that does not stop is
named with its stack instead of hanging the test until pytest's timeout."""

from __future__ import annotations

import asyncio

import pytest

from tests.tasks import stop


async def test_cancelled_tasks_are_waited_for() -> None:
    tasks = [asyncio.create_task(asyncio.sleep(3600)) for _ in range(3)]
    await stop(*tasks, within_s=5)
    assert all(task.cancelled() for task in tasks)
    await stop()  # nothing to stop


async def test_a_task_that_ignores_its_cancel_is_named_with_its_stack() -> None:
    release = asyncio.Event()

    async def stubborn_port_close() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # a close that swallows the cancel and waits on

    obedient = asyncio.create_task(asyncio.sleep(3600))
    stubborn = asyncio.create_task(stubborn_port_close())
    await asyncio.sleep(0)
    with pytest.raises(AssertionError, match="1 of 2 cancelled tasks still running") as failed:
        await stop(obedient, stubborn, within_s=0.2)
    assert "stubborn_port_close" in str(failed.value)
    assert obedient.cancelled()
    release.set()
    await stubborn
