"""Loopback resources for tests and benchmarks: free ports and a local Ray.

Everything stays on 127.0.0.1 (see the note in tests/conftest.py on Ray's
node address).
"""

from __future__ import annotations

import socket

import ray

LOOPBACK = "127.0.0.1"


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
        num_cpus=num_cpus,
        include_dashboard=False,
        namespace=namespace,
        log_to_driver=False,
        _node_ip_address=LOOPBACK,
        _system_config={"worker_niceness": 0},
    )
