"""Readiness of the Ray cluster a process joined, as a ``gateway.readiness.Backend``."""

from __future__ import annotations

from cluster.runtime import ray_ping


class RayBackend:
    """Readiness of the Ray cluster this process joined (``init_ray`` is the CLI's job)."""

    name = "ray"

    def __init__(self, *, ping_timeout_s: float = 2.0) -> None:
        self._ping_timeout_s = ping_timeout_s

    async def open(self) -> None:
        await ray_ping(timeout_s=self._ping_timeout_s)

    async def check(self) -> None:
        await ray_ping(timeout_s=self._ping_timeout_s)

    async def close(self) -> None:
        return None
