"""The planner's batch (notify.worker.plan_batch) over in-memory ports: an
event it cannot plan is skipped, the others are planned; a port that is down
still stops it (to be restarted and read the batch again)."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from actors.store_errors import ServiceUnavailable
from notify.plan import Recipient
from notify.worker import plan_batch
from tests.fakes.notify import Event, FakePublisher, FakeRecipients

USER = UUID(int=0x01)
MUM = Recipient(UUID(int=0xC1), "Mum", None, "mum@example.org", ("email",))


def created(**data: object) -> Event:
    base = {"id": str(uuid4()), "user_id": str(USER), "alert_type": "panic"}
    return Event(uuid4().hex, "alert.created", {**base, **data})


async def test_an_event_that_cannot_be_planned_is_skipped_and_the_next_is_planned() -> None:
    publisher = FakePublisher()
    recipients = FakeRecipients({USER: ("Alex", [MUM])})
    poison = created(latitude="north", longitude=13.4)  # not a number: no text can say it
    without_ids = Event("e0", "alert.created", {"user_id": ["not", "an", "id"]})
    good = created(latitude=52.5, longitude=13.4)

    count = await plan_batch(recipients, publisher, [poison, without_ids, good], webhooks=[])

    assert count == 1
    (published,) = publisher.published
    assert published.data["alert_id"] == good.data["id"]


async def test_a_port_that_is_down_still_stops_the_batch() -> None:
    class Down:
        async def of(self, user_id: UUID) -> tuple[str, list[Recipient]]:
            raise ServiceUnavailable("postgres")

    with pytest.raises(ServiceUnavailable):
        await plan_batch(
            Down(), FakePublisher(), [created(latitude=1.0, longitude=2.0)], webhooks=[]
        )
