"""bench/fix_path.py's measured parts: each is bracketed by its meter exactly once,
around the part only (``--instructions`` counts between the child's ``ready`` and
``done``, which are the meter's ``start`` and ``stop``)."""

from __future__ import annotations

import argparse

import pytest

from bench import fix_path
from bench.fix_path import NEW_BUCKETS, SECTIONS, run_section


class FakeMeter:
    """Records its calls and what was measured between them (a fake: no clock)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def stop(self) -> float:
        self.calls.append("stop")
        return 1.0


@pytest.mark.parametrize("section", SECTIONS)
async def test_each_part_is_measured_once_and_given_per_fix(
    section: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not the test process's collector: the part freezes its heap as a shard would.
    monkeypatch.setattr(fix_path, "freeze_startup_heap", lambda _name: 0)
    args = argparse.Namespace(zones=30, subjects=40, rounds=2, seed=2)
    meter = FakeMeter()
    per_fix = await run_section(section, args, meter)
    assert meter.calls == ["start", "stop"]
    # The meter's 1.0 over the part's fixes, in millionths.
    fixes = NEW_BUCKETS if section == "new_bucket" else 40 * 2
    assert per_fix == pytest.approx(1e6 / fixes)
