"""bench.live.serve_env: a benchmark's ``serve`` sees the services the benchmark
itself read from PANIC_* (it used to get none of them: services on other ports
were the benchmark's and not serve's), under the benchmark's own settings."""

from __future__ import annotations

from bench.live import ROOT, serve_env


def test_serve_inherits_the_callers_settings_under_the_benchmarks_own() -> None:
    environ = {
        "HOME": "/home/someone",
        "PANIC_POSTGRES__PORT": "5433",
        "PANIC_REDIS__HOST": "10.0.0.7",
        "PANIC_POSTGRES__DATABASE": "production",
        "PANIC_LOG_LEVEL": "DEBUG",
        "PYTHONPATH": "/elsewhere",
    }
    env = serve_env(environ, "pa_bench_x", port=8123, dashboard_port=8265)
    assert env["HOME"] == "/home/someone"
    assert (env["PANIC_POSTGRES__PORT"], env["PANIC_REDIS__HOST"]) == ("5433", "10.0.0.7")
    # The benchmark's scratch database and its own choices win.
    assert env["PANIC_POSTGRES__DATABASE"] == env["PANIC_MONGO__DATABASE"] == "pa_bench_x"
    assert env["PANIC_RAY__NAMESPACE"] == "pa_bench_x"
    assert (env["PANIC_HTTP__PORT"], env["PANIC_RAY__DASHBOARD_PORT"]) == ("8123", "8265")
    assert env["PANIC_LOG_LEVEL"] == "WARNING"
    assert env["PYTHONPATH"].split(":") == [str(ROOT), "/elsewhere"]
    assert "PANIC_HTTP__GATEWAYS" not in env
    # The caller's mapping is left as it was.
    assert environ["PANIC_POSTGRES__DATABASE"] == "production"


def test_set_and_gateways_come_last() -> None:
    env = serve_env(
        {"PANIC_HTTP__GATEWAYS": "8"},
        "pa_bench_y",
        port=1,
        dashboard_port=2,
        gateways=2,
        env={"PANIC_LOG_LEVEL": "INFO", "PANIC_GEOFENCE__BATCH_LINGER_MS": "5"},
    )
    assert env["PANIC_HTTP__GATEWAYS"] == "2"
    assert env["PANIC_LOG_LEVEL"] == "INFO"
    assert env["PANIC_GEOFENCE__BATCH_LINGER_MS"] == "5"
