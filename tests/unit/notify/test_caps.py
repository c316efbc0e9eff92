"""The daily cap on messages to one emergency contact (notify.caps), and the
plain-text flattening of names in messages (notify.plan, config.text)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from config.text import first_control, one_line
from notify.caps import ContactCap, cap_refusal
from notify.plan import AlertEvent, Occasion, Recipient, plan

CONTACT = UUID(int=0xC1)


@pytest.mark.parametrize(
    ("delivered", "in_flight", "refused"),
    [(0, 0, False), (19, 0, False), (20, 0, True), (18, 1, False), (18, 2, True), (25, 0, True)],
)
def test_a_contact_is_sent_up_to_the_cap_counting_what_is_being_sent(
    delivered: int, in_flight: int, refused: bool
) -> None:
    reason = cap_refusal(ContactCap(20), CONTACT, delivered, in_flight)
    assert (reason is not None) is refused
    if refused:
        assert reason == "daily cap reached (20 messages to this contact in 24 h)"


def test_webhooks_are_not_capped() -> None:
    assert cap_refusal(ContactCap(1), None, 1000, 1000) is None


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="per_day"):
        ContactCap(0)


@pytest.mark.parametrize(
    "name",
    [
        "Alex\r\nBcc: everyone@example.org",
        "Alex\nBcc: everyone@example.org",
        "Alex\u2028Bcc: everyone@example.org",
        "\u202eAlex\tBcc: everyone@example.org\x00",
    ],
)
def test_finding_full_name_with_crlf_went_into_the_email_subject(name: str) -> None:
    event = AlertEvent(
        "e1", Occasion.RAISED, UUID(int=1), UUID(int=2), None, None, None, datetime.now(UTC)
    )
    mum = Recipient(CONTACT, "Mum", None, "mum@example.org", ("email",))
    (request,) = plan(event, name, [mum])
    assert request.subject == "Panic Alert: Alex Bcc: everyone@example.org needs help"
    assert first_control(request.subject) is None
    assert first_control(request.body) is None


def test_one_line_keeps_plain_text_and_makes_an_empty_name_someone() -> None:
    assert one_line("  Zoë  Ødegård 🚲 ") == "Zoë Ødegård 🚲"
    event = AlertEvent(
        "e1", Occasion.RESOLVED, UUID(int=1), UUID(int=2), None, None, None, datetime.now(UTC)
    )
    mum = Recipient(CONTACT, "Mum", None, "mum@example.org", ("email",))
    (request,) = plan(event, "\r\n\t", [mum])
    assert request.subject == "Panic Alert: Someone is safe"
