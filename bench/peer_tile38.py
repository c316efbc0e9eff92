"""Our geofencing bench and Tile38's, one after the other on this machine: prints one JSON object.

  .venv/bin/python bench/peer_tile38.py [--zones 10000] [--subjects 10000] [--rate 10000]
                                        [--seconds 20] [--warmup 10] [--probes 20] [--seed 7]
                                        [--peer-dir ../shared/peers/tile38] [--allow-busy]
                                        [--ours-args "--gateways 2"] [--tile38-args "--no-aof"]

Issue 20's side-by-side run. The Tile38 harness is the shared one (README.md,
install.sh, bench_tile38.py, check_workload.py in ``--peer-dir``, by default
``../shared/peers/tile38`` beside this checkout); this script only drives it:

1. refuses to start when the 1-minute load average is above 1.0 (a comparison
   on a busy machine is worthless) unless ``--allow-busy``;
2. ``check_workload.py`` on this checkout: exits if our workload drifted from
   the harness's copy of it;
3. ``install.sh`` when ``tile38-server`` is missing (``TILE38_SRC`` and
   ``TILE38_VERSION`` are passed through from the environment); Tile38 lives
   in ``TILE38_HOME``, by default ``~/.cache/tile38-peer`` when the harness
   folder is read-only (:func:`tile38_home`: also for root, see :func:`writable`);
4. ``bench/geofence.py``, then (once the CPU is quiet again, up to
   ``--settle`` seconds) ``bench_tile38.py``, each a subprocess given
   the same workload flags (all seven, defaults included, so both draw the
   same zones, walkers, rate, window and probes); their stderr progress is
   passed through, prefixed ``[ours]`` and ``[tile38]``.

The object printed is ``{"ours": {...}, "tile38": {...}, "ratios": {...},
"machine": {...}}``: both benches' objects as they printed them,
:func:`ratios` of the figures that map (the harness README's "Figures, and
how they map"), and the machine (cores, the load average over 1, 5 and 15
minutes and the CPU's busy share of the 2 s before each run, the share
of the CPU the hypervisor stole while each ran, Python, Tile38's version). Progress goes to
stderr. Our bench needs the services (``PANIC_DATA_DIR``) as
``bench/geofence.py`` alone does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

from bench.cpu import cpu_busy_share, cpu_times, stolen_share

#: The workload flags both benches take, with the defaults both have.
WORKLOAD: dict[str, int | float] = {
    "zones": 10_000,
    "subjects": 10_000,
    "rate": 10_000.0,
    "seconds": 20.0,
    "warmup": 10.0,
    "probes": 20,
    "seed": 7,
}

#: Figures whose ratio ours / Tile38's is reported, under the same name on both sides.
RATIO_FIGURES = ("carried_out_per_s", "update_to_event_p50_ms", "update_to_event_p99_ms")

#: Above this 1-minute load average the comparison does not start (without --allow-busy).
MAX_LOAD = 1.0

#: Between the runs, the CPU counts as quiet at or below this busy share (of all cores).
QUIET_CPU = 0.15


def workload_argv(workload: Mapping[str, int | float]) -> list[str]:
    """The flags for ``workload`` in WORKLOAD's order: the same list for both benches."""
    argv: list[str] = []
    for name in WORKLOAD:
        argv += [f"--{name}", str(workload[name])]
    return argv


def _number(value: Any) -> float | None:
    """A figure as a number, or None for absent, non-numeric or negative (the benches' -1: none)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or theirs == 0:
        return None
    return round(ours / theirs, 3)


def ours_rss_mb(ours: Mapping[str, Any]) -> float | None:
    """Our geofencing server's RSS: the gateway's plus every shard's (bench/geofence.py)."""
    gateway = _number(ours.get("gateway_rss_mb"))
    shards = ours.get("shards_rss_mb")
    if gateway is None or not isinstance(shards, list):
        return None
    sizes = [_number(s) for s in shards]
    if any(s is None for s in sizes):
        return None
    return round(gateway + sum(s for s in sizes if s is not None), 1)


def ratios(ours: Mapping[str, Any], tile38: Mapping[str, Any]) -> dict[str, float | int | None]:
    """The figures that map, ours against Tile38's (None where either side lacks one).

    - ``carried_out_per_s``, ``update_to_event_p50_ms``, ``update_to_event_p99_ms``:
      ours / Tile38's (above 1 means we carried more, or were slower to the event);
    - ``probe_missed``: ours - Tile38's, a difference (a ratio of counts that are
      usually 0 says nothing);
    - ``rss_mb``: our gateway's plus shards' RSS / tile38-server's ``server_rss_mb``.

    A latency of -1 (no probe entry measured) counts as absent, not as a figure.
    """
    out: dict[str, float | int | None] = {
        name: _ratio(_number(ours.get(name)), _number(tile38.get(name))) for name in RATIO_FIGURES
    }
    missed_ours, missed_theirs = ours.get("probe_missed"), tile38.get("probe_missed")
    out["probe_missed"] = (
        missed_ours - missed_theirs
        if isinstance(missed_ours, int) and isinstance(missed_theirs, int)
        else None
    )
    out["rss_mb"] = _ratio(ours_rss_mb(ours), _number(tile38.get("server_rss_mb")))
    return out


def busy_reason(load_1min: float, allow_busy: bool) -> str | None:
    """Why the comparison should not start on this machine now, or None when it may."""
    if load_1min <= MAX_LOAD or allow_busy:
        return None
    return (
        f"the 1-minute load average is {load_1min:.2f} (above {MAX_LOAD}): something else is "
        "running, and a comparison on a busy machine is worthless. Wait for it to settle, "
        "or pass --allow-busy to run anyway (and say so with the figures)."
    )


def tile38_home(peer_dir: Path, environ: Mapping[str, str], writable: bool) -> Path:
    """Where tile38-server is installed and runs keep their data (install.sh's rule).

    ``TILE38_HOME`` when set, else the harness folder when ``writable``, else
    ``~/.cache/tile38-peer``. The script passes the answer to install.sh and
    bench_tile38.py as ``TILE38_HOME``, so all three agree.
    """
    if environ.get("TILE38_HOME"):
        return Path(environ["TILE38_HOME"])
    if writable:
        return peer_dir
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "tile38-peer"


def writable(folder: Path) -> bool:
    """Whether ``folder`` is meant to be written: accessible for writing *and* with a write bit.

    As root, ``os.access`` (and bash's ``-w``) call every folder writable, so the
    harness would put its binary and data into the read-only shared folder;
    its mode bits say what is meant.
    """
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(stat.S_IMODE(mode) & 0o222)


# --- The shell: subprocesses, their stderr, the machine. ---


def say(message: str) -> None:
    print(f"bench/peer_tile38: {message}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A step failed; the message says what to do."""


def run(command: Sequence[str], prefix: str, env: Mapping[str, str] | None = None) -> str:
    """Runs ``command``, its stderr relayed line by line behind ``prefix``; returns its stdout."""
    say(f"running {shlex.join(command)}")
    proc = subprocess.Popen(
        list(command),
        cwd=ROOT,
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr = proc.stderr

    def relay() -> None:
        for line in stderr:
            print(f"{prefix} {line}", end="", file=sys.stderr, flush=True)

    relaying = threading.Thread(target=relay, daemon=True)
    relaying.start()
    try:
        stdout = proc.stdout.read()
        proc.wait()
    except BaseException:
        # SIGINT, as Ctrl-C: each bench then stops what it started (serve, tile38-server).
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    relaying.join(5)
    if proc.returncode != 0:
        tail = stdout.strip()[-2000:]
        raise Failed(
            f"{shlex.join(command)} exited with {proc.returncode}"
            + (f"; its output ends:\n{tail}" if tail else "")
        )
    return stdout


def last_json(stdout: str, what: str) -> dict[str, Any]:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            value = json.loads(line)
            if isinstance(value, dict):
                return value
    raise Failed(f"{what} printed no JSON object; its output:\n{stdout[-2000:]}")


def ensure_tile38(peer_dir: Path, env: Mapping[str, str], allow_busy: bool) -> str:
    """tile38-server's version line, after install.sh (and the load settling) when it is missing."""
    server = Path(env["TILE38_HOME"]) / "bin" / "tile38-server"
    if not os.access(server, os.X_OK):
        say(f"{server} is missing: installing it with install.sh (2-5 minutes)")
        try:
            run(["bash", str(peer_dir / "install.sh")], "[install]", env)
        except Failed as failure:
            raise Failed(
                f"{failure}\nTile38 could not be built. The Go module proxy here refuses "
                "tile38 itself, so install.sh builds it from a git copy: set TILE38_SRC to a "
                "clone or bare git directory of github.com/tidwall/tile38 holding the tag "
                f"{os.environ.get('TILE38_VERSION', '1.37.0')}, and have Go in "
                "/usr/local/go/bin; or set TILE38_HOME to a folder whose bin/ holds a built "
                "tile38-server."
            ) from failure
        settle(allow_busy)
    version = subprocess.run(
        [str(server), "--version"], capture_output=True, text=True, check=False
    )
    lines = (version.stdout or version.stderr).strip().splitlines()
    if version.returncode != 0 or not lines:
        raise Failed(f"{server} --version failed: rebuild it with install.sh --force")
    return lines[0]


def settle(allow_busy: bool, wait_s: float = 180) -> None:
    """After our own build: waits (up to ``wait_s``) for the load average to fall back."""
    if allow_busy:
        return
    waited = time.monotonic()
    while os.getloadavg()[0] > MAX_LOAD and time.monotonic() - waited < wait_s:
        say(f"load average {os.getloadavg()[0]:.2f} after the build: waiting for it to settle")
        time.sleep(10)
    reason = busy_reason(os.getloadavg()[0], allow_busy)
    if reason:
        raise Failed(reason)


def settle_between(max_wait_s: float) -> tuple[float, float]:
    """Waits (up to ``max_wait_s``) until the CPU is quiet again after our bench.

    Our bench's services finish its work (the outbox, dropping its scratch
    database) after it exits. Returns the busy share of the last 2 s and the
    seconds waited.
    """
    began = time.monotonic()
    while True:
        first = cpu_times()
        time.sleep(2)
        share = cpu_busy_share(first, cpu_times())
        waited = time.monotonic() - began
        if share <= QUIET_CPU or waited >= max_wait_s:
            return share, round(waited, 1)
        say(f"CPU {share:.0%} busy after our bench: waiting for it to be quiet")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in WORKLOAD.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    parser.add_argument(
        "--peer-dir",
        type=Path,
        default=ROOT.parent / "shared" / "peers" / "tile38",
        help="the shared Tile38 harness (default: ../shared/peers/tile38 from the repo root)",
    )
    parser.add_argument("--allow-busy", action="store_true", help="run above load average 1.0")
    parser.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="at most this many seconds waited for a quiet CPU between the runs",
    )
    parser.add_argument("--ours-args", default="", help="more flags for bench/geofence.py")
    parser.add_argument("--tile38-args", default="", help="more flags for bench_tile38.py")
    args = parser.parse_args()
    peer_dir: Path = args.peer_dir.resolve()
    try:
        missing = [
            name
            for name in ("bench_tile38.py", "check_workload.py", "install.sh")
            if not (peer_dir / name).is_file()
        ]
        if missing:
            raise Failed(
                f"the Tile38 harness is not at {peer_dir} (missing: {', '.join(missing)}): "
                "give its folder with --peer-dir"
            )
        load_1min = os.getloadavg()[0]
        reason = busy_reason(load_1min, args.allow_busy)
        if reason:
            raise Failed(reason)
        if load_1min > MAX_LOAD:
            say(f"load average {load_1min:.2f}: running anyway (--allow-busy)")
        try:
            check = run([sys.executable, str(peer_dir / "check_workload.py"), "."], "[check]")
        except Failed as failure:
            raise Failed(
                f"{failure}\nThe workload drifted: bench/geofence.py no longer draws what the "
                "harness's copy draws, so the two runs would not compare. Bring them back "
                "together (or the harness's copy, with its owner) before comparing."
            ) from failure
        if check.strip():
            say(check.strip())
        home = tile38_home(peer_dir, os.environ, writable(peer_dir))
        tile38_env = {**os.environ, "TILE38_HOME": str(home)}
        say(f"Tile38 lives in {home} (TILE38_HOME)")
        version = ensure_tile38(peer_dir, tile38_env, args.allow_busy)
        workload = {name: getattr(args, name) for name in WORKLOAD}
        flags = workload_argv(workload)

        first = cpu_times()
        time.sleep(2)
        busy_before_ours = cpu_busy_share(first, cpu_times())
        load_before_ours = os.getloadavg()
        ours_began = cpu_times()
        ours = last_json(
            run(
                [sys.executable, "bench/geofence.py", *flags, *shlex.split(args.ours_args)],
                "[ours]",
            ),
            "bench/geofence.py",
        )
        stolen_in_ours = stolen_share(ours_began, cpu_times())
        busy_before_tile38, settled_s = settle_between(args.settle)
        load_before_tile38 = os.getloadavg()
        tile38_began = cpu_times()
        tile38 = last_json(
            run(
                [
                    sys.executable,
                    str(peer_dir / "bench_tile38.py"),
                    *flags,
                    *shlex.split(args.tile38_args),
                ],
                "[tile38]",
                tile38_env,
            ),
            "bench_tile38.py",
        )
        stolen_in_tile38 = stolen_share(tile38_began, cpu_times())
    except Failed as failure:
        say(str(failure))
        return 1
    result = {
        "ours": ours,
        "tile38": tile38,
        "ratios": ratios(ours, tile38),
        "machine": {
            "cores": os.cpu_count(),
            "load_before_ours": [round(x, 2) for x in load_before_ours],
            "load_before_tile38": [round(x, 2) for x in load_before_tile38],
            "cpu_busy_before_ours": busy_before_ours,
            "cpu_busy_before_tile38": busy_before_tile38,
            "settled_before_tile38_s": settled_s,
            # CPU time the hypervisor gave to others while each bench ran (setup
            # included): a share above a few percent makes the comparison unfair.
            "cpu_stolen_in_ours": stolen_in_ours,
            "cpu_stolen_in_tile38": stolen_in_tile38,
            "python": platform.python_version(),
            "tile38_version": tile38.get("tile38_version") or version,
            "tile38_server": version,
            "workload": workload,
            "ours_args": args.ours_args,
            "tile38_args": args.tile38_args,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
