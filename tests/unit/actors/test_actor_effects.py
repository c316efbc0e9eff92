"""The effect vocabulary: frozen, picklable, and named as API.md names things."""

from __future__ import annotations

import dataclasses
import pickle
import re
from datetime import UTC, datetime
from uuid import UUID

import pytest

from actors.agent import Assigned
from actors.effects import (
    Audience,
    CancelTimer,
    Effect,
    Emit,
    EntityKind,
    EventType,
    FrameType,
    Persist,
    Push,
    Reply,
    ScheduleTimer,
    Send,
    Topic,
)

T = datetime(2025, 3, 1, tzinfo=UTC)
ID = UUID(int=7)

EFFECTS: list[Effect] = [
    Persist(EntityKind.ALERT, ID, 3, {"kind": "alert"}),
    Emit(Topic.PANIC_ALERTS, EventType.ALERT_CREATED, str(ID), str(ID), {"id": str(ID)}, T),
    Push(Audience.user(ID), FrameType.ALERT_UPDATED, {"alert_id": str(ID)}),
    ScheduleTimer("offer:x", "offer_expired", T, {"agent_id": "x"}),
    CancelTimer("offer:x"),
    Reply(("anything",)),
    Send(EntityKind.AGENT, ID, Assigned(ID)),
]


def test_event_and_frame_types_are_dotted() -> None:
    for value in [*EventType, *FrameType]:
        assert re.fullmatch(r"[a-z]+\.[a-z_]+", value.value)
    assert EventType.ALERT_STATUS_CHANGED == "alert.status_changed"
    assert FrameType.OFFER_REVOKED == "offer.revoked"


@pytest.mark.parametrize("effect", EFFECTS, ids=lambda e: type(e).__name__)
def test_effects_are_frozen_and_picklable(effect: Effect) -> None:
    field = dataclasses.fields(effect)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(effect, field, None)
    assert pickle.loads(pickle.dumps(effect)) == effect  # noqa: S301 - our own bytes


def test_audience_and_frame_shapes() -> None:
    assert Audience.user(ID).as_tuple() == ("user", str(ID))
    assert Audience.agent(ID).as_tuple() == ("agent", str(ID))
    assert Audience.user(ID) != Audience.agent(ID)
    push = Push(Audience.agent(ID), FrameType.OFFER_REVOKED, {"alert_id": "a"})
    assert push.frame() == {"type": "offer.revoked", "data": {"alert_id": "a"}}
