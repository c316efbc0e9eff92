"""Delivery providers: email over SMTP, webhooks, and SMS and push over HTTP APIs.

Every provider's ``send`` either returns (the provider accepted the message)
or raises :class:`DeliveryFailed`, saying whether trying again could help
(a timeout, a 5xx, 408 or 429) or not (any other 4xx, a refused address).
Each message carries the request id (SMTP ``Message-ID``, HTTP header
``X-Panic-Delivery``) so a receiver can drop a duplicate: delivery is
at-least-once when a worker dies between a provider's acceptance and the
record of it.

Webhooks are signed: ``X-Panic-Signature: sha256=<hex HMAC-SHA256 of
"<X-Panic-Timestamp>.<body>" with the webhook secret>``. Nothing here logs
a recipient or a message text (personal data).

A message that cannot be built (an email header with a line break or another
control character, which would inject headers) is a failure of that one
request, not retriable: the provider never raises anything but
:class:`DeliveryFailed` for it, and never rewrites a header it was given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from config.text import first_control
from notify.plan import Channel, NotificationRequest


class DeliveryFailed(Exception):
    """The provider did not take the message; ``retriable`` when a retry may work."""

    def __init__(self, reason: str, *, retriable: bool = True) -> None:
        super().__init__(reason)
        self.retriable = retriable


class Provider(Protocol):
    async def send(self, request: NotificationRequest) -> None: ...


def _http_outcome(response: httpx.Response) -> None:
    if response.is_success:
        return
    retriable = response.status_code >= 500 or response.status_code in (408, 429)
    raise DeliveryFailed(f"HTTP {response.status_code}", retriable=retriable)


async def _post(client: httpx.AsyncClient, url: str, **kwargs: Any) -> None:
    try:
        response = await client.post(url, **kwargs)
    except httpx.HTTPError as exc:  # connect errors, timeouts: the receiver may recover
        raise DeliveryFailed(type(exc).__name__) from exc
    _http_outcome(response)


class SmtpEmail:
    """Email through an SMTP server; login when configured.

    ``start_tls``: None (the default) upgrades to TLS whenever the server
    offers STARTTLS, so a server that can encrypt never gets the message in
    clear; True requires it (a server without it fails the delivery); False
    never upgrades (a relay on loopback, say).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        start_tls: bool | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._start_tls = start_tls
        self._timeout_s = timeout_s

    async def send(self, request: NotificationRequest) -> None:
        message = email_message(self._sender, request)
        try:
            await aiosmtplib.send(
                message,
                # The envelope names the one recipient: nothing in a header adds another.
                sender=self._sender,
                recipients=[message["To"].addresses[0].addr_spec],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._start_tls,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            raise DeliveryFailed("recipient refused", retriable=False) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(type(exc).__name__) from exc


def email_message(sender: str, request: NotificationRequest) -> EmailMessage:
    """The email of ``request``; :class:`DeliveryFailed` (not retriable) when it
    cannot be built safely: a header value with a control character (CR, LF, ...),
    a recipient that is not exactly one address, or anything the email package refuses."""
    headers = {
        "From": sender,
        "To": request.to,
        "Subject": request.subject,
        "Message-ID": f"<{request.id}@panic-alert>",
        "X-Panic-Delivery": str(request.id),
    }
    for name, value in headers.items():
        if first_control(value) is not None:
            raise DeliveryFailed(f"unsafe {name} header (control character)", retriable=False)
    message = EmailMessage()
    try:
        for name, value in headers.items():
            message[name] = value
        recipients = message["To"].addresses
        if len(recipients) != 1 or not isinstance(recipients[0], Address):
            raise DeliveryFailed("not exactly one recipient", retriable=False)
        message.set_content(request.body)
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise DeliveryFailed(f"message not built ({type(exc).__name__})", retriable=False) from exc
    return message


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Panic-Signature`` value of a webhook body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


class SignedWebhook:
    """POSTs the request as JSON to its URL (``request.to``), HMAC-signed."""

    def __init__(self, client: httpx.AsyncClient, secret: str) -> None:
        self._client = client
        self._secret = secret

    async def send(self, request: NotificationRequest) -> None:
        body = json.dumps(
            {
                "id": str(request.id),
                "occasion": request.occasion.value,
                "alert_id": str(request.alert_id),
                "subject": request.subject,
                "text": request.body,
                "data": dict(request.data),
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-Panic-Delivery": str(request.id),
            "X-Panic-Timestamp": timestamp,
            "X-Panic-Signature": sign(self._secret, timestamp, body),
        }
        await _post(self._client, request.to, content=body, headers=headers)


class HttpSms:
    """SMS through a Twilio-style HTTP API: a form POST with basic auth."""

    def __init__(
        self, client: httpx.AsyncClient, *, url: str, account: str, token: str, sender: str
    ) -> None:
        self._client = client
        self._url = url
        self._auth = (account, token)
        self._sender = sender

    async def send(self, request: NotificationRequest) -> None:
        form = {"From": self._sender, "To": request.to, "Body": request.body}
        headers = {"X-Panic-Delivery": str(request.id)}
        await _post(self._client, self._url, data=form, auth=self._auth, headers=headers)


class HttpPush:
    """App pushes through an FCM/Expo-style HTTP API: JSON with a bearer key."""

    def __init__(self, client: httpx.AsyncClient, *, url: str, key: str) -> None:
        self._client = client
        self._url = url
        self._key = key

    async def send(self, request: NotificationRequest) -> None:
        payload = {
            "to": request.to,
            "title": request.subject,
            "body": request.body,
            "data": dict(request.data),
        }
        headers = {"Authorization": f"Bearer {self._key}", "X-Panic-Delivery": str(request.id)}
        await _post(self._client, self._url, json=payload, headers=headers)


Providers = Mapping[Channel, Provider]
