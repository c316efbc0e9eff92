"""bench/geofence.py's readings of a run: the carried-out timeline (per-second counts
from the metric's samples) and the slow collections in serve's log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.geofence import carried_timeline, fixes_in, slow_collections
from bench.live import warnings_in


def test_whole_seconds_are_counted_from_the_start() -> None:
    samples = [(10.0, 100.0), (10.5, 600.0), (11.0, 1100.0), (11.5, 1600.0), (12.0, 2100.0)]
    assert carried_timeline(samples, start=10.0, baseline=100.0, seconds=30) == [1000, 1000]


def test_a_boundary_between_samples_is_interpolated() -> None:
    # 1,000 a second throughout, sampled off the seconds' boundaries.
    samples = [(0.3, 300.0), (0.8, 800.0), (1.3, 1300.0), (1.8, 1800.0), (2.3, 2300.0)]
    assert carried_timeline(samples, start=0.0, baseline=0.0, seconds=30) == [1000, 1000]


def test_before_the_first_sample_the_baseline_holds() -> None:
    samples = [(0.5, 50.0), (1.0, 500.0)]
    assert carried_timeline(samples, start=0.0, baseline=50.0, seconds=30) == [450]


def test_the_timeline_stops_at_the_last_sample_and_at_the_sending_time() -> None:
    samples = [(0.0, 0.0), (1.0, 10.0), (1.5, 20.0)]
    assert carried_timeline(samples, start=0.0, baseline=0.0, seconds=30) == [10]
    steady = [(t / 2, t * 500.0) for t in range(21)]  # 10 s of samples
    assert carried_timeline(steady, start=0.0, baseline=0.0, seconds=3) == [1000] * 3
    assert carried_timeline([], start=0.0, baseline=0.0, seconds=30) == []


def test_a_gap_in_the_samples_is_unknown_not_spread() -> None:
    # /metrics unanswered from 1.0 s to 4.0 s: seconds 1-3 are not known.
    samples = [(0.0, 0.0), (0.5, 500.0), (1.0, 1000.0), (4.0, 4000.0), (4.5, 4500.0), (5.0, 5000.0)]
    assert carried_timeline(samples, start=0.0, baseline=0.0, seconds=30) == [
        1000,
        None,
        None,
        None,
        1000,
    ]


def test_a_stall_then_a_catch_up_shows_as_such() -> None:
    samples = [(t / 2, 0.0) for t in range(5)] + [(2.5, 1500.0), (3.0, 3000.0)]
    assert carried_timeline(samples, start=0.0, baseline=0.0, seconds=30) == [0, 0, 3000]


def test_slow_collections_are_read_from_serves_log_records() -> None:
    began_at = datetime(2026, 12, 6, 10, 1, 15, 500000, tzinfo=UTC).timestamp()
    records = [
        {
            "time": "2026-12-06T10:01:16.000Z",
            "level": "WARNING",
            "logger": "config.heap",
            "message": "gateway: garbage collection of generation 1 paused the process 302 ms "
            "(110 ms of its CPU; 0 objects collected)",
            "gc_process": "gateway",
            "gc_generation": 1,
            "gc_paused_ms": 302,
            "gc_cpu_ms": 110,
        },
        {
            "time": "2026-12-06T10:01:17.000Z",
            "level": "WARNING",
            "logger": "gateway.locations",
            "message": "locations: a shard is 2.0 s behind; going on",
        },
        {"time": "not a time", "logger": "config.heap", "gc_paused_ms": 120, "message": "x"},
        {"time": "2026-12-06T10:01:18.000Z", "logger": "config.heap", "message": "frozen"},
    ]
    assert slow_collections(records, began_at) == [[0.5, "gateway", 1, 302, 110]]


def test_serves_warnings_are_its_json_records_at_warning_or_above(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    log.write_text(
        '{"level":"INFO","logger":"a","message":"started"}\n'
        "2026-12-06 10:00:17,115 INFO worker.py -- a line from Ray, not JSON\n"
        '{"level":"WARNING","logger":"b","message":"slow"}\n'
        '{"level":"ERROR","logger":"c","message":"failed"}\n'
        "[1, 2]\n"
    )
    assert [r["logger"] for r in warnings_in(log)] == ["b", "c"]
    assert warnings_in(tmp_path / "missing.log") == []


def test_the_carried_and_refused_counts_are_read_from_the_metrics_text() -> None:
    text = "\n".join(
        [
            "# HELP geofence_fixes_total Location fixes by outcome in the gateway processes.",
            'geofence_fixes_total{outcome="accepted"} 120.0',
            'geofence_fixes_total{outcome="refused"} 7.0',
            'geofence_fixes_total{outcome="carried_out"} 113.0',
            'geofence_fixes_created{outcome="refused"} 1.7e9',
        ]
    )
    assert fixes_in(text) == (113.0, 7.0)
    assert fixes_in("# nothing yet") == (0.0, 0.0)
