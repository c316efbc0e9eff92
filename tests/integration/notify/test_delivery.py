"""Notification delivery against real receivers: a local SMTP server (aiosmtpd),
a local HTTP server standing in for webhook, SMS and push providers, and the
real PostgreSQL that records each outcome."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from config.settings import Settings
from notify.caps import ContactCap
from notify.deliver import Deliverer, DeliveryOutcome, Status
from notify.plan import AlertEvent, Channel, NotificationRequest, Occasion, Recipient, plan
from notify.providers import HttpPush, HttpSms, SignedWebhook, SmtpEmail, sign
from notify.worker import deliver_batch, run_workers
from persistence.drivers.postgres import create_pool
from persistence.notifications import PostgresDeliveries
from tests.fakes.notify import Event, FakeConsumer, FakePublisher, FakeRecipients, requested
from tests.integration.receivers import Mailbox, Receiver
from tests.local import LOOPBACK
from tests.scratch import scratch_database
from tests.tasks import stop

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


# --- issue 16: a notifier no message can stop -------------------------------------

#: A name as the API took it before issue 16: a line break, then a header of its own.
CRLF_NAME = "Alex\r\nBcc: everyone@example.org"


def poisoned(request: NotificationRequest) -> NotificationRequest:
    """``request`` with the Subject an unflattened CR/LF name makes (a request
    planned before the fix, or written onto the topic by hand)."""
    return replace(request, subject=f"Panic Alert: {CRLF_NAME} needs help")


async def test_finding_crlf_in_a_name_raised_in_the_email_builder_and_stopped_the_batch(
    pool: asyncpg.Pool, smtp: tuple[Mailbox, int]
) -> None:
    mailbox, port = smtp
    mum = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    dad = Recipient(uuid4(), "Dad", None, "dad@example.org", ("email",))
    (poison,) = [poisoned(r) for r in requests_for([mum], [])]
    (good,) = requests_for([dad], [])
    email_provider = SmtpEmail(host=LOOPBACK, port=port, sender="alerts@panic.example")
    deliverer = Deliverer(PostgresDeliveries(pool), {Channel.EMAIL: email_provider})
    reported: list[tuple[UUID, Status]] = []

    async def report(request: NotificationRequest, outcome: DeliveryOutcome) -> None:
        reported.append((request.id, outcome.status))

    outcomes = await deliver_batch(
        deliverer, [requested(poison), requested(good)], report, concurrency=1
    )

    assert [(o.status, o.attempts) for o in outcomes] == [
        (Status.DEAD_LETTERED, 1),
        (Status.DELIVERED, 1),
    ]
    assert outcomes[0].error == "unsafe Subject header (control character)"
    assert reported == [(poison.id, Status.DEAD_LETTERED), (good.id, Status.DELIVERED)]
    (message,) = mailbox.messages  # the good one; nothing for the poison, no Bcc anywhere
    assert message["To"] == "dad@example.org"
    assert message["Bcc"] is None
    row = await recorded(pool, poison.id)
    assert row is not None
    assert (row["status"], row["last_error"]) == (
        "dead_lettered",
        "unsafe Subject header (control character)",
    )


async def test_finding_a_poison_event_kept_the_notifier_restarting_on_it_forever(
    pool: asyncpg.Pool, smtp: tuple[Mailbox, int]
) -> None:
    """The worker commits the poison's batch and goes on to the next event."""
    mailbox, port = smtp
    mum = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    dad = Recipient(uuid4(), "Dad", None, "dad@example.org", ("email",))
    (poison,) = [poisoned(r) for r in requests_for([mum], [])]
    (good,) = requests_for([dad], [])
    # Poison in the first batch; an unreadable event too; the next event after them.
    malformed = Event("not-a-request", "notification.requested", {"id": "x", "data": []})
    delivery = FakeConsumer([[requested(poison), malformed], [requested(good)]])
    email_provider = SmtpEmail(host=LOOPBACK, port=port, sender="alerts@panic.example")

    async def report(request: NotificationRequest, outcome: DeliveryOutcome) -> None:
        return None

    workers = asyncio.create_task(
        run_workers(
            planner=FakeConsumer([]),
            delivery=delivery,
            recipients=FakeRecipients(),
            publisher=FakePublisher(),
            deliverer=Deliverer(PostgresDeliveries(pool), {Channel.EMAIL: email_provider}),
            report=report,
            webhooks=[],
            concurrency=4,
        )
    )
    committed = asyncio.create_task(delivery.all_committed.wait())
    try:
        await asyncio.wait({workers, committed}, timeout=30, return_when="FIRST_COMPLETED")
        assert not workers.done(), workers.exception()  # it never stopped
    finally:
        await stop(workers, committed)

    assert delivery.committed == 2
    assert [m["To"] for m in mailbox.messages] == ["dad@example.org"]
    poison_row, good_row = await recorded(pool, poison.id), await recorded(pool, good.id)
    assert poison_row is not None
    assert good_row is not None
    assert (poison_row["status"], good_row["status"]) == ("dead_lettered", "delivered")
    assert poison_row["last_error"] == "unsafe Subject header (control character)"


async def test_a_recipient_address_with_a_line_break_is_dead_lettered_not_sent(
    pool: asyncpg.Pool, smtp: tuple[Mailbox, int]
) -> None:
    """Defence in depth: a contact's email written past the API (by hand, an old row)."""
    mailbox, port = smtp
    sneaky = Recipient(uuid4(), "Mum", None, "mum@example.org\r\nBcc: all@example.org", ("email",))
    (request,) = requests_for([sneaky], [])
    email_provider = SmtpEmail(host=LOOPBACK, port=port, sender="alerts@panic.example")
    deliverer = Deliverer(PostgresDeliveries(pool), {Channel.EMAIL: email_provider})

    outcome = await deliverer.deliver(request)

    assert (outcome.status, outcome.error) == (
        Status.DEAD_LETTERED,
        "unsafe To header (control character)",
    )
    assert mailbox.messages == []


async def test_a_provider_raising_anything_dead_letters_that_request_alone(
    pool: asyncpg.Pool,
) -> None:
    class Broken:
        async def send(self, request: NotificationRequest) -> None:
            raise KeyError("a bug in a provider")

    (request,) = requests_for([], ["https://hooks.example/a"])
    deliverer = Deliverer(PostgresDeliveries(pool), {Channel.WEBHOOK: Broken()}, sleep=no_wait)

    outcome = await deliverer.deliver(request)

    assert (outcome.status, outcome.attempts, outcome.error) == (
        Status.DEAD_LETTERED,
        1,
        "provider error (KeyError)",
    )
    row = await recorded(pool, request.id)
    assert row is not None
    assert row["last_error"] == "provider error (KeyError)"


async def test_a_contact_gets_at_most_the_daily_cap_then_requests_are_dead_lettered(
    pool: asyncpg.Pool, smtp: tuple[Mailbox, int], receiver: tuple[Receiver, str]
) -> None:
    mailbox, port = smtp
    _found, base = receiver
    mum = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    dad = Recipient(uuid4(), "Dad", None, "dad@example.org", ("email",))
    async with httpx.AsyncClient(timeout=5) as client:
        providers = {
            Channel.EMAIL: SmtpEmail(host=LOOPBACK, port=port, sender="alerts@panic.example"),
            Channel.WEBHOOK: SignedWebhook(client, SECRET),
        }
        deliverer = Deliverer(PostgresDeliveries(pool), providers, cap=ContactCap(3))
        # Five alerts at once (raised by a prankster): each tells Mum and the webhook.
        batches = [requests_for([mum], [f"{base}/hooks"]) for _ in range(5)]
        outcomes = await asyncio.gather(*(deliverer.deliver(r) for b in batches for r in b))
        # Another contact of the same user is not affected.
        (for_dad,) = requests_for([dad], [])
        dads = await deliverer.deliver(for_dad)

    to_mum = [o for o in outcomes if o.request_id in {str(b[0].id) for b in batches}]
    assert sorted(o.status for o in to_mum) == [Status.DEAD_LETTERED] * 2 + [Status.DELIVERED] * 3
    assert {o.error for o in to_mum if o.status is Status.DEAD_LETTERED} == {
        "daily cap reached (3 messages to this contact in 24 h)"
    }
    webhooks = [o for o in outcomes if o not in to_mum]
    assert [o.status for o in webhooks] == [Status.DELIVERED] * 5
    assert dads.status is Status.DELIVERED
    assert (
        sorted(m["To"] for m in mailbox.messages) == ["dad@example.org"] + ["mum@example.org"] * 3
    )
    rows = await pool.fetch(
        "SELECT status, last_error FROM notification_deliveries WHERE contact_id = $1", mum.id
    )
    assert sorted(r["status"] for r in rows) == ["dead_lettered"] * 2 + ["delivered"] * 3
