"""config.heap: start-up objects leave the collector's scans; later garbage does not."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from config import heap
from config.heap import FULL_AFTER, SLOW_PAUSE_S, YOUNG_AFTER
from config.logging import JsonFormatter

# In a process of its own: freezing the test runner's heap would outlive this test.
_PROGRAM = textwrap.dedent(
    """
    import gc, json
    from config.heap import freeze_startup_heap

    class Node:
        pass

    kept = [Node() for _ in range(1000)]          # start-up objects
    frozen = freeze_startup_heap("test")
    # Objects the collector still scans (the permanent generation is not listed).
    scanned = sum(isinstance(o, Node) for o in gc.get_objects())
    a, b = Node(), Node()                          # a reference cycle made later
    a.other, b.other = b, a
    del a, b
    print(json.dumps({
        "frozen": frozen,
        "freeze_count": gc.get_freeze_count(),
        "start_up_nodes_scanned": scanned,
        "collected_later": gc.collect(),
        "still_frozen": gc.get_freeze_count(),
        "kept": len(kept),
        "young_after": gc.get_threshold()[0],
        "full_after": gc.get_threshold()[2],
        "watchers": sum(type(cb).__name__ == "_PauseWatch" for cb in gc.callbacks),
    }))
    """
)


def test_start_up_objects_are_frozen_and_later_cycles_still_collected() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    report = json.loads(done.stdout)
    assert report["frozen"] == report["freeze_count"] >= 1000
    assert report["kept"] == 1000
    assert report["start_up_nodes_scanned"] == 0  # they went to the permanent generation
    assert report["collected_later"] >= 2  # the cycle made after the freeze is collected
    assert report["young_after"] == YOUNG_AFTER
    assert report["full_after"] == FULL_AFTER
    assert report["watchers"] == 1
    assert report["still_frozen"] == report["frozen"]  # collecting did not thaw the start-up heap


def test_a_slow_collection_is_logged_and_a_quick_one_is_not(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([10.0, 10.001, 20.0, 20.0 + SLOW_PAUSE_S])
    monkeypatch.setattr(heap.time, "perf_counter", lambda: next(clock))
    cpu = iter([1.0, 2.0, 2.004])  # read at each start, and at a slow stop: 4 ms of CPU
    monkeypatch.setattr(heap.time, "thread_time", lambda: next(cpu))
    watch = heap._PauseWatch("shard 0")
    with caplog.at_level(logging.WARNING, logger="config.heap"):
        watch("start", {"generation": 0})
        watch("stop", {"generation": 0, "collected": 5})
        watch("start", {"generation": 2})
        watch("stop", {"generation": 2, "collected": 7})
    assert [r.getMessage() for r in caplog.records] == [
        "shard 0: garbage collection of generation 2 paused the process 100 ms "
        "(4 ms of its CPU; 7 objects collected)"
    ]
    # The same figures as fields of the JSON line, which bench/geofence.py reads.
    line = json.loads(JsonFormatter().format(caplog.records[0]))
    assert (line["gc_process"], line["gc_generation"]) == ("shard 0", 2)
    assert (line["gc_paused_ms"], line["gc_cpu_ms"]) == (100, 4)
