"""Emergency contacts are told, end to end over the real services: an alert's
events go through the outbox relay to Kafka, the notifier plans a request per
contact and channel, delivers them to a local SMTP server and a local webhook
receiver, and each outcome lands in the alert's timeline."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from actors.alert_messages import AcceptOffer, OfferMade, UpdateStatus
from actors.alert_state import ActorRole, AlertState, AlertStatus
from actors.effects import EntityKind
from cluster.client import EntityClient
from cluster.notifier import alert_teller
from config.settings import Settings
from gateway.auth.principal import Role
from notify.worker import entity_report
from panic_alert.notifier_root import run_notifier
from panic_alert.relay_root import run_relay
from persistence.stores.alerts import load_alert
from persistence.stores.contacts import ContactFields, create_contact
from tests.integration.api.accounts import make_account
from tests.integration.api.test_alerts import eventually
from tests.integration.api.test_ws import create_alert
from tests.integration.reachable import agents_reachable
from tests.integration.receivers import Mailbox, Receiver
from tests.local import LOOPBACK
from tests.scratch import drop_mongo_database, scratch_name
from tests.tasks import stop

pytestmark = pytest.mark.integration


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        return condition()

    return probe


@contextlib.asynccontextmanager
async def relay_and_notifier(settings: Settings, entities: EntityClient) -> AsyncIterator[None]:
    """The outbox relay and a notifier (its own consumer groups, from the newest events)."""
    mongo = scratch_name("pa_notify_events")
    on_mongo = settings.model_copy(
        update={"mongo": settings.mongo.model_copy(update={"database": mongo})}
    )
    ready = asyncio.Event()
    tasks = [
        asyncio.create_task(
            run_notifier(
                on_mongo,
                entity_report(alert_teller(entities)),
                offset_reset="latest",
                group_suffix=f"-test-{uuid4().hex[:8]}",
                ready=ready,
            )
        )
    ]
    try:
        await asyncio.wait_for(ready.wait(), 60)
        tasks.append(asyncio.create_task(run_relay(on_mongo)))
        yield
    finally:
        try:
            await stop(*tasks)
        finally:
            await drop_mongo_database(settings, mongo)


async def test_contacts_get_the_email_and_the_webhook_and_the_timeline_shows_it(
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
    smtp: tuple[Mailbox, int],
    receiver: tuple[Receiver, str],
) -> None:
    mailbox, smtp_port = smtp
    webhooks, base = receiver
    webhooks.fail_first = 1  # the webhook refuses once: retried, delivered once
    settings = api_settings.model_copy(
        update={
            "notify": api_settings.notify.model_copy(
                update={
                    "smtp_host": LOOPBACK,
                    "smtp_port": smtp_port,
                    "webhooks": [f"{base}/hooks/dispatch"],
                    "base_delay_s": 0.05,
                }
            )
        }
    )
    user = await make_account(api_pool, api_settings, Role.USER)
    await api_pool.execute("UPDATE users SET full_name = 'Alex Doe' WHERE id = $1", user.id)
    fields = ContactFields("Mum", None, "mum@example.org", "mother", ("email",))
    contact = await create_contact(api_pool, user.id, fields, limit=10)

    # Only this test's events: what earlier tests left in the outbox stays unsent.
    await api_pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
    async with relay_and_notifier(settings, api_entities):
        alert = await create_alert(api_entities, user)

        await eventually(holds(lambda: bool(mailbox.messages)))
        (message,) = mailbox.messages  # the only contact with an address, in this database
        assert message["To"] == "mum@example.org"
        assert message["Subject"] == "Panic Alert: Alex Doe needs help"
        # Refused once (503), then accepted; nothing more for this alert's creation.
        await eventually(
            holds(lambda: [s for s, _ in webhooks.for_alert(str(alert.id))] == [503, 200])
        )
        assert webhooks.for_alert(str(alert.id))[-1][1]["occasion"] == "raised"

        async def notified() -> list[dict[str, Any]] | None:
            state = await load_alert(api_pool, alert.id)
            assert state is not None
            entries = [dict(e.data) for e in state.timeline if e.type == "notified"]
            return entries if len(entries) == 2 else None

        entries = await eventually(notified)
        assert {(e["channel"], e["status"], e["attempts"]) for e in entries} == {
            ("email", "delivered", 1),
            ("webhook", "delivered", 2),
        }
        (mail_entry,) = [e for e in entries if e["channel"] == "email"]
        assert mail_entry["contact_id"] == str(contact.id)
        assert "mum@example.org" not in json.dumps(entries)  # no address in the timeline

        # Resolved: the contact hears that too.
        agent = await make_account(api_pool, api_settings, Role.AGENT)
        async with agents_reachable(api_settings):
            await _resolve(api_entities, alert, agent.id)
        await eventually(holds(lambda: len(mailbox.messages) == 2))
        assert mailbox.messages[1]["Subject"] == "Panic Alert: Alex Doe is safe"
        await eventually(holds(lambda: len(webhooks.for_alert(str(alert.id))) == 4))

        async def recorded() -> list[Any] | None:
            # Each delivery is recorded once its provider answered: wait for the
            # last one's record before the workers stop (stopping them between
            # the two would leave it to a redelivery, at least once).
            found = await api_pool.fetch(
                "SELECT channel, status FROM notification_deliveries WHERE alert_id = $1",
                alert.id,
            )
            return found if len(found) >= 4 else None

        rows = await eventually(recorded)
    assert sorted((r["channel"], r["status"]) for r in rows) == [
        ("email", "delivered"),
        ("email", "delivered"),
        ("webhook", "delivered"),
        ("webhook", "delivered"),
    ]


async def test_finding_a_crlf_full_name_stopped_every_contact_notification(
    api_pool: asyncpg.Pool,
    api_settings: Settings,
    api_entities: EntityClient,
    smtp: tuple[Mailbox, int],
) -> None:
    """The poison-event test of issue 16, end to end through Kafka and the real
    notifier: a name with CR/LF and a contact address with a header in it, both
    written past the API (rows from before the fix, or by hand). The address's
    request is dead-lettered with its reason, the name goes out flattened, and
    the next user's alert still reaches its contact."""
    mailbox, smtp_port = smtp
    settings = api_settings.model_copy(
        update={
            "notify": api_settings.notify.model_copy(
                update={"smtp_host": LOOPBACK, "smtp_port": smtp_port, "webhooks": []}
            )
        }
    )
    victim = await make_account(api_pool, api_settings, Role.USER)
    other = await make_account(api_pool, api_settings, Role.USER)
    await api_pool.execute(
        "UPDATE users SET full_name = $2 WHERE id = $1",
        victim.id,
        "Alex\r\nBcc: everyone@example.org",
    )
    poison = await create_contact(
        api_pool,
        victim.id,
        ContactFields("Mum", None, "mum@example.org\r\nBcc: all@example.org", None, ("email",)),
        limit=10,
    )
    await create_contact(
        api_pool,
        victim.id,
        ContactFields("Dad", None, "dad@example.org", None, ("email",)),
        limit=10,
    )
    other = await make_account(api_pool, api_settings, Role.USER)
    await create_contact(
        api_pool,
        other.id,
        ContactFields("Kim", None, "kim@example.org", None, ("email",)),
        limit=10,
    )

    await api_pool.execute("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL")
    async with relay_and_notifier(settings, api_entities):
        first = await create_alert(api_entities, victim)

        async def dead_lettered() -> Any:
            return await api_pool.fetchrow(
                "SELECT status, attempts, last_error FROM notification_deliveries "
                "WHERE alert_id = $1 AND contact_id = $2",
                first.id,
                poison.id,
            )

        row = await eventually(dead_lettered, timeout_s=30)
        assert (row["status"], row["attempts"], row["last_error"]) == (
            "dead_lettered",
            1,
            "unsafe To header (control character)",
        )
        # The next event, another user's alert, is still delivered.
        await create_alert(api_entities, other)
        await eventually(
            holds(
                lambda: (
                    {m["To"] for m in mailbox.messages} >= {"dad@example.org", "kim@example.org"}
                )
            ),
            timeout_s=30,
        )

        async def poison_in_timeline() -> list[dict[str, Any]] | None:
            state = await load_alert(api_pool, first.id)
            assert state is not None
            entries = [dict(e.data) for e in state.timeline if e.type == "notified"]
            return entries if len(entries) == 2 else None

        entries = await eventually(poison_in_timeline)
    assert {(e["contact_id"], e["status"]) for e in entries} >= {(str(poison.id), "dead_lettered")}
    (to_dad,) = [m for m in mailbox.messages if m["To"] == "dad@example.org"]
    assert to_dad["Subject"] == "Panic Alert: Alex Bcc: everyone@example.org needs help"
    assert to_dad["Bcc"] is None
    assert all("mum@example.org" not in str(m["To"]) for m in mailbox.messages)


async def _resolve(entities: EntityClient, alert: AlertState, agent_id: Any) -> None:
    alert_id = str(alert.id)
    await entities.ask(EntityKind.ALERT, alert_id, OfferMade(agent_id))
    await entities.ask(EntityKind.ALERT, alert_id, AcceptOffer(agent_id))
    for status in (AlertStatus.EN_ROUTE, AlertStatus.ON_SCENE, AlertStatus.RESOLVED):
        await entities.ask(
            EntityKind.ALERT, alert_id, UpdateStatus(status, agent_id, ActorRole.AGENT)
        )
