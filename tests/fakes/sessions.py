"""An in-memory ``gateway.ports.Sessions`` for tests that must not touch Redis."""

from __future__ import annotations

from uuid import UUID


class FakeSessions:
    """Active sessions as ``(role, account_id, session_id)`` triples in ``active``."""

    def __init__(self) -> None:
        self.active: set[tuple[str, UUID, str]] = set()

    async def open_session(self, role: str, account_id: UUID, session_id: str, ttl_s: int) -> None:
        self.active.add((role, account_id, session_id))

    async def close_session(self, role: str, account_id: UUID, session_id: str) -> None:
        self.active.discard((role, account_id, session_id))

    async def is_active(self, role: str, account_id: UUID, session_id: str) -> bool:
        return (role, account_id, session_id) in self.active

    async def close_all_sessions(self, role: str, account_id: UUID) -> int:
        ended = {s for s in self.active if s[0] == role and s[1] == account_id}
        self.active -= ended
        return len(ended)
