"""The garbage collector in the long-running processes (gateway, shard actors).

CPython's full (generation 2) collection walks every container object the
process holds. In the gateway and the shards most of those are made once at
start (imported modules, the FastAPI app and its schemas, Ray's client, the
zone book) and live until the process ends, so a full collection there
paused the event loop for 100-300 ms (measured with ``gc.callbacks`` under
bench/gateway.py): every request in flight waited that long.

``freeze_startup_heap`` is called once the process has started: it collects,
then moves every object still alive into the permanent generation, which
later collections skip. Freed memory is still freed (reference counting is
untouched); only reference cycles among those start-up objects would never be
collected, and start-up objects live for the whole process anyway.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def freeze_startup_heap(name: str) -> int:
    """Collect, then exempt what survives from later collections; returns how many."""
    began = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "%s: %d start-up objects exempted from garbage collection (%.0f ms)",
        name,
        frozen,
        (time.perf_counter() - began) * 1000,
    )
    return frozen
