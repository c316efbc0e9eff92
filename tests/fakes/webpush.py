"""In-memory stand-ins for the web push worker's ports (``notify.ports``:
``AlertFlagsReader``, ``Presence``, ``WebDevices``) and its sender
(``notify.webpush.Sender``), and a browser's end of a subscription, all named Fake*."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notify.ports import WebDevice
from notify.webpush_plan import AlertFlags, Audience, Urgency


@dataclass
class FakeFlags:
    alerts: dict[UUID, AlertFlags] = field(default_factory=dict)

    async def flags(self, alert_id: UUID) -> AlertFlags | None:
        return self.alerts.get(alert_id)


@dataclass
class FakePresence:
    """Accounts with a live socket."""

    online_ids: set[UUID] = field(default_factory=set)
    asked: list[tuple[Audience, UUID]] = field(default_factory=list)

    async def online(self, audience: Audience, account_id: UUID) -> bool:
        self.asked.append((audience, account_id))
        return account_id in self.online_ids


@dataclass
class FakeDevices:
    devices: dict[UUID, list[WebDevice]] = field(default_factory=dict)
    forgotten: list[UUID] = field(default_factory=list)

    async def web_devices(self, account_id: UUID) -> Sequence[WebDevice]:
        return list(self.devices.get(account_id, ()))

    async def forget(self, device_id: UUID) -> None:
        self.forgotten.append(device_id)
        for owned in self.devices.values():
            owned[:] = [d for d in owned if d.id != device_id]


@dataclass
class FakeSender:
    """Keeps every push; ``failures`` maps an endpoint to what its next sends
    raise, in order (then they succeed)."""

    sent: list[tuple[str, dict[str, Any], Urgency]] = field(default_factory=list)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    tries: int = 0

    async def send(self, subscription: Mapping[str, Any], payload: bytes, urgency: Urgency) -> None:
        self.tries += 1
        endpoint = str(subscription["endpoint"])
        queued = self.failures.get(endpoint)
        if queued:
            raise queued.pop(0)
        self.sent.append((endpoint, json.loads(payload), urgency))


class FakeBrowser:
    """A browser's side of a push subscription: its P-256 key pair and auth
    secret, the subscription JSON it would hand the app, and the decryption
    a real browser does on a push (RFC 8291 ``aes128gcm``, ``http_ece``)."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._auth = os.urandom(16)

    def subscription(self, endpoint: str) -> dict[str, Any]:
        point = self._key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": endpoint, "keys": {"p256dh": _b64(point), "auth": _b64(self._auth)}}

    def token(self, endpoint: str) -> str:
        return json.dumps(self.subscription(endpoint))

    def decrypt(self, body: bytes) -> dict[str, Any]:
        plain = http_ece.decrypt(
            body, private_key=self._key, auth_secret=self._auth, version="aes128gcm"
        )
        found: dict[str, Any] = json.loads(plain)
        return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
