"""bench/cpu.py's arithmetic over two snapshots (pure; no processes or /proc/stat read)."""

from __future__ import annotations

from bench.cpu import cores, cpu_busy_share, spent, stolen_share


def test_cpu_spent_is_summed_per_group_and_a_new_process_counts_whole() -> None:
    first = {1: ("gateway", 10.0), 2: ("shards", 4.0), 3: ("shards", 1.0), 9: ("redis", 2.0)}
    last = {1: ("gateway", 12.5), 2: ("shards", 5.0), 3: ("shards", 1.5), 4: ("shards", 0.25)}

    assert spent(first, last) == {"gateway": 2.5, "shards": 1.75}


def test_cpu_seconds_become_cores_over_the_wall_clock_time() -> None:
    assert cores({"gateway": 3.0, "shards": 0.5}, 2.0) == {"gateway": 1.5, "shards": 0.25}


def test_cpu_busy_share_counts_idle_and_iowait_as_idle() -> None:
    before = [100, 0, 50, 800, 50, 0, 0, 0, 0, 0]
    # +300 user, +100 system, +500 idle, +100 iowait: 400 of 1000 busy.
    after = [400, 0, 150, 1300, 150, 0, 0, 0, 0, 0]
    assert cpu_busy_share(before, after) == 0.4
    assert cpu_busy_share(before, before) == 0.0  # no time passed: nothing to say busy


def test_stolen_share_is_steal_over_every_state() -> None:
    before = [100, 0, 50, 800, 50, 0, 0, 10, 0, 0]
    # +300 user, +100 system, +350 idle, +250 steal: 250 of 1000 stolen.
    after = [400, 0, 150, 1150, 50, 0, 0, 260, 0, 0]
    assert stolen_share(before, after) == 0.25
    assert cpu_busy_share(before, after) == 0.65  # steal counts as busy, not idle
    assert stolen_share(before, before) == 0.0
    assert stolen_share(before[:4], after[:4]) == 0.0  # a kernel without the field
