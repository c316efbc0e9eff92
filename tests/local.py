"""Loopback resources for tests and benchmarks: free ports, a local Ray, and
the ``panic-alert`` command run as a subprocess.

Everything stays on 127.0.0.1 (see the note in tests/conftest.py on Ray's
node address).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import ray

LOOPBACK = "127.0.0.1"
PANIC_ALERT = str(Path(sys.executable).parent / "panic-alert")


def free_port() -> int:
    """A loopback TCP port nothing listens on (at the moment of the call)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def init_local_ray(namespace: str, *, num_cpus: int = 2) -> None:
    """A single-node Ray in this process, without dashboard, on loopback.

    Shard actors run at normal priority, as ``panic-alert serve`` runs them.
    """
    ray.init(
        address="local",  # a Ray of its own, not the newest one on the machine
        num_cpus=num_cpus,
        include_dashboard=False,
        namespace=namespace,
        log_to_driver=False,
        _node_ip_address=LOOPBACK,
        _system_config={"worker_niceness": 0},
    )


#: This test session's rate-limit key prefix for the servers it starts.
CLI_RATE_PREFIX = f"test-cli-{uuid.uuid4().hex[:12]}:"


def cli_env(**overrides: str) -> dict[str, str]:
    """This environment without PANIC_* and RAY_ADDRESS, test profile, then ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANIC_")}
    env.pop("RAY_ADDRESS", None)
    env["PANIC_PROFILE"] = "test"
    # The notifier consumes the shared alert topics: only tests that mean it run one.
    env["PANIC_NOTIFY__ENABLED"] = "false"
    # Rate limits counted apart from a dev server's on the same Redis: the
    # OpenAPI test's registrations had left `scripts/run` refusing new users.
    env["PANIC_RATE_LIMIT__KEY_PREFIX"] = CLI_RATE_PREFIX
    env.update(overrides)
    return env


def wait_for(
    url: str,
    until: Callable[[httpx.Response], bool],
    *,
    deadline_s: float,
    proc: subprocess.Popen[bytes],
) -> httpx.Response | None:
    """GET ``url`` until ``until`` holds; None if the deadline passes or the process dies."""
    deadline = time.monotonic() + deadline_s
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"serve exited early with {proc.returncode}"
        try:
            last = httpx.get(url, timeout=3)
            if until(last):
                return last
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    return None


@contextmanager
def serve_process(env: dict[str, str], log: Path, *, ready_s: float = 120) -> Iterator[str]:
    """``panic-alert serve`` as a subprocess with ``env``, its output in ``log``:
    its base URL once ``/readyz`` answers 200; SIGTERM (then SIGKILL) at the end."""
    port = env["PANIC_HTTP__PORT"]
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [PANIC_ALERT, "serve"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            ready = wait_for(
                f"{base}/readyz", lambda r: r.status_code == 200, deadline_s=ready_s, proc=proc
            )
            assert ready is not None, log.read_text()[-3000:]
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
