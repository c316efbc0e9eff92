"""``panic-alert demo``'s arguments and its state file (no server needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from config.settings import Settings
from panic_alert.cli import CommandError, build_parser, demo_options
from panic_alert.demo import plan
from panic_alert.demo.accounts import DemoError, DemoState, StateFile
from panic_alert.demo.world import Options


def options_of(*argv: str, data_dir: Path = Path("/srv/demo-data")) -> Options:
    args = build_parser().parse_args(["demo", *argv])
    return demo_options(Settings(data_dir=data_dir), args)


def test_the_defaults_are_the_briefs_berlin_demo() -> None:
    options = options_of()
    assert options == options_of("--url", "http://127.0.0.1:8000/")
    assert options.url == "http://127.0.0.1:8000"
    assert options.responders == 50
    assert options.users == 20
    assert options.city == plan.City(plan.Point(52.52, 13.405), 5_000.0)
    assert options.speed == 1.0
    assert options.duration_s is None
    assert options.tuning.alert_every_s == 60.0
    assert options.state_path == Path("/srv/demo-data/demo/state.json")


def test_options_are_read() -> None:
    options = options_of(
        *("--responders", "200", "--users", "50", "--city", "48.85,2.35"),
        *("--radius-km", "3", "--speed", "5", "--duration", "60", "--seed", "7"),
        *("--alert-every", "30", "--admin-email", "a@example.org", "--admin-password", "x"),
    )
    assert options.responders == 200
    assert options.city == plan.City(plan.Point(48.85, 2.35), 3_000.0)
    assert options.duration_s == 60.0
    assert options.seed == 7
    assert options.tuning.alert_every_s == 30.0
    assert options.admin_email == "a@example.org"


@pytest.mark.parametrize(
    "argv",
    [
        ("--responders", "-1"),
        ("--responders", "0", "--users", "0"),
        ("--speed", "0"),
        ("--duration", "0"),
        ("--radius-km", "0"),
        ("--alert-every", "0"),
        ("--city", "berlin"),
        ("--admin-email", "a@example.org"),
    ],
)
def test_bad_options_are_usage_errors(
    argv: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PANIC_DEMO_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError) as raised:
        options_of(*argv)
    assert raised.value.exit_code == 2


def test_the_state_file_round_trips_private(tmp_path: Path) -> None:
    file = StateFile(tmp_path / "demo" / "state.json")
    state = file.load()
    assert not file.path.exists()  # a new state is saved only when used
    assert len(state.password) >= 20
    assert state.cancel_pin != state.duress_pin
    state.registered.update({"demo-user-0001@demo.example.org"})
    state.admin_email, state.admin_password = "demo-admin-0001@demo.example.org", "pw" * 12
    file.save(state)
    assert stat.S_IMODE(file.path.stat().st_mode) == 0o600
    assert file.load() == state
    assert DemoState.new().password != state.password


def test_an_unreadable_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(DemoError, match="delete it"):
        StateFile(path).load()
