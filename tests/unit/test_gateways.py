"""Several gateway processes on one port: how many, a child's command line and
environment, the restart verdict (``panic_alert.gateways``), and the flags."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from config.settings import HttpSettings
from panic_alert.cli import build_parser
from panic_alert.gateways import (
    METRICS_DIR_ENV,
    TALLY_DIR_ENV,
    ChildPlan,
    GiveUp,
    Restart,
    RestartPolicy,
    child_command,
    child_env,
    gateway_count,
    moves_bulk_socket,
    refuses_bulk_socket,
    restart_verdict,
)

COMMAND = ("/venv/bin/python", "/venv/bin/panic-alert")


def plan(**overrides: object) -> ChildPlan:
    values: dict[str, object] = {
        "command": COMMAND,
        "host": "0.0.0.0",  # noqa: S104 - a value, nothing is bound
        "port": 8123,
        "count": 3,
        "with_ray": True,
        "ray_address": "127.0.0.1:6379",
        "ray_namespace": "ns-1",
        "shards": 2,
        "metrics_dir": "/tmp/metrics-1",  # noqa: S108 - a value, nothing is written
        "tally_dir": "/tmp/tally-1",  # noqa: S108
    }
    values.update(overrides)
    return ChildPlan(**values)  # type: ignore[arg-type]


# ------------------------------------------------------------------- how many


@pytest.mark.parametrize(
    ("configured", "flag", "cpus", "expected"),
    [
        (0, None, 8, 8),  # one per core
        (0, None, 2, 2),
        (0, None, None, 1),  # the core count unknown: one
        (0, None, 200, 64),  # never more than 64
        (3, None, 8, 3),  # the setting
        (3, 1, 8, 1),  # the flag wins
        (1, 0, 4, 4),  # the flag's 0 is one per core too
        (1, None, 8, 1),
    ],
)
def test_gateway_count(configured: int, flag: int | None, cpus: int | None, expected: int) -> None:
    assert gateway_count(configured, flag, cpus) == expected


@pytest.mark.parametrize("flag", [-1, 65])
def test_gateway_count_refuses_a_flag_out_of_range(flag: int) -> None:
    with pytest.raises(ValueError, match="0 to 64"):
        gateway_count(0, flag, 4)


def test_the_setting_defaults_to_one_per_core_and_is_bounded() -> None:
    assert HttpSettings().gateways == 0
    assert HttpSettings(gateways=64).gateways == 64
    for wrong in (-1, 65):
        with pytest.raises(ValidationError):
            HttpSettings(gateways=wrong)


# ----------------------------------------------------------- a child's command


def test_child_command_serves_on_the_parents_port_without_a_relay() -> None:
    assert child_command(plan(), 2) == [
        *COMMAND,
        "serve",
        "--host",
        "0.0.0.0",  # noqa: S104
        "--replica-of-port",
        "8123",
        "--replica-index",
        "2",
        "--gateways",
        "3",
        "--no-relay",
    ]


def test_child_command_without_ray_and_with_the_parents_log_level() -> None:
    argv = child_command(plan(with_ray=False, log_level="DEBUG"), 3)
    assert argv[: len(COMMAND) + 3] == [*COMMAND, "--log-level", "DEBUG", "serve"]
    assert argv[-2:] == ["--no-relay", "--no-ray"]


@pytest.mark.parametrize("index", [0, 1, 4])
def test_child_numbers_are_two_to_count(index: int) -> None:
    with pytest.raises(ValueError, match="2 to 3"):
        child_command(plan(), index)


def test_child_command_parses_as_a_replica() -> None:
    args = build_parser().parse_args(child_command(plan(), 2)[len(COMMAND) :])
    assert args.command == "serve"
    assert args.replica_of_port == 8123
    assert args.replica_index == 2
    assert args.gateways == 3
    assert args.no_relay
    assert not args.no_ray


def test_the_replica_flags_are_hidden_from_help() -> None:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text = serve.format_help()
    assert "--gateways N" in text
    assert "--replica" not in text


# ------------------------------------------------------------ a child's environment


def test_child_env_joins_the_parents_ray_in_its_namespace() -> None:
    environ = {
        "PATH": "/bin",
        "PANIC_HTTP__PORT": "0",
        "RAY_ADDRESS": "elsewhere:6379",
        "PANIC_RAY__ADDRESS": "",
        METRICS_DIR_ENV: "/tmp/stale",  # noqa: S108
        TALLY_DIR_ENV: "/tmp/stale-tally",  # noqa: S108
    }
    env = child_env(plan(), environ)
    assert env["PATH"] == "/bin"
    assert env["PANIC_HTTP__PORT"] == "0"  # the port comes by argument
    assert "RAY_ADDRESS" not in env
    assert env["PANIC_RAY__ADDRESS"] == "127.0.0.1:6379"
    assert env["PANIC_RAY__NAMESPACE"] == "ns-1"
    assert env["PANIC_RAY__SHARDS"] == "2"
    assert env[METRICS_DIR_ENV] == "/tmp/metrics-1"  # noqa: S108
    assert env[TALLY_DIR_ENV] == "/tmp/tally-1"  # noqa: S108
    assert environ["RAY_ADDRESS"] == "elsewhere:6379"  # not changed


def test_child_env_without_ray_or_summed_metrics() -> None:
    environ = {"RAY_ADDRESS": "x:1", METRICS_DIR_ENV: "/tmp/stale", TALLY_DIR_ENV: "/tmp/t"}  # noqa: S108
    env = child_env(
        plan(with_ray=False, ray_address=None, metrics_dir=None, tally_dir=None), environ
    )
    assert env == {"RAY_ADDRESS": "x:1"}


def test_child_env_with_ray_needs_the_address() -> None:
    with pytest.raises(ValueError, match="Ray address"):
        child_env(plan(ray_address=None), {})


# ----------------------------------------------------------------- restarts


def test_a_child_that_exits_starts_again_after_the_back_off() -> None:
    policy = RestartPolicy(backoff_s=1.0, max_restarts=5, window_s=60.0)
    assert restart_verdict(policy, [], 100.0) == Restart(101.0)


def test_restarts_are_capped_per_window() -> None:
    policy = RestartPolicy(backoff_s=1.0, max_restarts=5, window_s=60.0)
    four = [50.0, 60.0, 70.0, 80.0]
    assert restart_verdict(policy, four, 100.0) == Restart(101.0)
    assert restart_verdict(policy, [*four, 90.0], 100.0) == GiveUp(5)
    # Restarts older than the window no longer count.
    assert restart_verdict(policy, [10.0, 20.0, 30.0, 40.0, 90.0], 100.0) == Restart(101.0)


# ------------------------------------------------------------ bulk sockets


@pytest.mark.parametrize(
    ("mine", "others", "refused"),
    [
        (0, [], False),  # the only gateway takes every socket
        (7, [], False),
        (0, [0], False),
        (1, [0], True),  # another holds fewer: connect again
        (1, [1], False),
        (2, [3, 1], True),
        (2, [2, 3], False),
    ],
)
def test_a_gateway_refuses_a_bulk_socket_only_when_another_holds_fewer(
    mine: int, others: list[int], refused: bool
) -> None:
    assert refuses_bulk_socket(mine, others) is refused


@given(
    gateways=st.integers(1, 6),
    landings=st.lists(st.integers(0, 63), max_size=80),
    start=st.lists(st.integers(0, 5), min_size=6, max_size=6),
)
def test_the_gateway_holding_fewest_always_takes_and_the_spread_never_widens(
    gateways: int, landings: list[int], start: list[int]
) -> None:
    """Wherever the kernel hands each attempt, some gateway would take it (no
    socket is sent away forever), and taking one never widens the spread past
    what it was, nor past one."""
    counts = start[:gateways]
    for landing in landings:
        assert any(
            not refuses_bulk_socket(counts[i], counts[:i] + counts[i + 1 :])
            for i in range(gateways)
        )
        i = landing % gateways
        spread = max(counts) - min(counts)
        if not refuses_bulk_socket(counts[i], counts[:i] + counts[i + 1 :]):
            counts[i] += 1
        assert max(counts) - min(counts) <= max(spread, 1)


@pytest.mark.parametrize(
    ("mine", "others", "moves"),
    [
        (5, [], False),  # alone
        (1, [0], False),  # moving it would only turn the gap around
        (2, [0], True),
        (4, [3, 2], True),
        (4, [3, 3], False),
        (0, [0], False),
    ],
)
def test_a_gateway_sends_an_open_socket_away_only_two_or_more_above_another(
    mine: int, others: list[int], moves: bool
) -> None:
    assert moves_bulk_socket(mine, others) is moves


@given(counts=st.lists(st.integers(0, 20), min_size=1, max_size=6))
def test_moving_sockets_evens_any_spread_to_one(counts: list[int]) -> None:
    """Whatever the sockets' spread (say, all on the first gateway while the
    others started), moving one at a time from a gateway with a surplus to the
    one holding fewest narrows it, until no gateway is two above another."""
    total = sum(counts)
    for _ in range(200):
        surplus = [
            i
            for i in range(len(counts))
            if moves_bulk_socket(counts[i], counts[:i] + counts[i + 1 :])
        ]
        if not surplus:
            break
        before = sorted(counts)
        counts[surplus[0]] -= 1
        counts[counts.index(min(counts))] += 1
        assert sorted(counts) != before
    assert max(counts) - min(counts) <= 1
    assert sum(counts) == total
