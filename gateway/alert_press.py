"""What a press of the panic button does: one open alert per user, never a refusal
while one is open. The decisions are pure; :class:`PressLocks` serializes one
user's presses within a process.

``POST /alerts`` while the user already has an open alert answers with that
alert (201, as a create does, with ``Alert-Already-Open: true``) instead of
raising a second one: a person pressing again and again in a panic, or an app
retrying, gets the alert that is already on its way, and a script cannot raise
a flood of them. The create rate limit (``rate_limit.alerts_create_per_principal``)
is consulted only when no alert is open, so it can never refuse a person whose
alert is open; with none open, each create had to be preceded by a close, and
the user's own closes are limited more tightly (``alerts_status_per_principal``).

"Open" is as the user is shown it (``AlertState.as_user_sees``): an alert
cancelled under duress is shown as cancelled, so it does not count, and the
next press raises a new alert exactly as after a real cancel; returning the
duress alert would tell whoever holds the phone that the cancel was not real.

Presses of one user that arrive together (a double tap, an app retrying at
once) are taken one at a time, so the second finds the alert the first raised:
within a process by :class:`PressLocks`, and across the gateway processes of
one ``serve`` and across replicas (a second connection opened at once may be
accepted by another process) by a lock per user in Redis
(``gateway.ports.PressMutex``), taken after the process's own. That lock
never stops a press: one that finds it held waits at most
``SHARED_WAIT_S`` for it (a create takes milliseconds) and goes on, and one
that cannot reach Redis goes on with the process's lock alone (logged);
either may then, rarely, raise a second alert, which is dispatched too.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from actors.alert_state import AlertState
from actors.errors import InvalidSnapshot
from actors.store_errors import PersistenceError
from gateway.ports import PressMutex

log = logging.getLogger(__name__)

#: Response header of a press answered with the user's open alert.
ALREADY_OPEN_HEADER = "Alert-Already-Open"


class Press(enum.Enum):
    #: Answer with the open alert; nothing is created and nothing is counted.
    SHOW_OPEN = "show_open"
    #: Ask the alert's entity to create it (a retry of an existing one's
    #: ``Idempotency-Key`` is answered ``Replayed`` there, or 409 on another body).
    CREATE = "create"
    #: 429: no alert is open and the user created too many in the window.
    REFUSE = "refuse"


def needs_limit(*, has_open: bool) -> bool:
    """Whether the create rate limit is asked (and counts the press): only when no
    alert is open."""
    return not has_open


def press_verdict(*, has_open: bool, retry_of_open: bool, within_limit: bool | None) -> Press:
    """The verdict on a press. ``retry_of_open``: the press carries the open alert's
    own ``Idempotency-Key``. ``within_limit`` is the create rate limit's answer,
    None when it was not asked (see :func:`needs_limit`) or could not be. An open
    alert wins over the limit: a person in danger is never refused while their
    alert is open."""
    if retry_of_open:
        return Press.CREATE
    if has_open:
        return Press.SHOW_OPEN
    if within_limit is False:
        return Press.REFUSE
    return Press.CREATE


def open_alert(user_alerts: Iterable[AlertState]) -> AlertState | None:
    """The user's newest alert that is open as the user is shown it, or None."""
    shown = [a for a in user_alerts if not a.as_user_sees().is_terminal]
    return max(shown, key=lambda a: (a.created_at, str(a.id)), default=None)


def decode_snapshots(snapshots: Iterable[Mapping[str, Any]]) -> list[AlertState]:
    """The alerts of entity snapshots; an unreadable one is skipped (and logged),
    so it cannot stop a press."""
    alerts = []
    for snapshot in snapshots:
        try:
            alerts.append(AlertState.from_snapshot(snapshot))
        except (InvalidSnapshot, ValueError):
            log.warning("press: skipping unreadable alert snapshot %s", snapshot.get("id"))
    return alerts


#: A press waits at most this long for another process's press of the same user.
SHARED_WAIT_S = 2.0
#: The shared lock frees itself this long after it was taken (its holder died).
SHARED_TTL_S = 10.0
#: How often a waiting press asks for the shared lock again.
SHARED_POLL_S = 0.01


class PressLocks:
    """One lock per user with a press in progress in this process, then the
    user's lock shared by every process when one is given; a user's entry
    lives only while a press of theirs holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[UUID, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def held(self, user_id: UUID, shared: PressMutex | None = None) -> AsyncIterator[None]:
        lock, users = self._locks.get(user_id, (asyncio.Lock(), 0))
        self._locks[user_id] = (lock, users + 1)
        try:
            async with lock:
                token = None if shared is None else await _take(shared, user_id)
                try:
                    yield
                finally:
                    if shared is not None and token is not None:
                        await _give_back(shared, user_id, token)
        finally:
            lock, users = self._locks[user_id]
            if users == 1:
                del self._locks[user_id]
            else:
                self._locks[user_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


async def _take(shared: PressMutex, user_id: UUID) -> str | None:
    """The shared lock's token; None when it was not had in time or Redis failed."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SHARED_WAIT_S
    try:
        while True:
            token = await shared.acquire(user_id, SHARED_TTL_S)
            if token is not None:
                return token
            if loop.time() >= deadline:
                log.warning("press: another press of %s held its lock too long; going on", user_id)
                return None
            await asyncio.sleep(SHARED_POLL_S)
    except PersistenceError as exc:
        log.warning("press: no shared lock for %s (%s); this process's lock only", user_id, exc)
        return None


async def _give_back(shared: PressMutex, user_id: UUID, token: str) -> None:
    try:
        await shared.release(user_id, token)
    except PersistenceError as exc:  # it expires by itself
        log.warning("press: cannot release the lock of %s (%s)", user_id, exc)
