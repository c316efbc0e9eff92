"""The one error root of the actors package.

A state machine raises one of these instead of returning effects, and the
state it was given is then untouched: a raised decision has no effects at all,
so the runtime never persists, emits or pushes anything for it.

Every error carries ``retriable`` (may the same message succeed later,
unchanged?) and a stable ``code`` for WebSocket ``error`` frames. HTTP
statuses are mapped from the class in one place in ``gateway/`` (``Conflict``
→ 409, ``NotPermitted`` → 403, ``EntityNotFound`` → 404, ``InvalidMessage`` →
422; ``UnknownMessage`` and ``InvalidSnapshot`` are bugs → 500).

Errors cross process boundaries (Ray pickles them back to the caller), so each
class with its own constructor defines ``__reduce__`` to unpickle with its
fields intact.
"""

from __future__ import annotations

from typing import Any


def _rebuild(cls: type[ActorError], kwargs: dict[str, Any]) -> ActorError:
    return cls(**kwargs)


class ActorError(Exception):
    """Root of every error raised by ``actors``.

    ``retriable`` is True when the same message may succeed later unchanged;
    every domain rejection below is final (False).
    """

    retriable: bool = False
    code: str = "actor_error"

    def __init__(self, message: str, *, retriable: bool | None = None) -> None:
        super().__init__(message)
        if retriable is not None:
            self.retriable = retriable

    def _kwargs(self) -> dict[str, Any]:
        return {"message": str(self), "retriable": self.retriable}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._kwargs()))


class Conflict(ActorError):
    """The message is well formed but clashes with the entity's current state."""

    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def _kwargs(self) -> dict[str, Any]:
        return {"message": str(self)}


class InvalidTransition(Conflict):
    """A status change the entity's status graph does not allow from here.

    ``str(err)`` reads "cannot move alert from 'resolved' to 'en_route'",
    followed by ``": <reason>"`` when one is given.
    """

    code = "invalid_transition"

    def __init__(
        self, current: str, requested: str, *, entity: str = "alert", reason: str | None = None
    ) -> None:
        self.current = str(current)
        self.requested = str(requested)
        self.entity = entity
        self.reason = reason
        message = f"cannot move {entity} from {self.current!r} to {self.requested!r}"
        super().__init__(message + (f": {reason}" if reason else ""))

    def _kwargs(self) -> dict[str, Any]:
        return {
            "current": self.current,
            "requested": self.requested,
            "entity": self.entity,
            "reason": self.reason,
        }


class NoPendingOffer(Conflict):
    """An agent answered an offer it does not hold (never made, expired, withdrawn)."""

    code = "no_pending_offer"

    def __init__(self, alert_id: str, agent_id: str) -> None:
        self.alert_id = str(alert_id)
        self.agent_id = str(agent_id)
        super().__init__(f"agent {self.agent_id} has no pending offer for alert {self.alert_id}")

    def _kwargs(self) -> dict[str, Any]:
        return {"alert_id": self.alert_id, "agent_id": self.agent_id}


class AlreadyAssigned(Conflict):
    """An agent already holds an active assignment and was given a second one."""

    code = "already_assigned"

    def __init__(self, agent_id: str, current_alert_id: str, requested_alert_id: str) -> None:
        self.agent_id = str(agent_id)
        self.current_alert_id = str(current_alert_id)
        self.requested_alert_id = str(requested_alert_id)
        super().__init__(
            f"agent {self.agent_id} is already assigned to alert {self.current_alert_id}; "
            f"cannot also take alert {self.requested_alert_id}"
        )

    def _kwargs(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "current_alert_id": self.current_alert_id,
            "requested_alert_id": self.requested_alert_id,
        }


class AlreadyExists(Conflict):
    """A create message for an id that exists with different content."""

    code = "already_exists"

    def __init__(self, entity: str, entity_id: str) -> None:
        self.entity = entity
        self.entity_id = str(entity_id)
        super().__init__(f"{entity} {self.entity_id} already exists with different content")

    def _kwargs(self) -> dict[str, Any]:
        return {"entity": self.entity, "entity_id": self.entity_id}


class CheckInRunning(Conflict):
    """A user with a running check-in asked to start another (one at a time)."""

    code = "check_in_running"

    def __init__(self, check_in_id: str) -> None:
        self.check_in_id = str(check_in_id)
        super().__init__(f"check-in {self.check_in_id} is already running")

    def _kwargs(self) -> dict[str, Any]:
        return {"check_in_id": self.check_in_id}


class NotPermitted(ActorError):
    """The actor behind the message may not do this (e.g. an agent who is not the assignee)."""

    code = "not_permitted"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def _kwargs(self) -> dict[str, Any]:
        return {"message": str(self)}


class ChatRefused(NotPermitted):
    """A chat message (``alert.message``) from someone who may not write to the
    alert now: neither its user nor its assigned agent, or the alert is over, or
    an agent while nobody is assigned. Its own code, as the chat's contract names it."""

    code = "forbidden"


class EntityNotFound(ActorError):
    """A message for an entity that does not exist (an alert never created)."""

    code = "not_found"

    def __init__(self, entity: str, entity_id: str | None = None) -> None:
        self.entity = entity
        self.entity_id = None if entity_id is None else str(entity_id)
        where = f" {self.entity_id}" if self.entity_id is not None else ""
        super().__init__(f"{entity}{where} not found")

    def _kwargs(self) -> dict[str, Any]:
        return {"entity": self.entity, "entity_id": self.entity_id}


class InvalidMessage(ActorError):
    """A message whose content is out of range (bad coordinates, negative k, ...)."""

    code = "invalid_message"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def _kwargs(self) -> dict[str, Any]:
        return {"message": str(self)}


class UnknownMessage(ActorError):
    """A message type the entity's ``decide`` does not handle: a wiring bug."""

    code = "unknown_message"

    def __init__(self, entity: str, message_type: str) -> None:
        self.entity = entity
        self.message_type = message_type
        super().__init__(f"{entity} does not handle message {message_type!r}")

    def _kwargs(self) -> dict[str, Any]:
        return {"entity": self.entity, "message_type": self.message_type}


class InvalidSnapshot(ActorError):
    """A stored snapshot that cannot be decoded (wrong kind, unknown schema, missing field)."""

    code = "invalid_snapshot"

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def _kwargs(self) -> dict[str, Any]:
        return {"message": str(self)}
