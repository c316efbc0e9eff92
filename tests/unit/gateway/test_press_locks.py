"""PressLocks when the shared lock is held too long or Redis fails: the press goes on.

The mutexes here are fakes (pure logic of the waiting); the real Redis lock is
tested in tests/integration/persistence/test_press_locks.py.
"""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from actors.store_errors import ServiceUnavailable
from gateway import alert_press
from gateway.alert_press import PressLocks


class FakeHeldMutex:
    """Always held by someone else."""

    def __init__(self) -> None:
        self.asked = 0

    async def acquire(self, user_id: UUID, ttl_s: float) -> str | None:
        self.asked += 1
        return None

    async def release(self, user_id: UUID, token: str) -> None:
        raise AssertionError("never taken, never released")


class FakeDownMutex:
    """Redis unreachable."""

    async def acquire(self, user_id: UUID, ttl_s: float) -> str | None:
        raise ServiceUnavailable("redis", "connection refused")

    async def release(self, user_id: UUID, token: str) -> None:
        raise AssertionError("never taken, never released")


async def test_a_press_goes_on_after_waiting_out_a_lock_held_too_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(alert_press, "SHARED_WAIT_S", 0.05)
    mutex, pressed = FakeHeldMutex(), False
    async with PressLocks().held(uuid4(), mutex):
        pressed = True
    assert pressed
    assert mutex.asked > 1


async def test_a_press_goes_on_with_the_process_lock_alone_when_redis_is_down() -> None:
    locks, pressed = PressLocks(), False
    async with locks.held(uuid4(), FakeDownMutex()):
        pressed = True
        assert len(locks) == 1
    assert pressed
    assert len(locks) == 0
