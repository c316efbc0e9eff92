"""The garbage collector in the long-running processes (gateway, shard actors).

CPython's full (generation 2) collection walks every container object the
process holds, and the event loop waits meanwhile. In the gateway and the
shards most of those objects are made once at start (imported modules, the
FastAPI app and its schemas, Ray's client, the zone book) and live until the
process ends; under bench/gateway.py full collections paused the gateway
and the shard for 100-300 ms each, and every request in flight waited.

``freeze_startup_heap`` is called once the process has started:

- it collects, then moves every object still alive into the permanent
  generation, which later collections skip. Freed memory is still freed
  (reference counting is untouched); only reference cycles among those
  start-up objects would never be collected, and they live as long as the
  process anyway;
- the youngest generation is collected after ``YOUNG_AFTER`` net new
  container objects instead of CPython's 700. Under bench/geofence.py
  (5,000 fixes/s through one gateway) the default ran ~75 young collections
  a second, each walking the fixes still queued for the next batch, which
  then went on to the middle generation to be walked again: 6 % of the
  gateway's time, measured with ``gc.callbacks``. With 10,000 it was under
  1 %. A young collection walks only objects still alive, so it pauses no
  longer for being rarer (a few milliseconds at most);
- full collections are considered after ``FULL_AFTER`` collections of the
  middle generation instead of CPython's 10 (CPython also waits until the
  objects promoted since the last one are a quarter of the old ones). At
  200 requests/s that made them rare enough that none fell inside a 15 s
  measurement; cyclic garbage that reached the old generation is freed
  later, which costs some memory, not correctness;
- a collection that still pauses the process for ``SLOW_PAUSE_S`` or more
  is logged, so a latency spike can be matched with one.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

#: Net new container objects before the youngest generation is collected (CPython: 700).
YOUNG_AFTER = 10_000
#: Collections of generation 1 before a full collection is considered (CPython: 10).
FULL_AFTER = 200
#: A collection pausing the process this long is logged.
SLOW_PAUSE_S = 0.1


class _PauseWatch:
    """A ``gc.callbacks`` entry that logs slow collections (four clock reads each).

    A pause is wall-clock time; the thread's own CPU time over it is logged
    beside it. On a machine whose cores are all busy the two differ, the
    process waiting for a core in the middle of the collection (issue 20: a
    gateway that had fallen behind had young collections of 104-251 ms, of
    which 16-70 ms its own CPU).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._began = 0.0
        self._began_cpu = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            self._began_cpu = time.thread_time()
            return
        paused = time.perf_counter() - self._began
        if paused >= SLOW_PAUSE_S:
            paused_ms = round(paused * 1000)
            cpu_ms = round((time.thread_time() - self._began_cpu) * 1000)
            log.warning(
                "%s: garbage collection of generation %s paused the process %d ms "
                "(%d ms of its CPU; %s objects collected)",
                self.name,
                info.get("generation"),
                paused_ms,
                cpu_ms,
                info.get("collected"),
                # The same as fields of the JSON line (bench/geofence.py reads them).
                extra={
                    "gc_process": self.name,
                    "gc_generation": info.get("generation"),
                    "gc_paused_ms": paused_ms,
                    "gc_cpu_ms": cpu_ms,
                },
            )


def freeze_startup_heap(name: str) -> int:
    """Collect, exempt what survives from later collections, make collections rarer.

    Returns how many objects were frozen. Meant to be called once per process.
    """
    began = time.perf_counter()
    gc.collect()
    gc.freeze()
    _young, middle, _old = gc.get_threshold()
    gc.set_threshold(YOUNG_AFTER, middle, FULL_AFTER)
    if not any(isinstance(cb, _PauseWatch) for cb in gc.callbacks):
        gc.callbacks.append(_PauseWatch(name))
    frozen = gc.get_freeze_count()
    log.info(
        "%s: %d start-up objects exempted from garbage collection (%.0f ms)",
        name,
        frozen,
        (time.perf_counter() - began) * 1000,
    )
    return frozen
