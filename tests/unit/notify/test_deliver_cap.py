"""The daily cap counts each message once while counts and sends overlap (two
regressions found by CI):

* a count taken before a delivery was recorded, answered after that delivery
  had left the sends in flight (the reservation was released outside the cap's
  lock): the delivery was counted nowhere, and one message past the cap went out;
* a count taken after a delivery was recorded, while its release waited for the
  cap's lock: it was counted twice (delivered and in flight), and the cap
  refused a message it allows."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from notify.caps import ContactCap
from notify.deliver import Deliverer, Status
from notify.plan import AlertEvent, Channel, NotificationRequest, Occasion, Recipient, plan
from notify.ports import Recorded


class FakeDeliveries:
    """A fake delivery record (pure state in a dict). Its second count takes its
    snapshot at once but answers only when ``answer`` is set, as a busy
    database may."""

    def __init__(self, *, late_snapshot: bool = False) -> None:
        #: The second count reads the rows when it answers, not when it starts.
        self.late_snapshot = late_snapshot
        self.rows: dict[UUID, tuple[UUID | None, str]] = {}
        self.counts = 0
        self.second_count_started = asyncio.Event()
        self.answer = asyncio.Event()

    async def recorded(self, request_id: UUID) -> Recorded | None:
        row = self.rows.get(request_id)
        return None if row is None else Recorded(row[1], 1, None)

    async def record(
        self, *, request_id: UUID, contact_id: UUID | None, status: str, **_: Any
    ) -> None:
        self.rows.setdefault(request_id, (contact_id, status))

    async def delivered_to(
        self, contact_id: UUID, *, within_s: int, excluding: Collection[UUID] = ()
    ) -> int:
        def count() -> int:
            return sum(
                1
                for request_id, (c, s) in self.rows.items()
                if c == contact_id and s == "delivered" and request_id not in excluding
            )

        snapshot = count()
        self.counts += 1
        if self.counts == 2:
            self.second_count_started.set()
            await self.answer.wait()
            if self.late_snapshot:
                snapshot = count()
        return snapshot


class GatedEmail:
    """A fake provider: each send waits for ``gate``, then succeeds."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate
        self.sent: list[UUID] = []

    async def send(self, request: NotificationRequest) -> None:
        await self.gate.wait()
        self.sent.append(request.id)


def _request(contact: Recipient) -> NotificationRequest:
    at = datetime.now(UTC)
    event = AlertEvent(uuid4().hex, Occasion.RAISED, uuid4(), uuid4(), "panic", 52.5, 13.4, at)
    (request,) = plan(event, "Alex", [contact], [])
    return request


async def _until(condition: Any) -> None:
    """Let the other tasks run until ``condition`` holds (a few loop turns)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


async def test_a_count_answered_after_a_send_finished_still_holds_the_cap() -> None:
    mum = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    record = FakeDeliveries()
    email = GatedEmail(record.second_count_started)
    deliverer = Deliverer(record, {Channel.EMAIL: email}, cap=ContactCap(1))
    first, second = _request(mum), _request(mum)

    sending = asyncio.create_task(deliverer.deliver(first))
    await _until(lambda: record.counts == 1)  # the first is counted and reserved
    counting = asyncio.create_task(deliverer.deliver(second))
    await record.second_count_started.wait()  # the second's snapshot: nothing delivered
    await _until(lambda: first.id in record.rows)  # meanwhile the first is delivered
    record.answer.set()

    one, two = await asyncio.wait_for(asyncio.gather(sending, counting), 5)
    assert one.status is Status.DELIVERED
    assert two.status is Status.DEAD_LETTERED
    assert email.sent == [first.id]


async def test_a_delivery_waiting_to_be_released_is_counted_once() -> None:
    mum = Recipient(uuid4(), "Mum", None, "mum@example.org", ("email",))
    record = FakeDeliveries(late_snapshot=True)
    gate = asyncio.Event()
    email = GatedEmail(gate)
    deliverer = Deliverer(record, {Channel.EMAIL: email}, cap=ContactCap(2))
    first, second = _request(mum), _request(mum)

    sending = asyncio.create_task(deliverer.deliver(first))
    await _until(lambda: record.counts == 1)  # the first is counted and reserved
    counting = asyncio.create_task(deliverer.deliver(second))
    await record.second_count_started.wait()  # the second counts, holding the cap's lock
    gate.set()
    await _until(lambda: first.id in record.rows)  # the first is delivered, not yet released
    record.answer.set()  # the second's count now sees the first recorded

    one, two = await asyncio.wait_for(asyncio.gather(sending, counting), 5)
    assert (one.status, two.status) == (Status.DELIVERED, Status.DELIVERED)
    assert email.sent == [first.id, second.id]
    assert deliverer._in_flight == {}  # every reservation released
