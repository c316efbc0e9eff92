"""Fake gateway backends for tests that must not touch real services.

They satisfy ``gateway.readiness.Backend`` and are passed to
``create_app(settings, backends=[...])``. Each records its lifecycle calls so
a test can assert that the app opened and closed it.
"""

from __future__ import annotations

import asyncio


class FakeBackend:
    """A backend whose health is a switch: ``healthy`` True/False, or ``hang`` forever.

    ``fail_open`` makes start-up fail (the app must still come up).
    """

    def __init__(
        self,
        name: str,
        *,
        healthy: bool = True,
        hang: bool = False,
        fail_open: bool = False,
    ) -> None:
        self.name = name
        self.healthy = healthy
        self.hang = hang
        self.fail_open = fail_open
        self.opened = 0
        self.checked = 0
        self.closed = 0

    async def open(self) -> None:
        self.opened += 1
        if self.fail_open:
            raise ConnectionRefusedError(f"{self.name} refused the connection")

    async def check(self) -> None:
        self.checked += 1
        if self.hang:
            await asyncio.Event().wait()
        if not self.healthy:
            raise ConnectionRefusedError(f"{self.name} refused the connection")

    async def close(self) -> None:
        self.closed += 1


def healthy_backends(*names: str) -> list[FakeBackend]:
    """One healthy fake per name (default: the four production services)."""
    return [FakeBackend(n) for n in names or ("postgres", "redis", "mongo", "kafka")]
