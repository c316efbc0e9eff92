"""What the notification workers need from the world, as Protocols.

``notify`` declares these; ``persistence`` implements the reads and the
delivery record, Kafka adapters the consumers and the publisher, and the
notifier's composition root (``panic_alert.notifier_root``) wires them.
Unit tests pass fakes from ``tests/fakes``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from notify.plan import Recipient
from notify.webpush_plan import AlertFlags, Audience


class Incoming(Protocol):
    """One consumed event (a CloudEvent), as the workers read it."""

    @property
    def id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def data(self) -> Mapping[str, Any]: ...
    @property
    def time(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to publish (the adapter wraps it in a CloudEvent with our source)."""

    topic: str
    id: str
    type: str
    subject: str | None
    data: Mapping[str, Any]


class Consumer(Protocol):
    """A Kafka consumer group's member: read a batch, commit after handling it."""

    async def get_many(self, timeout_ms: int = 1000) -> Sequence[Incoming]: ...

    async def commit(self) -> None: ...

    async def ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the member holds its partitions."""
        ...


class Publisher(Protocol):
    async def publish(self, events: Sequence[Outgoing]) -> None:
        """Publish every event; returns once the broker acknowledged them all."""
        ...


class Recipients(Protocol):
    async def of(self, user_id: UUID) -> tuple[str, list[Recipient]]:
        """The user's name ("" for an account gone or disabled) and emergency contacts."""
        ...


@dataclass(frozen=True, slots=True)
class Recorded:
    """A request's stored end: ``status`` is a ``notify.deliver.Status`` value."""

    status: str
    attempts: int
    error: str | None


class DeliveryRecord(Protocol):
    """One row per request in ``notification_deliveries``: a request ends once."""

    async def recorded(self, request_id: UUID) -> Recorded | None: ...

    async def record(
        self,
        *,
        request_id: UUID,
        alert_id: UUID,
        channel: str,
        occasion: str,
        contact_id: UUID | None,
        status: str,
        attempts: int,
        error: str | None,
    ) -> None:
        """Store the request's end; a request already recorded keeps its first."""
        ...

    async def delivered_to(
        self, contact_id: UUID, *, within_s: int, excluding: Collection[UUID] = ()
    ) -> int:
        """How many requests to ``contact_id`` were delivered in the last ``within_s``
        seconds, not counting the requests ``excluding`` (those the caller counts itself)."""
        ...


# --- issue 19, push registration: web push to the apps (``notify.webpush``) ---


class AlertFlagsReader(Protocol):
    async def flags(self, alert_id: UUID) -> AlertFlags | None:
        """The alert's type and its silent and duress flags now (None: no such alert)."""
        ...


class Presence(Protocol):
    async def online(self, audience: Audience, account_id: UUID) -> bool:
        """Whether any gateway holds a live socket of the account (its app is open)."""
        ...


@dataclass(frozen=True, slots=True)
class WebDevice:
    """One web push registration: its id and the PushSubscription JSON."""

    id: UUID
    subscription: str


class WebDevices(Protocol):
    async def web_devices(self, account_id: UUID) -> Sequence[WebDevice]:
        """The account's ``web`` devices, most recently seen first."""
        ...

    async def forget(self, device_id: UUID) -> None:
        """Delete a device the push service says is gone (idempotent)."""
        ...
