"""SMTP and STARTTLS (issue 16): email goes encrypted whenever the server can.

A minimal SMTP server on loopback offers STARTTLS in its EHLO answer and
records every command it is sent; it then refuses the upgrade (454), so the
test sees whether the client asked for TLS before it would send the message.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest

from config.settings import NotifySettings, Settings
from notify.plan import AlertEvent, Channel, NotificationRequest, Occasion, Recipient, plan
from notify.providers import DeliveryFailed, SmtpEmail
from notify.worker import providers
from tests.local import LOOPBACK

pytestmark = pytest.mark.integration


class OfferingServer:
    """Answers EHLO with ``STARTTLS``; refuses the upgrade; accepts plain mail."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 localhost ESMTP test\r\n")
        in_data = False
        while line := await reader.readline():
            text = line.decode("ascii", "replace").rstrip("\r\n")
            if in_data:
                if text == ".":
                    in_data = False
                    writer.write(b"250 queued\r\n")
                continue
            verb = text.split(" ", 1)[0].upper()
            self.commands.append(verb)
            if verb == "EHLO":
                writer.write(b"250-localhost\r\n250-STARTTLS\r\n250 8BITMIME\r\n")
            elif verb == "STARTTLS":
                writer.write(b"454 4.7.0 TLS not available right now\r\n")
            elif verb == "DATA":
                in_data = True
                writer.write(b"354 go ahead\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                await writer.drain()
                break
            else:
                writer.write(b"250 ok\r\n")
            await writer.drain()
        writer.close()


@pytest.fixture
async def offering() -> AsyncIterator[tuple[OfferingServer, int]]:
    found = OfferingServer()
    server = await asyncio.start_server(found.session, LOOPBACK, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield found, port
    finally:
        server.close()
        await server.wait_closed()


def one_email() -> NotificationRequest:
    at = datetime.now(UTC)
    event = AlertEvent(uuid4().hex, Occasion.RAISED, uuid4(), uuid4(), "panic", 52.5, 13.4, at)
    contact = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    (request,) = plan(event, "Alex", [contact], [])
    return request


async def test_finding_smtp_uses_starttls_when_the_server_offers_it(
    offering: tuple[OfferingServer, int],
) -> None:
    server, port = offering
    # The deployment's defaults: only the host and port are configured.
    settings = Settings().model_copy(
        update={"notify": NotifySettings(smtp_host=LOOPBACK, smtp_port=port)}
    )
    async with httpx.AsyncClient() as client:
        email = providers(settings, client)[Channel.EMAIL]
        with pytest.raises(DeliveryFailed):
            await email.send(one_email())
    # The message was never sent in clear: the client asked for TLS first.
    assert server.commands[:2] == ["EHLO", "STARTTLS"]
    assert "MAIL" not in server.commands


async def test_starttls_can_be_turned_off_by_setting(
    offering: tuple[OfferingServer, int],
) -> None:
    server, port = offering
    email = SmtpEmail(host=LOOPBACK, port=port, sender="alerts@panic.example", start_tls=False)
    await email.send(one_email())
    assert "STARTTLS" not in server.commands
    assert {"MAIL", "RCPT", "DATA"} <= set(server.commands)
