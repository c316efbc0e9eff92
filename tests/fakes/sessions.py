"""An in-memory ``gateway.ports.Sessions`` for tests that must not touch Redis."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID


class FakeSessions:
    """Active sessions as ``(role, account_id, session_id)`` triples in ``active``.

    Closing a session publishes ``"revoked"`` on its revocation channel through
    ``publish`` (e.g. ``tests.fakes.pubsub.FakeBroker.publish``), if given.
    """

    def __init__(self, publish: Callable[[str, str], object] | None = None) -> None:
        self.active: set[tuple[str, UUID, str]] = set()
        self._publish = publish

    def revocation_channel(self, session_id: str) -> str:
        return f"ws:session:{session_id}"

    async def open_session(self, role: str, account_id: UUID, session_id: str, ttl_s: int) -> None:
        self.active.add((role, account_id, session_id))

    async def close_session(self, role: str, account_id: UUID, session_id: str) -> None:
        self.active.discard((role, account_id, session_id))
        if self._publish is not None:
            self._publish(self.revocation_channel(session_id), "revoked")

    async def close_all_sessions(self, role: str, account_id: UUID) -> int:
        ended = sorted(s for r, a, s in self.active if (r, a) == (role, account_id))
        for session_id in ended:
            await self.close_session(role, account_id, session_id)
        return len(ended)

    async def is_active(self, role: str, account_id: UUID, session_id: str) -> bool:
        return (role, account_id, session_id) in self.active
