"""A socket's deadline timer (gateway.ws.alarm) on a real event loop."""

from __future__ import annotations

import asyncio

from gateway.ws.alarm import Alarm


async def test_rings_once_at_the_deadline() -> None:
    loop = asyncio.get_running_loop()
    rang: list[float] = []
    alarm = Alarm(lambda: rang.append(loop.time()))
    now = loop.time()
    alarm.arm(now + 0.05, now)
    await asyncio.sleep(0.02)
    assert rang == []
    await asyncio.sleep(0.1)
    assert len(rang) == 1
    assert rang[0] >= now + 0.05


async def test_a_later_deadline_keeps_the_earlier_timer() -> None:
    """One timer per period: arming later does not move it, so it rings at the
    first deadline and the owner arms it again."""
    loop = asyncio.get_running_loop()
    rang: list[float] = []
    alarm = Alarm(lambda: rang.append(loop.time()))
    now = loop.time()
    alarm.arm(now + 0.05, now)
    alarm.arm(now + 1.0, now)
    await asyncio.sleep(0.15)
    assert len(rang) == 1
    assert rang[0] < now + 1.0


async def test_an_earlier_deadline_replaces_the_timer() -> None:
    loop = asyncio.get_running_loop()
    rang: list[str] = []
    alarm = Alarm(lambda: rang.append("rang"))
    now = loop.time()
    alarm.arm(now + 1.0, now)
    alarm.arm(now + 0.03, now)
    await asyncio.sleep(0.1)
    assert rang == ["rang"]


async def test_none_and_cancel_leave_it_silent() -> None:
    loop = asyncio.get_running_loop()
    rang: list[str] = []
    alarm = Alarm(lambda: rang.append("rang"))
    now = loop.time()
    alarm.arm(None, now)
    alarm.arm(now + 0.03, now)
    alarm.cancel()
    await asyncio.sleep(0.1)
    assert rang == []
    # Armed again after a cancel, it rings.
    alarm.arm(loop.time() + 0.01, loop.time())
    await asyncio.sleep(0.05)
    assert rang == ["rang"]
