"""bench/cpu_budget.py's pure parts: a sampled stack's stage, and a profile's split."""

from __future__ import annotations

from bench.cpu_budget import GATEWAY_STAGES, SHARD_STAGES, budget, split, stage_of

LOOP = "Runner.run (asyncio/runners.py:118)"
FLUSH = "LocationIngest.flush (gateway/locations.py:160)"


def test_the_innermost_matching_frame_decides_the_stage() -> None:
    # The flush loop holds both the Redis write and the Ray hop: the inner frame wins.
    redis = [LOOP, FLUSH, "LocationIngest._store_latest (gateway/locations.py:200)"]
    ray = [LOOP, FLUSH, "LocationIngest._track (gateway/locations.py:180)"]
    assert stage_of(redis, GATEWAY_STAGES) == "redis write"
    assert stage_of(ray, GATEWAY_STAGES) == "ray hop"
    assert stage_of([LOOP, FLUSH], GATEWAY_STAGES) == "flush loop"
    assert stage_of([LOOP], GATEWAY_STAGES) == "other"
    decide = ["ShardActor.track (cluster/shards.py:1)", "decide (actors/subject.py:9)"]
    assert stage_of(decide, SHARD_STAGES) == "decision"


def test_a_profile_splits_into_microseconds_per_fix() -> None:
    raw = "\n".join(
        [
            f"{LOOP};{FLUSH};LocationIngest._store_latest (gateway/locations.py:200) 30",
            f"{LOOP};{FLUSH};LocationIngest._track (gateway/locations.py:180) 10",
            f"{LOOP} 60",
            "",
            "garbage",
        ]
    )
    counts, total = split(raw, GATEWAY_STAGES)
    assert total == 100
    assert counts == {"redis write": 30, "ray hop": 10, "other": 60}
    assert budget(counts, total, 20.0) == {"other": 12.0, "redis write": 6.0, "ray hop": 2.0}
    assert budget(counts, 0, 20.0) == {}
