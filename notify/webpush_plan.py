"""Who gets which web push about an alert event: pure decisions.

The web push worker (``notify.webpush``) reads ``alert-responses`` and
``alert-status-updates``. Each event names the accounts to tell
(:func:`targets_of`); the alert's flags, read when the event is handled,
then decide the message (:func:`message_for`), and the account's presence
whether it goes out at all (:func:`wanted`): a web push stands in for a
frame the app would have shown, so it goes only to an account with no live
socket (the app is not open).

* ``alert.offered`` → the offered agent, as ``alert.offer``. Offer privacy
  (issue 15): the text says the alert's type and its distance to the
  100 m, never the position, the description or the user's name; the
  agent reads the offer itself in the app.
* ``alert.assigned`` (an admin's assignment) → the agent, as
  ``alert.assigned``; the details are in the app, never in the push.
* ``alert.status_changed`` to ``cancelled`` → also the agent that held the
  alert, as ``alert.updated`` ("Alert cancelled": it may stand down).
* ``alert.status_changed`` → the alert's user, as ``alert.updated``, for
  the statuses of :data:`USER_TEXTS` only. Nothing at all for a silent
  alert (its device must stay quiet) nor for an alert "cancelled" with the
  duress PIN (the app showed a cancelled alert and must go on showing just
  that), and nothing for a change the user made (their own cancel).

The payload is ``{"type", "alert_id", "title", "body"}`` (:meth:`WebPushMessage.payload`);
the service worker shows it with ``tag = alert_id``, so a push repeated
(at-least-once) replaces the notification instead of adding one.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

from geo.coarse import coarse_distance_m


class Audience(enum.StrEnum):
    """Whose devices: the kinds of ``ws:{kind}:{id}`` push channels."""

    USER = "user"
    AGENT = "agent"


class Urgency(enum.StrEnum):
    """RFC 8030 ``Urgency``: an offer wakes the device at once."""

    HIGH = "high"
    NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class Target:
    """What an event asks for: one frame type to one account about one alert."""

    audience: Audience
    account_id: UUID
    alert_id: UUID
    frame: str
    status: str | None = None
    distance_m: float | None = None


@dataclass(frozen=True, slots=True)
class AlertFlags:
    """What the decisions need of the alert, read when the event is handled."""

    alert_type: str
    silent: bool
    duress: bool


@dataclass(frozen=True, slots=True)
class WebPushMessage:
    """One notification to every web device of one account."""

    audience: Audience
    account_id: UUID
    alert_id: UUID
    frame: str
    title: str
    body: str
    urgency: Urgency

    def payload(self) -> bytes:
        """The JSON the service worker reads (``{"type", "alert_id", "title", "body"}``)."""
        data = {
            "type": self.frame,
            "alert_id": str(self.alert_id),
            "title": self.title,
            "body": self.body,
        }
        return json.dumps(data, separators=(",", ":")).encode()


OFFERED: Final = "alert.offered"
ASSIGNED: Final = "alert.assigned"
STATUS_CHANGED: Final = "alert.status_changed"

#: The statuses a user is told of, with the notification's title and body.
USER_TEXTS: Final[Mapping[str, tuple[str, str]]] = {
    "assigned": ("A responder is coming", "A responder accepted your alert."),
    "en_route": ("Your responder is on the way", "Open the app to follow them."),
    "on_scene": ("Your responder has arrived", "Your responder is on scene."),
    "resolved": ("Your alert is resolved", "Your alert was resolved."),
    "cancelled": ("Your alert was cancelled", "Your alert was cancelled."),
}


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except (TypeError, ValueError):
        return None


def target_of(event_type: str, data: Mapping[str, Any]) -> Target | None:
    """The account an alert event may tell, or None (not an event for web push,
    or one without the ids it needs)."""
    alert_id = _uuid(data.get("alert_id"))
    if alert_id is None:
        return None
    if event_type == OFFERED:
        agent = _uuid(data.get("agent_id"))
        if agent is None:
            return None
        distance = data.get("distance_m")
        return Target(
            Audience.AGENT,
            agent,
            alert_id,
            "alert.offer",
            distance_m=float(distance) if isinstance(distance, int | float) else None,
        )
    if event_type == ASSIGNED:
        agent = _uuid(data.get("assigned_agent_id"))
        if agent is None or _uuid(data.get("actor_id")) == agent:
            return None
        return Target(Audience.AGENT, agent, alert_id, "alert.assigned")
    if event_type == STATUS_CHANGED:
        user = _uuid(data.get("user_id"))
        status = data.get("status")
        if user is None or not isinstance(status, str) or status not in USER_TEXTS:
            return None
        if _uuid(data.get("actor_id")) == user:
            return None  # the user's own change: their app showed it
        return Target(Audience.USER, user, alert_id, "alert.updated", status=status)
    return None


def targets_of(event_type: str, data: Mapping[str, Any]) -> tuple[Target, ...]:
    """Every account an alert event may tell: :func:`target_of`'s, and for a
    cancel the agent that held the alert (it may stand down), unless that
    agent cancelled it."""
    found = target_of(event_type, data)
    targets: tuple[Target, ...] = () if found is None else (found,)
    if event_type == STATUS_CHANGED and data.get("status") == "cancelled":
        alert_id = _uuid(data.get("alert_id"))
        agent = _uuid(data.get("assigned_agent_id"))
        if alert_id is not None and agent is not None and _uuid(data.get("actor_id")) != agent:
            targets += (Target(Audience.AGENT, agent, alert_id, "alert.updated", "cancelled"),)
    return targets


def _distance_text(distance_m: float | None) -> str:
    coarse = coarse_distance_m(distance_m)
    if coarse is None:
        return "nearby"
    if coarse < 1000:
        return f"about {coarse:.0f} m away"
    return f"about {coarse / 1000:.1f} km away"


def _label(alert_type: str) -> str:
    return alert_type.replace("_", " ").capitalize() or "An"


def message_for(target: Target, flags: AlertFlags) -> WebPushMessage | None:
    """The notification ``target`` becomes for an alert with ``flags``, or None.

    Invariants: an offer's text holds the alert type and the coarse distance
    only; a user is never pushed anything about a silent or a duress alert.
    """
    if target.audience is Audience.USER:
        if flags.silent or flags.duress or target.status is None:
            return None
        title, body = USER_TEXTS[target.status]
        return WebPushMessage(
            target.audience,
            target.account_id,
            target.alert_id,
            target.frame,
            title,
            body,
            Urgency.HIGH,
        )
    if target.status == "cancelled":
        return WebPushMessage(
            target.audience,
            target.account_id,
            target.alert_id,
            target.frame,
            "Alert cancelled",
            "The alert you were assigned was cancelled. You can stand down.",
            Urgency.HIGH,
        )
    if target.frame == "alert.offer":
        return WebPushMessage(
            target.audience,
            target.account_id,
            target.alert_id,
            target.frame,
            "Incoming alert",
            f"{_label(flags.alert_type)} alert {_distance_text(target.distance_m)}. "
            "Open the app to accept or decline.",
            Urgency.HIGH,
        )
    return WebPushMessage(
        target.audience,
        target.account_id,
        target.alert_id,
        target.frame,
        "Alert assigned to you",
        "An alert was assigned to you. Open the app for the details.",
        Urgency.HIGH,
    )


def wanted(message: WebPushMessage | None, online: bool) -> bool:
    """Whether ``message`` goes out: only to an account whose app is not open."""
    return message is not None and not online
