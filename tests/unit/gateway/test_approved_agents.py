"""The process's memory of approved agents (``gateway.vetting.ApprovedAgents``)."""

from __future__ import annotations

from uuid import uuid4

from gateway.ports import Vetting
from gateway.vetting import ApprovedAgents


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_only_approved_is_remembered_and_only_for_its_ttl() -> None:
    clock = FakeClock()
    cache = ApprovedAgents(ttl_s=60.0, clock=clock)
    approved, pending, suspended, unknown = uuid4(), uuid4(), uuid4(), uuid4()
    cache.remember(approved, Vetting.APPROVED)
    cache.remember(pending, Vetting.PENDING)
    cache.remember(suspended, Vetting.SUSPENDED)
    cache.remember(unknown, None)
    assert cache.approved(approved) is True
    # A pending agent is read again every time: approval takes effect at once.
    assert cache.approved(pending) is False
    assert cache.approved(suspended) is False
    assert cache.approved(unknown) is False
    clock.now += 60.0
    assert cache.approved(approved) is False  # read again after the ttl


def test_a_later_read_that_is_not_approved_forgets_the_agent() -> None:
    cache = ApprovedAgents(clock=FakeClock())
    agent = uuid4()
    cache.remember(agent, Vetting.APPROVED)
    cache.remember(agent, Vetting.SUSPENDED)
    assert cache.approved(agent) is False


def test_the_memory_is_bounded() -> None:
    cache = ApprovedAgents(max_size=2, clock=FakeClock())
    first, second, third = uuid4(), uuid4(), uuid4()
    cache.remember(first, Vetting.APPROVED)
    cache.remember(second, Vetting.APPROVED)
    cache.remember(third, Vetting.APPROVED)
    assert cache.approved(third) is True
    assert cache.approved(first) is False
