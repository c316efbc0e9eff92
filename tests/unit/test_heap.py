"""panic_alert.heap: start-up objects leave the collector's scans; later garbage does not."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# In a process of its own: freezing the test runner's heap would outlive this test.
_PROGRAM = textwrap.dedent(
    """
    import gc, json
    from panic_alert.heap import freeze_startup_heap

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
    assert report["still_frozen"] == report["frozen"]  # collecting did not thaw the start-up heap
