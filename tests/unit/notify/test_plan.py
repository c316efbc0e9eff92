"""Planning who is told what about an alert (notify.plan), and the retry back-off."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from notify.deliver import backoff_s
from notify.plan import (
    TOPIC_OF,
    AlertEvent,
    Channel,
    NotificationRequest,
    Occasion,
    Recipient,
    occasion_of,
    plan,
)

AT = datetime(2026, 11, 26, 14, 5, tzinfo=UTC)
ALERT = UUID(int=0xA1)
USER = UUID(int=0x01)
MUM = Recipient(UUID(int=0xC1), "Mum", "+4915112345678", "mum@example.org", ("sms", "email"))
FRIEND = Recipient(UUID(int=0xC2), "Kim", None, "kim@example.org", ("email", "push"))


def raised(event_id: str = "e1") -> AlertEvent:
    return AlertEvent(event_id, Occasion.RAISED, ALERT, USER, "medical", 52.52, 13.405, AT)


def test_each_contact_is_told_on_each_of_its_channels_and_each_webhook() -> None:
    requests = plan(raised(), "Alex", [MUM, FRIEND], webhooks=["https://hooks.example/a"])
    assert [(r.channel, r.to) for r in requests] == [
        (Channel.SMS, "+4915112345678"),
        (Channel.EMAIL, "mum@example.org"),
        (Channel.EMAIL, "kim@example.org"),
        (Channel.PUSH, str(FRIEND.id)),
        (Channel.WEBHOOK, "https://hooks.example/a"),
    ]
    first = requests[0]
    assert first.subject == "Panic Alert: Alex needs help"
    assert "Alex raised an alert (medical) at 14:05 UTC near 52.52000, 13.40500" in first.body
    assert first.data["alert_id"] == str(ALERT)
    assert {TOPIC_OF[r.channel] for r in requests} == {
        "sms-notifications",
        "email-notifications",
        "push-notifications",
    }


def test_request_ids_are_stable_per_event_recipient_and_channel() -> None:
    once = plan(raised(), "Alex", [MUM])
    again = plan(raised(), "Alex", [MUM])
    assert [r.id for r in once] == [r.id for r in again]
    assert len({r.id for r in once}) == 2
    other_event = plan(raised("e2"), "Alex", [MUM])
    assert not {r.id for r in once} & {r.id for r in other_event}
    request = once[0]
    assert NotificationRequest.from_json(request.to_json()) == request


def test_which_events_tell_contacts() -> None:
    assert occasion_of("alert.created", {}) is Occasion.RAISED
    assert occasion_of("alert.status_changed", {"status": "resolved"}) is Occasion.RESOLVED
    assert occasion_of("alert.status_changed", {"status": "cancelled"}) is Occasion.CANCELLED
    # A duress "cancel" escalates: nobody is told of a cancel that did not happen.
    assert occasion_of("alert.status_changed", {"status": "escalated"}) is None
    assert occasion_of("alert.offered", {}) is None
    resolved = AlertEvent("e3", Occasion.RESOLVED, ALERT, USER, None, None, None, AT)
    (request,) = plan(resolved, "Alex", [Recipient(UUID(int=5), "B", None, "b@x.org", ("email",))])
    assert request.subject == "Panic Alert: Alex is safe"


def test_a_channel_without_its_address_is_skipped() -> None:
    no_phone = Recipient(UUID(int=9), "C", None, "c@example.org", ("sms",))
    assert plan(raised(), "Alex", [no_phone]) == []


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 0.8, 1.2), (3, 3.2, 4.8), (10, 48, 72)])
def test_backoff_doubles_up_to_its_ceiling(attempt: int, low: float, high: float) -> None:
    assert low <= backoff_s(attempt, base_s=1.0, ceiling_s=60.0) <= high
