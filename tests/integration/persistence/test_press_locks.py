"""The panic button's lock per user in the real Redis (``RedisPressMutex``)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import redis.asyncio as aioredis

from gateway.alert_press import PressLocks
from persistence.stores.press_locks import RedisPressMutex, press_key


async def test_a_held_lock_is_refused_until_its_own_token_releases_it(
    redis_client: aioredis.Redis,
) -> None:
    mutex, user = RedisPressMutex(redis_client), uuid4()
    token = await mutex.acquire(user, 10)
    assert token is not None
    assert await mutex.acquire(user, 10) is None
    await mutex.release(user, "not-the-token")  # e.g. a press that waited past the TTL
    assert await mutex.acquire(user, 10) is None
    await mutex.release(user, token)
    again = await mutex.acquire(user, 10)
    assert again is not None
    assert again != token
    await mutex.release(user, again)
    assert await redis_client.exists(press_key(user)) == 0


async def test_a_lock_whose_holder_died_frees_itself(redis_client: aioredis.Redis) -> None:
    mutex, user = RedisPressMutex(redis_client), uuid4()
    assert await mutex.acquire(user, 0.2) is not None
    await asyncio.sleep(0.4)
    token = await mutex.acquire(user, 10)
    assert token is not None
    await mutex.release(user, token)


async def test_two_processes_presses_of_one_user_are_taken_one_at_a_time(
    redis_client: aioredis.Redis,
) -> None:
    # Two gateway processes: each its own PressLocks, the one Redis between them.
    mutex, user = RedisPressMutex(redis_client), uuid4()
    processes = [PressLocks(), PressLocks()]
    inside = 0
    overlaps: list[int] = []

    async def press(locks: PressLocks) -> None:
        nonlocal inside
        async with locks.held(user, mutex):
            inside += 1
            overlaps.append(inside)
            await asyncio.sleep(0.02)  # reading the open alerts, creating one
            inside -= 1

    await asyncio.gather(*(press(processes[n % 2]) for n in range(6)))
    assert overlaps == [1] * 6
    assert await redis_client.exists(press_key(user)) == 0
