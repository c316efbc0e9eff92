"""Notification delivery against real receivers: a local SMTP server (aiosmtpd),
a local HTTP server standing in for webhook, SMS and push providers, and the
real PostgreSQL that records each outcome."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from config.settings import Settings
from notify.deliver import Deliverer, Status
from notify.plan import AlertEvent, Channel, NotificationRequest, Occasion, Recipient, plan
from notify.providers import HttpPush, HttpSms, SignedWebhook, SmtpEmail, sign
from persistence.drivers.postgres import create_pool
from persistence.notifications import PostgresDeliveries
from tests.integration.receivers import Mailbox, Receiver
from tests.local import LOOPBACK
from tests.scratch import scratch_database

pytestmark = pytest.mark.integration

SECRET = "webhook-test-secret"


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    async with scratch_database(settings, "pa_notify") as database:
        pool = await create_pool(settings.postgres, database=database)
        try:
            yield pool
        finally:
            await pool.close()


def requests_for(contacts: list[Recipient], webhooks: list[str]) -> list[NotificationRequest]:
    at = datetime.now(UTC)
    event = AlertEvent(uuid4().hex, Occasion.RAISED, uuid4(), uuid4(), "panic", 52.5, 13.4, at)
    return plan(event, "Alex", contacts, webhooks)


async def recorded(pool: asyncpg.Pool, request_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT status, attempts, last_error, channel FROM notification_deliveries "
        "WHERE request_id = $1",
        request_id,
    )


async def no_wait(_seconds: float) -> None:
    return None


async def test_a_contact_receives_the_email_on_the_local_smtp_server(
    pool: asyncpg.Pool, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    contact = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    (request,) = requests_for([contact], [])
    email_provider = SmtpEmail(host=LOOPBACK, port=port, sender="alerts@panic.example")
    deliverer = Deliverer(PostgresDeliveries(pool), {Channel.EMAIL: email_provider})

    outcome = await deliverer.deliver(request)

    assert (outcome.status, outcome.attempts) == (Status.DELIVERED, 1)
    (message,) = mailbox.messages
    assert message["To"] == "mum@example.org"
    assert message["Subject"] == "Panic Alert: Alex needs help"
    assert message["Message-ID"] == f"<{request.id}@panic-alert>"
    assert "Alex raised an alert (panic)" in message.get_payload()
    row = await recorded(pool, request.id)
    assert row is not None
    assert (row["status"], row["channel"]) == ("delivered", "email")


async def test_a_webhook_failing_twice_then_succeeding_is_delivered_exactly_once(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str]
) -> None:
    found, base = receiver
    found.fail_first = 2
    (request,) = requests_for([], [f"{base}/hooks/dispatch"])
    async with httpx.AsyncClient(timeout=5) as client:
        deliverer = Deliverer(
            PostgresDeliveries(pool),
            {Channel.WEBHOOK: SignedWebhook(client, SECRET)},
            sleep=no_wait,
        )
        outcome = await deliverer.deliver(request)
        again = await deliverer.deliver(request)  # consumed twice: sent once

    assert (outcome.status, outcome.attempts) == (Status.DELIVERED, 3)
    assert (again.status, again.attempts, again.repeated) == (Status.DELIVERED, 3, True)
    assert len(found.hits) == 3  # two refused, one accepted, none after
    path, headers, body = found.hits[-1]
    assert path == "/hooks/dispatch"
    assert headers["x-panic-delivery"] == str(request.id)
    assert headers["x-panic-signature"] == sign(SECRET, headers["x-panic-timestamp"], body)
    assert json.loads(body)["alert_id"] == str(request.alert_id)
    row = await recorded(pool, request.id)
    assert row is not None
    assert (row["status"], row["attempts"]) == ("delivered", 3)


async def test_a_provider_that_keeps_failing_is_dead_lettered_after_n_tries(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str]
) -> None:
    found, base = receiver
    found.fail_first = 100
    (request,) = requests_for([], [f"{base}/down"])
    async with httpx.AsyncClient(timeout=5) as client:
        deliverer = Deliverer(
            PostgresDeliveries(pool),
            {Channel.WEBHOOK: SignedWebhook(client, SECRET)},
            max_attempts=4,
            sleep=no_wait,
        )
        outcome = await deliverer.deliver(request)
    assert (outcome.status, outcome.attempts, outcome.error) == (
        Status.DEAD_LETTERED,
        4,
        "HTTP 503",
    )
    assert len(found.hits) == 4
    row = await recorded(pool, request.id)
    assert row is not None
    assert (row["status"], row["last_error"]) == ("dead_lettered", "HTTP 503")


async def test_a_permanent_refusal_is_not_retried(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str]
) -> None:
    found, base = receiver
    found.fail_first, found.fail_status = 100, 400
    (request,) = requests_for([], [f"{base}/bad"])
    async with httpx.AsyncClient(timeout=5) as client:
        deliverer = Deliverer(
            PostgresDeliveries(pool),
            {Channel.WEBHOOK: SignedWebhook(client, SECRET)},
            sleep=no_wait,
        )
        outcome = await deliverer.deliver(request)
    assert (outcome.status, outcome.attempts) == (Status.DEAD_LETTERED, 1)
    assert len(found.hits) == 1


async def test_sms_and_push_adapters_speak_their_providers_http_apis(
    pool: asyncpg.Pool, receiver: tuple[Receiver, str]
) -> None:
    found, base = receiver
    contact = Recipient(uuid4(), "Kim", "+4915112345678", None, ("sms", "push"))
    sms_request, push_request = requests_for([contact], [])
    async with httpx.AsyncClient(timeout=5) as client:
        providers = {
            Channel.SMS: HttpSms(
                client, url=f"{base}/sms", account="AC1", token="tok", sender="+4930000000"
            ),
            Channel.PUSH: HttpPush(client, url=f"{base}/push", key="push-key"),
        }
        deliverer = Deliverer(PostgresDeliveries(pool), providers, sleep=no_wait)
        assert (await deliverer.deliver(sms_request)).status is Status.DELIVERED
        assert (await deliverer.deliver(push_request)).status is Status.DELIVERED
    (sms_path, sms_headers, sms_body), (push_path, push_headers, push_body) = found.hits
    assert sms_path == "/sms"
    assert sms_headers["authorization"] == httpx.BasicAuth("AC1", "tok")._auth_header
    form = dict(pair.split("=", 1) for pair in sms_body.decode().split("&"))
    assert form["To"] == "%2B4915112345678"
    assert push_path == "/push"
    assert push_headers["authorization"] == "Bearer push-key"
    assert json.loads(push_body)["to"] == str(contact.id)
