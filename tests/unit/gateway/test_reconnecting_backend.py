"""ReconnectingBackend: lazy (re)connection that a probe's timeout cannot cancel."""

from __future__ import annotations

import asyncio

import pytest

from gateway.readiness import BackendSet, CheckStatus
from persistence.drivers.reconnecting import ReconnectingBackend


class ScriptedBackend(ReconnectingBackend):
    """Connects after ``connect_delay_s``; fails while ``reachable`` is False."""

    name = "scripted"

    def __init__(self, *, connect_delay_s: float = 0.0, reachable: bool = True) -> None:
        super().__init__()
        self.connect_delay_s = connect_delay_s
        self.reachable = reachable
        self.connects_started = 0
        self.connects_finished = 0
        self.disconnects = 0

    async def _connect(self) -> None:
        self.connects_started += 1
        await asyncio.sleep(self.connect_delay_s)
        if not self.reachable:
            raise ConnectionRefusedError("scripted service is down")
        self.connects_finished += 1

    async def _ping(self) -> None:
        if not self.reachable:
            raise ConnectionResetError("scripted service went away")

    async def _disconnect(self) -> None:
        self.disconnects += 1


async def test_a_timed_out_check_does_not_cancel_the_connection_attempt() -> None:
    backend = ScriptedBackend(connect_delay_s=0.3)
    backends = BackendSet([backend])
    (first,) = await backends.check_all(timeout_s=0.05)
    assert first.status is CheckStatus.TIMEOUT
    # The attempt went on in the background; the next probe reuses it.
    await asyncio.sleep(0.4)
    (second,) = await backends.check_all(timeout_s=0.05)
    assert second.ok
    assert backend.connects_started == 1
    assert backend.connects_finished == 1
    await backends.close_all()
    assert backend.disconnects == 1


async def test_a_failed_connect_is_retried_by_the_next_check() -> None:
    backend = ScriptedBackend(reachable=False)
    with pytest.raises(ConnectionRefusedError):
        await backend.open()
    assert not backend.connected
    with pytest.raises(ConnectionRefusedError):
        await backend.check()
    backend.reachable = True
    await backend.check()
    assert backend.connected
    assert backend.connects_started == 3


async def test_a_lost_connection_fails_the_check_but_keeps_the_client() -> None:
    backend = ScriptedBackend()
    await backend.open()
    backend.reachable = False
    with pytest.raises(ConnectionResetError):
        await backend.check()
    backend.reachable = True
    await backend.check()
    # Drivers reconnect their own pools; no second connect was needed.
    assert backend.connects_started == 1


async def test_close_cancels_a_pending_attempt_and_is_idempotent() -> None:
    backend = ScriptedBackend(connect_delay_s=10)
    backends = BackendSet([backend])
    (result,) = await backends.open_all(timeout_s=0.05)
    assert result.status is CheckStatus.TIMEOUT
    await backend.close()
    await backend.close()
    assert backend.connects_finished == 0
    assert backend.disconnects == 0
    assert not backend.connected
