"""Shared helpers for the actor unit tests: a hand-driven clock, fixed ids, builders.

Imported as a plain module (pytest puts this folder on ``sys.path``); no
fixtures, so every test reads top to bottom.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from actors import alert
from actors.alert import (
    AcceptOffer,
    ActorRole,
    AlertState,
    AlertStatus,
    AlertType,
    CreateAlert,
    Escalate,
    OfferMade,
    UpdateStatus,
)
from actors.effects import (
    Answer,
    CancelTimer,
    Defer,
    Effect,
    Emit,
    EntityKind,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
    Send,
)
from actors.search import Search
from actors.subject import Responding

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

USER = UUID(int=0x1001)
OTHER_USER = UUID(int=0x1002)
AGENT_A = UUID(int=0xA001)
AGENT_B = UUID(int=0xA002)
AGENT_C = UUID(int=0xA003)
ADMIN = UUID(int=0xAD01)
ALERT_ID = UUID(int=0xE001)

# Kreuzberg, Berlin.
LAT, LON = 52.4986, 13.4030

E = TypeVar("E")


class Clock:
    """A clock the test moves by hand; never reads the wall clock."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now = self.now + timedelta(seconds=seconds)
        return self.now


def told_user(active: bool) -> Send:
    """The alert telling its user's subject that an agent started/stopped responding."""
    return Send(EntityKind.SUBJECT, f"user:{USER}", Responding(ALERT_ID, active))


def of_type(effects: Iterable[Effect], cls: type[E]) -> list[E]:
    return [e for e in effects if isinstance(e, cls)]


def agent_pushes(effects: Iterable[Effect]) -> list[Push]:
    """The pushes to agents' sockets (not the admins' notices)."""
    return [p for p in of_type(effects, Push) if p.audience.kind.value == "agent"]


def admin_pushes(effects: Iterable[Effect], frame_type: str | None = None) -> list[Push]:
    """The pushes to every admin's socket, of ``frame_type`` when given."""
    return [
        p
        for p in of_type(effects, Push)
        if p.audience.kind.value == "admins" and frame_type in (None, p.frame_type.value)
    ]


def pushes_to(effects: Iterable[Effect], kind: str, entity_id: UUID) -> list[Push]:
    return [p for p in of_type(effects, Push) if p.audience.as_tuple() == (kind, str(entity_id))]


_RANK: dict[type[Any], int] = {
    Persist: 0,
    Emit: 1,
    CancelTimer: 2,
    ScheduleTimer: 2,
    Send: 3,
    Search: 4,
    Push: 5,
    Answer: 6,
    Reply: 7,
    Defer: 7,
}


def assert_effect_order(effects: tuple[Effect, ...]) -> None:
    """Effects come in the order ``actors.effects`` promises the runtime."""
    ranks = [_RANK[type(e)] for e in effects]
    assert ranks == sorted(ranks), [type(e).__name__ for e in effects]
    assert sum(isinstance(e, Persist) for e in effects) <= 1
    assert sum(isinstance(e, Reply | Defer) for e in effects) == 1
    assert isinstance(effects[-1], Reply | Defer)


def create(clock: Clock, *, silent: bool = False) -> AlertState:
    msg = CreateAlert(
        alert_id=ALERT_ID,
        user_id=USER,
        alert_type=AlertType.PANIC,
        latitude=LAT,
        longitude=LON,
        accuracy_m=12.5,
        description="Someone is following me",
        silent=silent,
    )
    state, _ = alert.decide(None, msg, clock.now)
    return state


def step(state: AlertState, msg: alert.AlertMessage, clock: Clock) -> AlertState:
    clock.advance(1)
    new, _ = alert.decide(state, msg, clock.now)
    return new


def alert_in(
    status: AlertStatus, *, silent: bool = False, clock: Clock | None = None
) -> AlertState:
    """An alert that reached ``status`` the normal way, with AGENT_A as responder."""
    clock = clock or Clock()
    state = create(clock, silent=silent)
    if status is AlertStatus.DISPATCHING:
        return state
    if status is AlertStatus.ESCALATED:
        return step(state, Escalate(reason="no responder"), clock)
    if status is AlertStatus.CANCELLED:
        return step(state, alert.Cancel(actor_id=USER), clock)
    state = step(state, OfferMade(agent_id=AGENT_A, distance_m=250.0), clock)
    state = step(state, AcceptOffer(agent_id=AGENT_A), clock)
    path = [AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE, AlertStatus.RESOLVED]
    for next_status in path:
        if state.status is status:
            return state
        state = step(state, UpdateStatus(next_status, AGENT_A, ActorRole.AGENT), clock)
    assert state.status is status
    return state
