"""Several gateway processes on one port: the decisions, with no I/O.

``serve`` runs ``http.gateways`` gateway processes (0: one per CPU core) that
all listen on the same host and port with ``SO_REUSEPORT``, so the kernel
spreads new connections over them; one uvicorn process uses at most one core.
The process the user started (the *parent*, gateway 1) does everything
``serve`` did alone: Ray (embedded or joined), the shard actors, the relay,
the notifier, the media worker. It then starts the others (*children*) as the
same ``panic-alert`` command with the hidden option ``serve --replica-of-port
P``: a child joins the parent's Ray by its GCS address in the parent's
namespace (so it finds the same named shard actors), starts nothing of its
own but a gateway, and listens on the parent's port. With ``--no-ray`` the
children run without Ray too, and only the parent runs the in-process relay.

This module decides: how many gateways (:func:`gateway_count`), a child's
command line and environment (:func:`child_command`, :func:`child_env`) and
whether a child that exited is started again (:func:`restart_verdict`), and
whether a gateway takes one more bulk-feed socket or sends one of its own away
(:func:`refuses_bulk_socket`, :func:`moves_bulk_socket`).
The processes themselves are in ``panic_alert.gateway_procs``; the bulk
sockets each one holds, in ``panic_alert.bulk_tally``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

#: prometheus_client's multiprocess directory (read when it is imported).
METRICS_DIR_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
#: Ray's own variable naming a cluster; a child joins by ``PANIC_RAY__ADDRESS``.
RAY_ADDRESS_ENV: Final = "RAY_ADDRESS"
#: The directory where every gateway process keeps its count of bulk-feed
#: sockets (``panic_alert.bulk_tally``); a child has it from the parent.
TALLY_DIR_ENV: Final = "PANIC_BULK_TALLY_DIR"

MAX_GATEWAYS: Final = 64


def gateway_count(configured: int, flag: int | None, cpu_count: int | None) -> int:
    """The gateway processes to run: ``flag`` (``serve --gateways``) when given,
    else ``configured`` (``http.gateways``); 0 means one per CPU core
    (``cpu_count``, ``os.cpu_count()``, which may not know: then one).
    Raises ``ValueError`` outside 0..64."""
    wanted = configured if flag is None else flag
    if not 0 <= wanted <= MAX_GATEWAYS:
        raise ValueError(f"gateways must be 0 to {MAX_GATEWAYS} (0: one per CPU core)")
    if wanted == 0:
        return max(1, min(cpu_count or 1, MAX_GATEWAYS))
    return wanted


@dataclass(frozen=True, slots=True)
class ChildPlan:
    """What every child gateway of one ``serve`` shares."""

    #: How to run ``panic-alert`` (e.g. ``[sys.executable, <the panic-alert script>]``).
    command: tuple[str, ...]
    host: str
    #: The port the parent listens on (its real one when it was given 0).
    port: int
    count: int
    with_ray: bool
    log_level: str | None = None
    #: The parent's Ray (``RayInfo.address`` and ``.namespace``), when ``with_ray``.
    ray_address: str | None = None
    ray_namespace: str | None = None
    #: The parent's shard count, so a child never counts the cluster's CPUs
    #: again (a node joining meanwhile would give it another number).
    shards: int | None = None
    #: prometheus_client's multiprocess directory, when the metrics are summed.
    metrics_dir: str | None = None
    #: Where the gateways keep their bulk-socket counts (``panic_alert.bulk_tally``).
    tally_dir: str | None = None


def child_command(plan: ChildPlan, index: int) -> list[str]:
    """The command line of gateway ``index`` (2..count): ``serve`` on the parent's
    port, never a relay of its own (``--no-relay``: with ``--no-ray`` it would run
    one in-process), without Ray when the parent runs without."""
    if not 2 <= index <= plan.count:
        raise ValueError(f"a child gateway is number 2 to {plan.count}, not {index}")
    argv = [*plan.command]
    if plan.log_level:
        argv += ["--log-level", plan.log_level]
    argv += [
        "serve",
        "--host",
        plan.host,
        "--replica-of-port",
        str(plan.port),
        "--replica-index",
        str(index),
        "--gateways",
        str(plan.count),
        "--no-relay",
    ]
    if not plan.with_ray:
        argv.append("--no-ray")
    return argv


def child_env(plan: ChildPlan, environ: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment with the parent's Ray (address, namespace, shard
    count), metrics directory and tally directory; ``RAY_ADDRESS`` is dropped, as
    ``PANIC_RAY__ADDRESS`` names the cluster to join."""
    env = {
        key: value for key, value in environ.items() if key not in (METRICS_DIR_ENV, TALLY_DIR_ENV)
    }
    if plan.with_ray:
        if not plan.ray_address:
            raise ValueError("a child gateway with Ray needs the parent's Ray address")
        env.pop(RAY_ADDRESS_ENV, None)
        env["PANIC_RAY__ADDRESS"] = plan.ray_address
        if plan.ray_namespace:
            env["PANIC_RAY__NAMESPACE"] = plan.ray_namespace
        if plan.shards:
            env["PANIC_RAY__SHARDS"] = str(plan.shards)
    if plan.metrics_dir:
        env[METRICS_DIR_ENV] = plan.metrics_dir
    if plan.tally_dir:
        env[TALLY_DIR_ENV] = plan.tally_dir
    return env


def refuses_bulk_socket(mine: int, others: Iterable[int]) -> bool:
    """Whether a gateway process holding ``mine`` bulk-feed sockets refuses one
    more, when the other gateway processes that serve hold ``others``: it does
    when another holds fewer. The client then connects again (a 1013 close,
    as for any set-up the gateway sheds), and the kernel hands the new
    connection to any of the gateways by a hash of its addresses, so a few
    attempts even the sockets out. Never when it is the only one.

    ``SO_REUSEPORT`` spreads the phone sockets well (thousands of them); the
    bulk feed has a few sockets, each carrying thousands of fixes a second,
    and the hash alone put all four of the bench's on one gateway in one run
    of eight (the other then idle). Two gateways cannot both refuse: each
    would need fewer sockets than the other.
    """
    return any(other < mine for other in others)


def moves_bulk_socket(mine: int, others: Iterable[int]) -> bool:
    """Whether a gateway process holding ``mine`` bulk-feed sockets sends one of
    them to another (closing it as :func:`refuses_bulk_socket` refuses one): it
    does when another holds two or more fewer, so that moving one narrows the
    gap instead of turning it around. Sockets already open are where the kernel
    put them while a gateway was away: all on the first while the others start,
    or on the others while a restarted one was down."""
    return any(other + 1 < mine for other in others)


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """When a child gateway that exited is started again."""

    #: Wait after an exit before starting it again.
    backoff_s: float = 1.0
    #: Starts again within ``window_s``; past that the child is left stopped.
    max_restarts: int = 5
    window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class Restart:
    """Start the child again at ``at`` (monotonic seconds)."""

    at: float


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Leave the child stopped: it was started again too often lately."""

    restarts: int


def restart_verdict(
    policy: RestartPolicy, restarted_at: Sequence[float], exited_at: float
) -> Restart | GiveUp:
    """The verdict on a child that exited at ``exited_at`` (monotonic), having been
    started again at ``restarted_at`` before: restart ``backoff_s`` later unless it
    was restarted ``max_restarts`` times within the last ``window_s``."""
    recent = [t for t in restarted_at if exited_at - t < policy.window_s]
    if len(recent) >= policy.max_restarts:
        return GiveUp(len(recent))
    return Restart(exited_at + policy.backoff_s)
