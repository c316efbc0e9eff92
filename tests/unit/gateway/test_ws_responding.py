"""gateway.ws.responding: one query for many sockets, answers kept for a while."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from uuid import UUID, uuid4

import pytest

from gateway.ws.responding import RespondingAlerts


class FakeAlerts:
    """Answers like PostgresOpenAlerts.responding_for_users; records each query."""

    def __init__(self, table: Mapping[UUID, list[str]]) -> None:
        self.table = table
        self.queries: list[list[UUID]] = []
        self.fail = False

    async def fetch(self, user_ids: Sequence[UUID]) -> dict[UUID, list[str]]:
        self.queries.append(list(user_ids))
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("fake: database away")
        return {u: self.table[u] for u in user_ids if u in self.table}


async def test_many_sockets_asking_at_once_share_one_query() -> None:
    users = [uuid4() for _ in range(50)]
    fake = FakeAlerts({users[0]: ["a1", "a2"]})
    responding = RespondingAlerts(fake.fetch, linger_s=0.01)
    answers = await asyncio.gather(*(responding.of(u) for u in users))
    assert answers[0] == ("a1", "a2")
    assert all(a == () for a in answers[1:])
    assert len(fake.queries) == 1
    assert set(fake.queries[0]) == set(users)


async def test_answers_are_kept_for_the_ttl_then_asked_again() -> None:
    now = [0.0]
    user = uuid4()
    fake = FakeAlerts({user: ["a1"]})
    responding = RespondingAlerts(fake.fetch, ttl_s=5.0, linger_s=0.0, clock=lambda: now[0])
    assert await responding.of(user) == ("a1",)
    now[0] = 4.9
    assert await responding.of(user) == ("a1",)
    assert len(fake.queries) == 1
    fake.table = {user: ["a1", "a9"]}
    now[0] = 5.1
    assert await responding.of(user) == ("a1", "a9")
    assert len(fake.queries) == 2


async def test_a_failed_query_reaches_every_asker_and_is_not_kept() -> None:
    users = [uuid4(), uuid4()]
    fake = FakeAlerts({})
    fake.fail = True
    responding = RespondingAlerts(fake.fetch, linger_s=0.0)
    results = await asyncio.gather(*(responding.of(u) for u in users), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    fake.fail = False
    assert await responding.of(users[0]) == ()
    assert len(fake.queries) == 2


@pytest.mark.parametrize("waiters", [1, 3])
async def test_an_asker_that_leaves_does_not_cancel_the_others(waiters: int) -> None:
    user = uuid4()
    fake = FakeAlerts({user: ["a1"]})
    responding = RespondingAlerts(fake.fetch, linger_s=0.01)
    leaving = asyncio.create_task(responding.of(user))
    staying = [asyncio.create_task(responding.of(user)) for _ in range(waiters)]
    await asyncio.sleep(0)
    leaving.cancel()
    assert [await t for t in staying] == [("a1",)] * waiters


async def test_known_never_waits_and_asks_in_the_background() -> None:
    user = uuid4()
    fake = FakeAlerts({user: ["a1"]})
    responding = RespondingAlerts(fake.fetch, linger_s=0.0)
    assert responding.known(user) == ()  # nothing known yet: asked, not awaited
    assert responding.known(user) == ()
    await asyncio.sleep(0.01)
    assert len(fake.queries) == 1  # one lookup for both calls
    assert responding.known(user) == ("a1",)
    fake.fail = True
    other = uuid4()
    assert responding.known(other) == ()
    await asyncio.sleep(0.01)  # a failed background lookup is dropped quietly
    assert responding.known(other) == ()
