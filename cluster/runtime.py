"""Ray bootstrap: start an embedded Ray or join a cluster, probe it, shut it down.

Every Ray API call of the process lives in ``cluster/``; this module holds the
process-level ones (``ray.init``, ``ray.shutdown``, cluster state reads).

Modes:

* **embedded** — ``RaySettings.address`` empty and no ``RAY_ADDRESS`` in the
  environment: a single-node Ray is started inside this process, with its
  dashboard on ``dashboard_host:dashboard_port`` (default 127.0.0.1:8265).
* **joined** — an address is given (``ray.address``/``PANIC_RAY__ADDRESS``,
  or Ray's own ``RAY_ADDRESS``): ``auto`` or ``host:port`` attaches this
  process as a driver of that cluster, ``ray://host:10001`` uses Ray Client.
  The dashboard is the cluster's; nothing is started locally.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

import ray

from cluster.errors import ClusterConfigurationError, ClusterUnavailable
from config.settings import RaySettings

log = logging.getLogger(__name__)

#: Environment variable Ray itself reads to find a cluster to join.
RAY_ADDRESS_ENV = "RAY_ADDRESS"

#: A dashboard path that answers without Ray's auth token once the dashboard
#: is serving and can reach the GCS.
DASHBOARD_HEALTH_PATH = "/api/gcs_healthz"


class RayMode(StrEnum):
    EMBEDDED = "embedded"
    JOINED = "joined"


@dataclass(frozen=True, slots=True)
class RayInfo:
    """What ``init_ray`` connected to."""

    mode: RayMode
    #: GCS address of the cluster (``host:port``), or the Ray Client URL.
    address: str
    namespace: str
    node_id: str | None
    #: ``http://host:port`` of the dashboard, when there is one.
    dashboard_url: str | None
    #: Whether the dashboard answered its health path before ``init_ray`` returned.
    dashboard_ready: bool


#: What the last successful ``init_ray`` of this process connected to.
_info: RayInfo | None = None


def resolve_address(settings: RaySettings, environ: Mapping[str, str] | None = None) -> str | None:
    """The cluster address to join, or None to start an embedded Ray.

    ``settings.address`` wins over ``RAY_ADDRESS``; blank values count as unset.
    """
    env = os.environ if environ is None else environ
    address = settings.address.strip() or env.get(RAY_ADDRESS_ENV, "").strip()
    return address or None


def init_ray(settings: RaySettings, *, dashboard_wait_s: float | None = None) -> RayInfo:
    """Start or join Ray for this process; idempotent.

    Blocking (a cold embedded start takes several seconds). In embedded mode it
    also waits up to ``dashboard_wait_s`` (default ``settings.dashboard_wait_s``)
    for the dashboard to answer and logs a warning if it does not: the
    dashboard is for operators, dispatch does not need it.

    Raises ``ClusterUnavailable`` when Ray cannot be started or the cluster
    to join cannot be reached, ``ClusterConfigurationError`` when Ray refuses
    the settings.
    """
    global _info
    if ray.is_initialized():
        if _info is None:
            _info = _describe(None, RayMode.JOINED, settings.namespace, dashboard_ready=False)
        log.info("ray already initialised in this process; reusing it")
        return _info
    address = resolve_address(settings)
    mode = RayMode.EMBEDDED if address is None else RayMode.JOINED
    kwargs: dict[str, Any] = {
        "namespace": settings.namespace,
        # Our JSON handler on the root logger formats Ray's driver-side logs.
        "configure_logging": False,
        # Worker output stays in Ray's session logs (and the dashboard) instead
        # of being interleaved, unstructured, with our JSON lines.
        "log_to_driver": settings.log_to_driver,
    }
    if mode is RayMode.EMBEDDED:
        # Ray lowers its workers' priority (nice 15) by default; here the
        # workers are the shard actors, the heart of the system, and must not
        # queue behind everything else on the machine.
        kwargs["_system_config"] = {"worker_niceness": 0}
        kwargs.update(
            # "local": a Ray of its own. Without an address ray.init joins the
            # newest cluster started on this machine (/tmp/ray/ray_current_cluster),
            # another project's or another test's, and refuses _system_config.
            address="local",
            include_dashboard=True,
            dashboard_host=settings.dashboard_host,
            dashboard_port=settings.dashboard_port,
            num_cpus=settings.num_cpus,
            _node_ip_address=settings.node_ip_address,
        )
    else:
        kwargs["address"] = address
    started = time.perf_counter()
    try:
        context = ray.init(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ClusterConfigurationError(f"ray refused the settings: {exc}") from exc
    except (ConnectionError, TimeoutError, OSError, RuntimeError) as exc:
        where = "start an embedded ray" if address is None else f"join ray at {address}"
        raise ClusterUnavailable(f"cannot {where}: {exc}") from exc
    info = _describe(context, mode, settings.namespace, dashboard_ready=False)
    wait_s = settings.dashboard_wait_s if dashboard_wait_s is None else dashboard_wait_s
    if mode is RayMode.EMBEDDED and info.dashboard_url is not None:
        ready = wait_for_dashboard(info.dashboard_url, timeout_s=wait_s)
        if not ready:
            log.warning(
                "ray dashboard did not answer at %s within %.0fs",
                info.dashboard_url,
                wait_s,
            )
        info = replace(info, dashboard_ready=ready)
    _info = info
    log.info(
        "ray %s in %.1fs: address=%s namespace=%s dashboard=%s",
        mode.value,
        time.perf_counter() - started,
        info.address,
        info.namespace,
        info.dashboard_url,
    )
    return info


def _describe(context: Any, mode: RayMode, namespace: str, *, dashboard_ready: bool) -> RayInfo:
    address = ""
    node_id: str | None = None
    dashboard: str | None = None
    # Ray Client contexts lack some of these; they are informative only.
    try:
        runtime = ray.get_runtime_context()
        namespace = str(runtime.namespace)
        node_id = str(runtime.get_node_id())
        address = str(runtime.gcs_address)
    except Exception:
        log.debug("ray runtime context incomplete", exc_info=True)
    if context is not None:
        dashboard = getattr(context, "dashboard_url", None) or None
    if dashboard and not str(dashboard).startswith(("http://", "https://")):
        dashboard = f"http://{dashboard}"
    return RayInfo(
        mode=mode,
        address=address,
        namespace=namespace,
        node_id=node_id,
        dashboard_url=str(dashboard) if dashboard else None,
        dashboard_ready=dashboard_ready,
    )


def wait_for_dashboard(url: str, *, timeout_s: float, interval_s: float = 0.25) -> bool:
    """Poll ``url`` + ``/api/gcs_healthz`` until it answers 200 or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        if dashboard_answers(url):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def dashboard_answers(url: str, *, timeout_s: float = 2.0) -> bool:
    """True when the dashboard at ``url`` serves its health path with 200."""
    if not url.startswith(("http://", "https://")):
        return False
    try:
        with urllib.request.urlopen(  # noqa: S310 - scheme checked above
            url.rstrip("/") + DASHBOARD_HEALTH_PATH, timeout=timeout_s
        ) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def shutdown_ray() -> None:
    """Disconnect this process from Ray; in embedded mode this stops the local Ray.

    Safe to call when Ray was never initialised, and more than once.
    """
    global _info
    _info = None
    if not ray.is_initialized():
        return
    started = time.perf_counter()
    ray.shutdown()
    log.info("ray shut down in %.1fs", time.perf_counter() - started)


# Only one probe thread at a time: a wedged GCS call must not pile up threads
# every time a load balancer polls /readyz.
_probe_lock = threading.Lock()


def _probe() -> None:
    try:
        if not ray.is_initialized():
            raise ClusterUnavailable("ray is not initialised in this process")
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    finally:
        _probe_lock.release()
    if not resources.get("CPU"):
        raise ClusterUnavailable("ray cluster reports no CPU (no live node)")


async def ray_ping(*, timeout_s: float = 2.0) -> None:
    """Check that Ray answers and has at least one live node with CPU.

    Raises ``ClusterUnavailable`` otherwise (including on timeout). Read-only
    and safe to call concurrently.
    """
    if not ray.is_initialized():
        raise ClusterUnavailable("ray is not initialised in this process")
    if not _probe_lock.acquire(blocking=False):
        raise ClusterUnavailable("a previous ray probe has not returned yet")
    try:
        await asyncio.wait_for(asyncio.to_thread(_probe), timeout_s)
    except ClusterUnavailable:
        raise
    except TimeoutError as exc:
        raise ClusterUnavailable(f"ray did not answer within {timeout_s}s") from exc
    except Exception as exc:  # any Ray/gRPC failure means "not ready"
        raise ClusterUnavailable(f"ray probe failed: {exc}") from exc


def start_singleton(actor_class: type, name: str, namespace: str, *args: Any) -> Any:
    """Create the cluster's one named, detached actor of ``actor_class``, or find it.

    Any number of gateway replicas may call this: ``get_if_exists`` makes one
    actor, and Ray restarts it (``max_restarts=-1``) wherever it can run.
    """
    return (
        ray.remote(actor_class)
        .options(
            name=name,
            namespace=namespace,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=-1,
            num_cpus=0,
        )
        .remote(*args)
    )
