"""The supervising loop of a long-running worker (the notifier, the media worker).

A worker's process outlives any one connection: when its work fails (a
service went away, a broker restarted), the failure is logged and the work
starts again a little later, with fresh connections, until it is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Wait before a worker starts again after a failure.
RETRY_S = 2.0


async def restarting(
    name: str, run: Callable[[], Awaitable[None]], *, retry_s: float = RETRY_S
) -> None:
    """Run ``run`` until cancelled, starting it again ``retry_s`` after a failure."""
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # supervising loop: log and carry on
            log.warning("%s stopped (%s); restarting in %.0fs", name, exc, retry_s)
            await asyncio.sleep(retry_s)
