"""Agents' vettings read together (``PostgresAgentVetting.vettings_of``), on the real PostgreSQL.

The gateway reads the vetting of every agent going on duty; in a reconnect
storm those reads go together (``gateway.ws.reads``), so each must come back
with its own agent's answer, in the order asked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import pytest

from actors.roles import Role
from persistence.stores.accounts import create_account
from persistence.stores.vetting import PostgresAgentVetting, set_vetting

pytestmark = pytest.mark.integration


async def test_vettings_read_together_answer_each_agent_in_the_order_asked(
    pool: asyncpg.Pool,
) -> None:
    async def agent(name: str) -> UUID:
        return await create_account(
            pool,
            email=f"{name}-{uuid4().hex[:8]}@example.org",
            password_hash="x",
            full_name=name,
            role=Role.AGENT,
        )

    pending, approved, suspended = [await agent(n) for n in ("pen", "app", "sus")]
    admin = await create_account(
        pool,
        email=f"adm-{uuid4().hex[:8]}@example.org",
        password_hash="x",
        full_name="adm",
        role=Role.ADMIN,
    )
    at = datetime.now(UTC)
    for agent_id, vetting in ((approved, "approved"), (suspended, "suspended")):
        await set_vetting(
            pool, agent_id, vetting, reason="test", admin_id=admin, at=at, source="tests"
        )
    vetting = PostgresAgentVetting(pool, source="tests")
    nobody = uuid4()

    found = await vetting.vettings_of([suspended, nobody, pending, approved, pending])

    assert found == ["suspended", None, "pending", "approved", "pending"]
    assert await vetting.vetting_of(approved) == "approved"
    assert await vetting.vetting_of(nobody) is None
    assert await vetting.vettings_of([]) == []
