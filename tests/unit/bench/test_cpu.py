"""bench/cpu.py's arithmetic over two snapshots (pure; no processes read)."""

from __future__ import annotations

from bench.cpu import cores, spent


def test_cpu_spent_is_summed_per_group_and_a_new_process_counts_whole() -> None:
    first = {1: ("gateway", 10.0), 2: ("shards", 4.0), 3: ("shards", 1.0), 9: ("redis", 2.0)}
    last = {1: ("gateway", 12.5), 2: ("shards", 5.0), 3: ("shards", 1.5), 4: ("shards", 0.25)}

    assert spent(first, last) == {"gateway": 2.5, "shards": 1.75}


def test_cpu_seconds_become_cores_over_the_wall_clock_time() -> None:
    assert cores({"gateway": 3.0, "shards": 0.5}, 2.0) == {"gateway": 1.5, "shards": 0.25}
