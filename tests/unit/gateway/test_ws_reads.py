"""gateway.ws.reads: sockets' reads made together, against fake ports (pure logic)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID, uuid4

import pytest

from gateway.ws.reads import CoalescedOpenAlerts, CoalescedSessionCheck, CoalescedVetting


class FakeOpenAlerts:
    """Each agent's "alerts" are its id; a statement waits until released."""

    def __init__(self) -> None:
        self.statements: list[list[UUID]] = []
        self.users: list[UUID] = []
        self.release = asyncio.Event()
        self.fail: Exception | None = None

    async def for_agent(self, agent_id: UUID) -> Sequence[Mapping[str, Any]]:
        raise AssertionError("read one at a time")

    async def for_agents(self, agent_ids: Sequence[UUID]) -> list[list[Mapping[str, Any]]]:
        self.statements.append(list(agent_ids))
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return [[{"id": str(agent_id)}] for agent_id in agent_ids]

    async def for_user(self, user_id: UUID) -> Sequence[Mapping[str, Any]]:
        self.users.append(user_id)
        return [{"user": str(user_id)}]


class FakeVetting:
    def __init__(self, vettings: dict[UUID, str]) -> None:
        self.vettings = vettings
        self.statements: list[list[UUID]] = []

    async def vettings_of(self, agent_ids: Sequence[UUID]) -> list[str | None]:
        self.statements.append(list(agent_ids))
        await asyncio.sleep(0.01)
        return [self.vettings.get(agent_id) for agent_id in agent_ids]


async def test_a_read_with_nothing_in_flight_goes_at_once() -> None:
    fake = FakeOpenAlerts()
    fake.release.set()
    reads = CoalescedOpenAlerts(lambda: fake)  # type: ignore[arg-type, return-value]
    agent = uuid4()
    assert await reads.for_agent(agent) == [{"id": str(agent)}]
    assert fake.statements == [[agent]]


async def test_reads_asked_meanwhile_go_together_and_each_gets_its_own() -> None:
    fake = FakeOpenAlerts()
    reads = CoalescedOpenAlerts(lambda: fake, max_batch=3)  # type: ignore[arg-type, return-value]
    agents = [uuid4() for _ in range(6)]
    tasks = [asyncio.create_task(reads.for_agent(agent)) for agent in agents]
    await asyncio.sleep(0.01)
    fake.release.set()
    answers = await asyncio.gather(*tasks)

    assert [list(answer) for answer in answers] == [[{"id": str(a)}] for a in agents]
    # Asked in one turn of the loop: statements of at most three.
    assert fake.statements == [agents[:3], agents[3:]]


async def test_reads_asked_while_one_is_in_flight_wait_for_it_then_go_together() -> None:
    fake = FakeOpenAlerts()
    reads = CoalescedOpenAlerts(lambda: fake)  # type: ignore[arg-type, return-value]
    first = asyncio.create_task(reads.for_agent(uuid4()))
    await asyncio.sleep(0.01)
    later = [uuid4() for _ in range(3)]
    tasks = [asyncio.create_task(reads.for_agent(agent)) for agent in later]
    await asyncio.sleep(0.01)
    assert len(fake.statements) == 1  # the others wait for the first

    fake.release.set()
    await asyncio.gather(first, *tasks)
    assert fake.statements[1:] == [later]


async def test_a_failed_statement_fails_the_reads_that_went_with_it_only() -> None:
    fake = FakeOpenAlerts()
    reads = CoalescedOpenAlerts(lambda: fake)  # type: ignore[arg-type, return-value]
    fake.fail = ConnectionError("postgres went away")
    failing = [asyncio.create_task(reads.for_agent(uuid4())) for _ in range(3)]
    await asyncio.sleep(0.01)
    fake.release.set()
    for task in failing:
        with pytest.raises(ConnectionError):
            await task

    fake.fail = None
    agent = uuid4()
    assert await reads.for_agent(agent) == [{"id": str(agent)}]


async def test_users_are_read_one_at_a_time() -> None:
    fake = FakeOpenAlerts()
    reads = CoalescedOpenAlerts(lambda: fake)  # type: ignore[arg-type, return-value]
    user = uuid4()
    assert await reads.for_user(user) == [{"user": str(user)}]
    assert fake.users == [user]
    assert fake.statements == []


async def test_vettings_asked_together_are_answered_each_with_its_own() -> None:
    approved, pending, unknown = uuid4(), uuid4(), uuid4()
    fake = FakeVetting({approved: "approved", pending: "pending"})
    reads = CoalescedVetting(lambda: fake)  # type: ignore[arg-type, return-value]
    answers = await asyncio.gather(
        *(reads.vetting_of(agent) for agent in (approved, pending, unknown, approved))
    )
    assert answers == ["approved", "pending", None, "approved"]
    assert fake.statements == [[approved, pending, unknown, approved]]


class FakeSessions:
    def __init__(self, active: set[tuple[str, UUID, str]]) -> None:
        self.active = active
        self.round_trips: list[list[tuple[str, UUID, str]]] = []

    async def are_active(self, sessions: Sequence[tuple[str, UUID, str]]) -> list[bool]:
        self.round_trips.append(list(sessions))
        return [session in self.active for session in sessions]


async def test_session_checks_asked_together_go_in_one_round_trip() -> None:
    agent, user = uuid4(), uuid4()
    fake = FakeSessions({("agent", agent, "s1"), ("user", user, "s2")})
    checks = CoalescedSessionCheck(lambda: fake)  # type: ignore[arg-type, return-value]
    asked = [("agent", agent, "s1"), ("agent", agent, "s2"), ("user", user, "s2")]
    answers = await asyncio.gather(*(checks.is_active(*key) for key in asked))
    assert answers == [True, False, True]
    assert fake.round_trips == [asked]
