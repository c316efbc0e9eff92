"""EventStore.run_retention: the first purge waits, then one per interval."""

from __future__ import annotations

import asyncio
from datetime import datetime

from config.settings import MongoSettings
from persistence.drivers.mongo import EventStore


async def test_first_purge_waits_then_repeats() -> None:
    store = EventStore(MongoSettings())  # never connects: purge_expired is replaced
    calls: list[float] = []
    loop = asyncio.get_running_loop()
    began = loop.time()

    async def purge_expired(now: datetime | None = None) -> dict[str, int]:  # fake: records calls
        calls.append(loop.time() - began)
        return {}

    store.purge_expired = purge_expired  # type: ignore[method-assign]
    task = asyncio.create_task(store.run_retention(interval_s=0.2, first_after_s=0.3))
    try:
        await asyncio.sleep(0.2)
        assert calls == []  # not at start
        await asyncio.sleep(0.55)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()
    assert len(calls) >= 2
    assert calls[0] >= 0.3
    assert calls[1] - calls[0] >= 0.2
