"""Check-ins: a user's timed safety check, as domain values and messages. Pure.

"I am walking home; if I have not checked in by T, raise an alert for me."
A check-in lives in the user's subject entity (``actors.subject``), so the
safe-zone entry decided there can end it in the same transition as the
``geofence.enter`` event. This module holds what the subject machine and the
gateway share: the :class:`CheckIn` value, its snapshot form, the messages,
the timer, and the alert a missed check-in raises.

Lifecycle: ``running`` → ``completed`` (the user checked in), ``arrived`` (the
user entered a ``safe`` zone whose rules say ``end_check_in``) or ``missed``
(its timer fired while it still ran). A user has at most one running
check-in; the last :data:`MAX_ENDED` ended ones are remembered, so a late
complete of one of them is a conflict (409), not an unknown id (404).

A missed check-in raises a ``panic`` alert through a durable ``Send`` of
``CreateAlert`` with the id :func:`missed_alert_id` (uuid5 of the check-in
id): a redelivered send reaches the same alert, whose create is idempotent,
so one missed check-in never makes two alerts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias
from uuid import UUID, uuid5

from actors import codec
from actors.alert_messages import CreateAlert
from actors.alert_state import AlertType
from actors.errors import InvalidMessage, InvalidSnapshot

#: Longest note a check-in carries (it goes into the alert's description).
MAX_NOTE: Final = 500
#: Ended check-ins a subject remembers (newest last).
MAX_ENDED: Final = 20
#: Name of the timer that fires at a check-in's ``due_at``; payload ``{"check_in_id": str}``.
CHECK_IN_DUE_TIMER: Final = "check_in_due"
#: Fixed namespace of the alert ids of missed check-ins; changing it would let a
#: redelivered send after an upgrade raise a second alert.
MISSED_ALERT_NAMESPACE: Final = UUID("9d3c1f4e-2b7a-4c55-8e0d-6a1f7b2c9e40")


class CheckInStatus(enum.StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    ARRIVED = "arrived"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class CheckIn:
    """One check-in: when it started and is due, where it started, how it ended.

    ``ended_at`` is None exactly while it runs. ``zone_id`` is the safe zone
    of an ``arrived`` one, ``alert_id`` the alert a ``missed`` one raised.
    """

    id: UUID
    started_at: datetime
    due_at: datetime
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    note: str | None = None
    status: CheckInStatus = CheckInStatus.RUNNING
    ended_at: datetime | None = None
    zone_id: UUID | None = None
    alert_id: UUID | None = None

    @property
    def running(self) -> bool:
        return self.status is CheckInStatus.RUNNING

    def view(self, user_id: UUID) -> dict[str, Any]:
        """JSON-safe, as ``user-events`` carries it."""
        return {
            "id": str(self.id),
            "user_id": str(user_id),
            "status": self.status.value,
            "started_at": codec.iso(self.started_at),
            "due_at": codec.iso(self.due_at),
            "ended_at": codec.iso_or_none(self.ended_at),
            "note": self.note,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "zone_id": codec.str_or_none(self.zone_id),
            "alert_id": codec.str_or_none(self.alert_id),
        }

    def to_snapshot(self) -> dict[str, Any]:
        """JSON-safe; ``CheckIn.from_snapshot(c.to_snapshot()) == c``."""
        return {
            "id": str(self.id),
            "started_at": codec.iso(self.started_at),
            "due_at": codec.iso(self.due_at),
            "latitude": self.latitude,
            "longitude": self.longitude,
            "accuracy_m": self.accuracy_m,
            "note": self.note,
            "status": self.status.value,
            "ended_at": codec.iso_or_none(self.ended_at),
            "zone_id": codec.str_or_none(self.zone_id),
            "alert_id": codec.str_or_none(self.alert_id),
        }

    @classmethod
    def from_snapshot(cls, data: Any) -> CheckIn:
        if not isinstance(data, Mapping):
            raise InvalidSnapshot(f"a check-in must be an object, got {type(data).__name__}")
        f = codec.field
        return cls(
            id=f(data, "id", codec.parse_uuid),
            started_at=f(data, "started_at", codec.parse_dt),
            due_at=f(data, "due_at", codec.parse_dt),
            latitude=f(data, "latitude", codec.parse_float),
            longitude=f(data, "longitude", codec.parse_float),
            accuracy_m=f(data, "accuracy_m", codec.parse_float_or_none),
            note=f(data, "note", codec.parse_str_or_none),
            status=f(data, "status", CheckInStatus),
            ended_at=f(data, "ended_at", codec.parse_dt_or_none),
            zone_id=f(data, "zone_id", codec.parse_uuid_or_none),
            alert_id=f(data, "alert_id", codec.parse_uuid_or_none),
        )


def check_in_or_none(data: Any) -> CheckIn | None:
    return None if data is None else CheckIn.from_snapshot(data)


def ended_check_ins(data: Any) -> tuple[CheckIn, ...]:
    if not isinstance(data, list):
        raise TypeError(f"expected a list, got {type(data).__name__}")
    return tuple(CheckIn.from_snapshot(item) for item in data)


# --- messages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartCheckIn:
    """``POST /checkins``: start a check-in due at ``due_at``, from where the user is.

    The gateway picks the id and checks the bounds of ``due_at``; the entity
    takes its own clock for ``started_at``. Repeating it while that check-in
    runs is a no-op (the same reply).
    """

    check_in_id: UUID
    due_at: datetime
    latitude: float
    longitude: float
    accuracy_m: float | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CompleteCheckIn:
    """``POST /checkins/{id}/complete``: the user checked in in time."""

    check_in_id: UUID


@dataclass(frozen=True, slots=True)
class CheckInDue:
    """Timer message: check-in ``check_in_id`` is due; missed if it still runs."""

    check_in_id: UUID


@dataclass(frozen=True, slots=True)
class CurrentCheckIn:
    """Read-only query: the running check-in, or None."""


CheckInMessage: TypeAlias = StartCheckIn | CompleteCheckIn | CheckInDue | CurrentCheckIn


def check_in_timer_id(check_in_id: UUID) -> str:
    """The subject-local id of a check-in's due timer (one per check-in)."""
    return f"check_in:{check_in_id}"


def due_message(payload: Mapping[str, Any]) -> CheckInDue:
    """The message of a due :data:`CHECK_IN_DUE_TIMER` timer."""
    try:
        return CheckInDue(check_in_id=UUID(str(payload["check_in_id"])))
    except (KeyError, ValueError) as exc:
        raise InvalidMessage(f"bad check-in timer payload: {exc}") from exc


# --- the alert of a missed check-in ---------------------------------------------------


def missed_alert_id(check_in_id: UUID) -> UUID:
    """The id of the alert a missed check-in raises: the same for every redelivery."""
    return uuid5(MISSED_ALERT_NAMESPACE, str(check_in_id))


@dataclass(frozen=True, slots=True)
class LastSeen:
    """Where a user was seen: a location fix, or where a check-in started."""

    latitude: float
    longitude: float
    accuracy_m: float | None


def missed_alert(check_in: CheckIn, user_id: UUID, seen: LastSeen) -> CreateAlert:
    """The ``CreateAlert`` of a missed check-in, raised where the user was last seen.

    Built from the check-in and ``seen`` only (no clock), so it is the same
    message however often it is delivered.
    """
    due = check_in.due_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    description = f"Check-in missed: the user did not check in by {due}."
    if check_in.note:
        description += f" Their note: {check_in.note}"
    return CreateAlert(
        alert_id=missed_alert_id(check_in.id),
        user_id=user_id,
        alert_type=AlertType.PANIC,
        latitude=seen.latitude,
        longitude=seen.longitude,
        accuracy_m=seen.accuracy_m,
        description=description,
    )


__all__ = [
    "CHECK_IN_DUE_TIMER",
    "MAX_ENDED",
    "MAX_NOTE",
    "CheckIn",
    "CheckInDue",
    "CheckInMessage",
    "CheckInStatus",
    "CompleteCheckIn",
    "CurrentCheckIn",
    "LastSeen",
    "StartCheckIn",
    "check_in_timer_id",
    "missed_alert",
    "missed_alert_id",
]
