"""Who is told what about an alert: pure planning of notification requests.

An alert event (``alert.created`` on ``panic-alerts``; ``alert.status_changed``
to ``resolved`` or ``cancelled`` on ``alert-status-updates``) and the user's
emergency contacts become one :class:`NotificationRequest` per contact and
channel (``email``, ``sms``, ``push``), plus one per configured webhook. A
request's id is derived from the event id, the recipient and the channel, so
planning the same event twice (Kafka delivers at least once) yields the same
requests, and delivery dedupes by that id.

Requests travel on the seed's topics (:data:`TOPIC_OF`): email on
``email-notifications``, SMS on ``sms-notifications``, app pushes and
webhooks on ``push-notifications``.

The user's name goes into subjects and texts flattened to one line of plain
text (``config.text.one_line``): the API refuses control characters in it,
but a row written before that, or by hand, must not break a header.

A duress "cancel" is not a cancel (the alert goes on, escalated), so it
tells nobody anything; a silent alert's contacts are told as any other's
(silence protects the user's own device).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID, uuid5

from config.text import one_line


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"
    WEBHOOK = "webhook"


TOPIC_OF: Final = {
    Channel.EMAIL: "email-notifications",
    Channel.SMS: "sms-notifications",
    Channel.PUSH: "push-notifications",
    Channel.WEBHOOK: "push-notifications",
}

#: Fixed namespace of request ids; changing it would re-send what was sent.
REQUEST_NAMESPACE: Final = UUID("0f7c2b9e-3a51-4c8e-8d2f-6b1e9a4d7c30")


class Occasion(enum.StrEnum):
    RAISED = "raised"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Recipient:
    """An emergency contact as planning needs it."""

    id: UUID
    name: str
    phone: str | None
    email: str | None
    notify_via: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NotificationRequest:
    """One message to one recipient on one channel about one alert event.

    ``to`` is an email address, an E.164 phone number, the contact's id (an
    app push) or a webhook URL. ``contact_id`` is None for webhooks.
    """

    id: UUID
    channel: Channel
    occasion: Occasion
    alert_id: UUID
    user_id: UUID
    contact_id: UUID | None
    to: str
    subject: str
    body: str
    data: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "channel": self.channel.value,
            "occasion": self.occasion.value,
            "alert_id": str(self.alert_id),
            "user_id": str(self.user_id),
            "contact_id": None if self.contact_id is None else str(self.contact_id),
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NotificationRequest:
        """Raises ``KeyError``/``ValueError`` on a malformed request."""
        contact = data.get("contact_id")
        return cls(
            id=UUID(str(data["id"])),
            channel=Channel(data["channel"]),
            occasion=Occasion(data["occasion"]),
            alert_id=UUID(str(data["alert_id"])),
            user_id=UUID(str(data["user_id"])),
            contact_id=None if contact is None else UUID(str(contact)),
            to=str(data["to"]),
            subject=str(data["subject"]),
            body=str(data["body"]),
            data=dict(data.get("data") or {}),
        )


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """What planning reads from an alert CloudEvent."""

    event_id: str
    occasion: Occasion
    alert_id: UUID
    user_id: UUID
    alert_type: str | None
    latitude: float | None
    longitude: float | None
    at: datetime


def occasion_of(event_type: str, data: Mapping[str, Any]) -> Occasion | None:
    """The occasion an alert event is, or None when contacts are not told of it."""
    if event_type == "alert.created":
        return Occasion.RAISED
    if event_type == "alert.status_changed":
        status = data.get("status")
        if status == "resolved":
            return Occasion.RESOLVED
        if status == "cancelled":
            return Occasion.CANCELLED
    return None


def plan(
    event: AlertEvent,
    user_name: str,
    contacts: Sequence[Recipient],
    webhooks: Sequence[str] = (),
) -> list[NotificationRequest]:
    """Every request the event makes, contacts first, in a stable order."""
    subject, body = _text(event, user_name)
    data = {
        "alert_id": str(event.alert_id),
        "occasion": event.occasion.value,
        "alert_type": event.alert_type,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "at": event.at.isoformat(),
    }
    requests: list[NotificationRequest] = []

    def add(channel: Channel, contact_id: UUID | None, to: str) -> None:
        recipient = str(contact_id) if contact_id is not None else to
        request_id = uuid5(REQUEST_NAMESPACE, f"{event.event_id}/{recipient}/{channel.value}")
        requests.append(
            NotificationRequest(
                request_id,
                channel,
                event.occasion,
                event.alert_id,
                event.user_id,
                contact_id,
                to,
                subject,
                body,
                data,
            )
        )

    for contact in contacts:
        for via in contact.notify_via:
            if via == Channel.EMAIL and contact.email:
                add(Channel.EMAIL, contact.id, contact.email)
            elif via == Channel.SMS and contact.phone:
                add(Channel.SMS, contact.id, contact.phone)
            elif via == Channel.PUSH:
                add(Channel.PUSH, contact.id, str(contact.id))
    for url in webhooks:
        add(Channel.WEBHOOK, None, url)
    return requests


def _text(event: AlertEvent, user_name: str) -> tuple[str, str]:
    name = one_line(user_name) or "Someone"
    if event.occasion is Occasion.RAISED:
        where = ""
        if event.latitude is not None and event.longitude is not None:
            where = f" near {event.latitude:.5f}, {event.longitude:.5f}"
        kind = f" ({event.alert_type})" if event.alert_type else ""
        return (
            f"Panic Alert: {name} needs help",
            f"{name} raised an alert{kind} at {event.at:%H:%M} UTC{where}. "
            "Responders are being sent. You are listed as an emergency contact.",
        )
    if event.occasion is Occasion.RESOLVED:
        return (f"Panic Alert: {name} is safe", f"{name}'s alert was resolved by the responders.")
    return (f"Panic Alert: {name} cancelled the alert", f"{name} cancelled the alert.")
