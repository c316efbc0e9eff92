"""bench/peer_tile38.py's pure parts: both benches' flags, the figures that map, the load rule."""

from __future__ import annotations

from pathlib import Path

from bench.peer_tile38 import (
    WORKLOAD,
    busy_reason,
    ours_rss_mb,
    ratios,
    tile38_home,
    workload_argv,
    writable,
)

OURS = {
    "carried_out_per_s": 7859,
    "update_to_event_p50_ms": 4200.0,
    "update_to_event_p99_ms": 5700.0,
    "probe_missed": 22,
    "gateway_rss_mb": 782.0,
    "shards_rss_mb": [298.0],
}
TILE38 = {
    "carried_out_per_s": 10000,
    "update_to_event_p50_ms": 0.85,
    "update_to_event_p99_ms": 4.1,
    "probe_missed": 0,
    "server_rss_mb": 162.0,
}


def test_workload_argv_gives_every_flag_in_a_fixed_order() -> None:
    argv = workload_argv({**WORKLOAD, "zones": 2000, "rate": 2000.0})
    assert argv == [
        "--zones", "2000",
        "--subjects", "10000",
        "--rate", "2000.0",
        "--seconds", "20.0",
        "--warmup", "10.0",
        "--probes", "20",
        "--seed", "7",
    ]  # fmt: skip


def test_ratios_are_ours_over_tile38_and_missed_probes_a_difference() -> None:
    assert ratios(OURS, TILE38) == {
        "carried_out_per_s": 0.786,
        "update_to_event_p50_ms": 4941.176,
        "update_to_event_p99_ms": 1390.244,
        "probe_missed": 22,
        "rss_mb": round(1080.0 / 162.0, 3),
    }


def test_memory_is_the_gateway_plus_every_shard() -> None:
    assert ours_rss_mb({"gateway_rss_mb": 700.0, "shards_rss_mb": [100.0, 50.5]}) == 850.5
    assert ours_rss_mb({"gateway_rss_mb": 700.0}) is None
    assert ours_rss_mb({"gateway_rss_mb": 700.0, "shards_rss_mb": [100.0, None]}) is None


def test_missing_or_unmeasured_figures_give_none_not_a_number() -> None:
    # -1 is the benches' "no probe entry measured"; 0 carried cannot divide.
    theirs = {**TILE38, "update_to_event_p50_ms": -1, "carried_out_per_s": 0}
    theirs.pop("probe_missed")
    got = ratios({**OURS, "update_to_event_p99_ms": -1}, theirs)
    assert got["update_to_event_p50_ms"] is None
    assert got["update_to_event_p99_ms"] is None
    assert got["carried_out_per_s"] is None
    assert got["probe_missed"] is None
    assert ratios({}, {}) == dict.fromkeys(
        (
            "carried_out_per_s",
            "update_to_event_p50_ms",
            "update_to_event_p99_ms",
            "probe_missed",
            "rss_mb",
        )
    )


def test_a_busy_machine_is_refused_unless_allowed() -> None:
    assert busy_reason(0.4, allow_busy=False) is None
    assert busy_reason(1.0, allow_busy=False) is None
    reason = busy_reason(1.7, allow_busy=False)
    assert reason is not None
    assert "1.70" in reason
    assert "--allow-busy" in reason
    assert busy_reason(1.7, allow_busy=True) is None


def test_tile38_home_follows_install_sh() -> None:
    harness = Path("/shared/peers/tile38")
    assert tile38_home(harness, {"TILE38_HOME": "/opt/t38"}, writable=True) == Path("/opt/t38")
    assert tile38_home(harness, {}, writable=True) == harness
    assert tile38_home(harness, {"XDG_CACHE_HOME": "/c"}, writable=False) == Path("/c/tile38-peer")


def test_a_folder_without_write_bits_is_read_only_even_for_root(tmp_path: Path) -> None:
    assert writable(tmp_path)
    tmp_path.chmod(0o555)
    try:
        assert not writable(tmp_path)  # os.access alone says True for root
    finally:
        tmp_path.chmod(0o755)
    assert not writable(tmp_path / "not-there")
