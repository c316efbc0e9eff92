"""Stopping the background tasks a test started (a relay, a notifier, workers).

A test that starts a service's loop as a task cancels it at the end. If the
loop does not stop on cancel (a port's close waiting on something that never
comes), a bare ``gather`` waits until pytest's own timeout cuts the test, and
the report shows neither which task hung nor where. :func:`stop` waits a
bounded time and then fails with each hung task's stack; an error the test
raised before is kept as the context of that failure.
"""

from __future__ import annotations

import asyncio
import io

#: How long cancelled tasks get to finish (their ports close, their consumers leave).
STOP_WITHIN_S = 30.0


async def stop(*tasks: asyncio.Task[object], within_s: float = STOP_WITHIN_S) -> None:
    """Cancel ``tasks`` and wait for them; AssertionError naming each that is still
    running after ``within_s``, with its stack (they are left cancelled)."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=within_s)
    if not pending:
        return
    stacks = io.StringIO()
    for task in pending:
        task.print_stack(file=stacks)
    raise AssertionError(
        f"{len(pending)} of {len(tasks)} cancelled tasks still running after {within_s:.0f} s:\n"
        f"{stacks.getvalue()}"
    )
