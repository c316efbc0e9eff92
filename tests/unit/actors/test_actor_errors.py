"""The actors error root: retriable flags, codes, and surviving a trip through pickle."""

from __future__ import annotations

import pickle

import pytest

from actors import errors
from actors.errors import (
    ActorError,
    AlreadyAssigned,
    AlreadyExists,
    ChatRefused,
    CheckInRunning,
    Conflict,
    EntityNotFound,
    InvalidMessage,
    InvalidSnapshot,
    InvalidTransition,
    NoPendingOffer,
    NotPermitted,
    UnknownMessage,
)

EXAMPLES: list[ActorError] = [
    ActorError("shard moving", retriable=True),
    Conflict("clash"),
    InvalidTransition("resolved", "en_route"),
    InvalidTransition("busy", "available", entity="agent", reason="assigned to alert 1"),
    NoPendingOffer("alert-1", "agent-2"),
    AlreadyAssigned("agent-1", "alert-1", "alert-2"),
    AlreadyExists("alert", "alert-1"),
    CheckInRunning("check-in-1"),
    NotPermitted("only the assigned agent may"),
    ChatRefused("only the alert's user or its assigned agent may write"),
    EntityNotFound("alert", "alert-1"),
    EntityNotFound("alert"),
    InvalidMessage("bad latitude"),
    UnknownMessage("alert", "Ping"),
    InvalidSnapshot("schema 7"),
]


@pytest.mark.parametrize("err", EXAMPLES, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling(err: ActorError) -> None:
    # Ray pickles an actor's exception back to the caller.
    back = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.retriable == err.retriable
    assert vars(back) == vars(err)


def test_every_error_is_rooted_and_final_by_default() -> None:
    classes = [
        obj for obj in vars(errors).values() if isinstance(obj, type) and issubclass(obj, Exception)
    ]
    assert set(classes) == {type(e) for e in EXAMPLES}
    for cls in classes:
        assert issubclass(cls, ActorError)
        assert cls.retriable is False
    codes = [cls.code for cls in classes]
    assert len(codes) == len(set(codes))


def test_conflicts_are_grouped_for_a_409() -> None:
    for cls in (InvalidTransition, NoPendingOffer, AlreadyAssigned, AlreadyExists):
        assert issubclass(cls, Conflict)
    for cls in (NotPermitted, EntityNotFound, InvalidMessage, UnknownMessage):
        assert not issubclass(cls, Conflict)


def test_messages_name_what_went_wrong() -> None:
    assert str(InvalidTransition("resolved", "en_route")) == (
        "cannot move alert from 'resolved' to 'en_route'"
    )
    agent_err = InvalidTransition("busy", "offline", entity="agent", reason="assigned")
    assert str(agent_err) == "cannot move agent from 'busy' to 'offline': assigned"
    assert "alert-2" in str(AlreadyAssigned("agent-1", "alert-1", "alert-2"))
    assert str(EntityNotFound("alert")) == "alert not found"
    assert ActorError("x", retriable=True).retriable is True
