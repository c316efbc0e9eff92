"""Several gateway processes on one port: the sockets, the child processes and
their supervision (the decisions are in ``panic_alert.gateways``).

Every gateway process listens on its own socket bound with ``SO_REUSEPORT`` to
the same address; the kernel hands each new connection to one of them. The
parent starts the children (:class:`ChildGateways`), restarts one that exits
while the parent is not stopping, and stops them all before it stops Ray. A
child also dies with its parent: ``PR_SET_PDEATHSIG`` (Linux) sends it SIGTERM
when the thread that started it ends, so it stops gracefully even when the
parent was killed. Children stay in the parent's process group, so a Ctrl-C
on the terminal reaches all of them at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from panic_alert.bulk_tally import forget
from panic_alert.gateways import (
    METRICS_DIR_ENV,
    ChildPlan,
    GiveUp,
    RestartPolicy,
    child_command,
    child_env,
    restart_verdict,
)

log = logging.getLogger(__name__)

#: prctl(2) option: the signal a process gets when its parent (thread) ends.
PR_SET_PDEATHSIG = 1


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to the first address ``host`` resolves to, with
    ``SO_REUSEADDR`` and ``SO_REUSEPORT``, so the other gateway processes of this
    user can bind the same address. ``OSError`` when it cannot be bound.

    Bound, not yet listening: uvicorn hands it to asyncio's ``create_server``,
    which calls ``listen(config.backlog)`` (``http.listen_backlog``) once the
    app has started. Only listening sockets take part in the kernel's spreading
    of connections, so a gateway still starting (or starting again) gets none,
    instead of holding them in its accept queue until its start-up is over.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def use_multiprocess_metrics(path: str) -> bool:
    """Put this process's prometheus_client in multiprocess mode on ``path``
    (``gateway.metrics``), before the gateway's metrics are made.

    prometheus_client picks its value class when it is imported, from
    ``PROMETHEUS_MULTIPROC_DIR``. A child gateway has the variable from its
    start; the parent sets it only after Ray started, so that Ray's own
    processes (which import prometheus_client too) do not inherit it, and by
    then ``ray.init`` has imported prometheus_client in this process (through
    OpenTelemetry's Prometheus exporter) without creating any metric value.
    Then the value class is chosen again: every metric made from now on (the
    gateway's) writes to ``path``; none made before is exported by the gateway.
    Returns whether prometheus_client had been imported already.
    """
    os.environ[METRICS_DIR_ENV] = path
    if "prometheus_client" not in sys.modules:
        return False
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return True


class GatewayServer(uvicorn.Server):
    """uvicorn's server, calling ``on_started`` once it serves (after the app's
    start-up) and ``on_stopping`` as it starts to stop (before it stops listening)."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        on_stopping: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_stopping = on_stopping

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._on_stopping is not None:
            self._on_stopping()
        await super().shutdown(sockets=sockets)


_libc: Any = None


def _die_with_parent() -> None:
    """In the child between fork and exec: SIGTERM when the parent ends. Only an
    already-loaded C call here (another thread may hold any lock at the fork)."""
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class _Child:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    #: When it was started again (monotonic), for the restart cap.
    restarted_at: list[float] = field(default_factory=list)
    #: When to start it again (monotonic); None: not waiting to.
    restart_at: float | None = None


class ChildGateways:
    """Gateways 2..count of ``plan``: started by :meth:`start`, watched by a daemon
    thread every ``poll_s``, stopped by :meth:`stop`.

    A child that exits while ``stopping()`` is false is logged (warning, with
    its exit code) and started again after ``policy.backoff_s``, at most
    ``policy.max_restarts`` times per ``policy.window_s`` (then an error is
    logged and it is left stopped; the other gateways go on serving). Once
    ``stopping()`` is true (the parent's server was asked to stop), every child
    is sent SIGTERM at once, so they drain in parallel with the parent.
    Each child that exited is marked dead in the metrics directory
    (``prometheus_client.multiprocess.mark_process_dead``: its in-flight
    gauges no longer count), and its bulk-socket count is removed
    (``panic_alert.bulk_tally.forget``).
    """

    def __init__(
        self,
        plan: ChildPlan,
        *,
        stopping: Callable[[], bool],
        stop_timeout_s: float,
        environ: Mapping[str, str] | None = None,
        policy: RestartPolicy = RestartPolicy(),  # noqa: B008 - frozen
        poll_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._plan = plan
        self._env = child_env(plan, os.environ if environ is None else environ)
        self._stopping = stopping
        self._stop_timeout_s = stop_timeout_s
        self._policy = policy
        self._poll_s = poll_s
        self._clock = clock
        self._children = [_Child(index) for index in range(2, plan.count + 1)]
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._terminated_at: float | None = None
        self._thread = threading.Thread(target=self._watch, name="gateway-children", daemon=True)

    @property
    def pids(self) -> list[int]:
        """The live children's process ids."""
        with self._lock:
            return [c.proc.pid for c in self._children if c.proc and c.proc.poll() is None]

    def start(self) -> None:
        """Start every child (without waiting for it to serve) and the watching thread."""
        global _libc
        if sys.platform.startswith("linux") and _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        with self._lock:
            for child in self._children:
                self._spawn(child)
        self._thread.start()

    def stop(self) -> None:
        """SIGTERM to every child (if not sent yet), wait for them up to
        ``stop_timeout_s`` from that signal, SIGKILL the rest. Idempotent."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self._terminate()
            assert self._terminated_at is not None
            deadline = self._terminated_at + self._stop_timeout_s
            for child in self._children:
                proc = child.proc
                if proc is None:
                    continue
                try:
                    proc.wait(timeout=max(0.0, deadline - self._clock()))
                except subprocess.TimeoutExpired:
                    log.warning(
                        "gateway %d/%d (pid %d) still running %.0fs after SIGTERM; killing it",
                        child.index,
                        self._plan.count,
                        proc.pid,
                        self._stop_timeout_s,
                    )
                    proc.kill()
                    proc.wait()
                self._exited(child, proc)

    # ---------------------------------------------------------------- internals

    def _spawn(self, child: _Child) -> None:
        argv = child_command(self._plan, child.index)
        try:
            child.proc = subprocess.Popen(  # noqa: S603 - our own command line
                argv,
                env=self._env,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,  # only prctl runs there (see it)
            )
        except OSError as exc:
            log.error("gateway %d/%d did not start: %s", child.index, self._plan.count, exc)
            child.proc = None
            self._schedule(child, self._clock())
            return
        log.info("gateway %d/%d started as pid %d", child.index, self._plan.count, child.proc.pid)

    def _watch(self) -> None:
        while not self._done.wait(self._poll_s):
            try:
                with self._lock:
                    self._check()
            except Exception:  # supervising loop: log and carry on
                log.exception("gateway supervision failed; carrying on")

    def _check(self) -> None:
        if self._stopping():
            self._terminate()
            return
        now = self._clock()
        for child in self._children:
            proc = child.proc
            if proc is not None:
                code = proc.poll()
                if code is None:
                    continue
                log.warning(
                    "gateway %d/%d (pid %d) exited with %s",
                    child.index,
                    self._plan.count,
                    proc.pid,
                    _exit_text(code),
                )
                self._exited(child, proc)
                self._schedule(child, now)
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarted_at.append(now)
                self._spawn(child)

    def _schedule(self, child: _Child, now: float) -> None:
        verdict = restart_verdict(self._policy, child.restarted_at, now)
        if isinstance(verdict, GiveUp):
            log.error(
                "gateway %d/%d restarted %d times within %.0fs; leaving it stopped",
                child.index,
                self._plan.count,
                verdict.restarts,
                self._policy.window_s,
            )
            return
        child.restart_at = verdict.at
        log.info(
            "gateway %d/%d starts again in %.1fs",
            child.index,
            self._plan.count,
            verdict.at - now,
        )

    def _terminate(self) -> None:
        if self._terminated_at is not None:
            return
        self._terminated_at = self._clock()
        for child in self._children:
            child.restart_at = None
            if child.proc is not None and child.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)

    def _exited(self, child: _Child, proc: subprocess.Popen[bytes]) -> None:
        child.proc = None
        if self._plan.tally_dir:
            forget(self._plan.tally_dir, proc.pid)
        if self._plan.metrics_dir:
            from prometheus_client.multiprocess import mark_process_dead

            with contextlib.suppress(OSError):
                mark_process_dead(proc.pid, self._plan.metrics_dir)  # type: ignore[no-untyped-call]


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return f"exit code {code}"
