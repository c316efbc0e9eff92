"""The daily cap on messages to one emergency contact: a pure decision.

One user raising alert after alert (a prankster, or an abuser using the
victim's account to harass the contact) must not turn the system into a
pager that never stops, nor run up an SMS bill. At most
:attr:`ContactCap.per_day` messages reach one contact in any 24 hours, on
all of its channels together; past that each request is dead-lettered with
the reason :func:`cap_refusal` gives, and not sent. Webhooks (the operator's
own receivers) are not capped.

Only delivered messages count, plus those being sent right now (so requests
delivered at once cannot overshoot the cap between them).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

#: The cap's window: any 24 hours, not a calendar day (no burst at midnight).
DAY_S = 86_400


@dataclass(frozen=True, slots=True)
class ContactCap:
    """At most ``per_day`` messages to one contact in any :data:`DAY_S` seconds."""

    per_day: int

    def __post_init__(self) -> None:
        if self.per_day < 1:
            raise ValueError("per_day must be >= 1")


def cap_refusal(
    cap: ContactCap, contact_id: UUID | None, delivered: int, in_flight: int
) -> str | None:
    """Why a request to ``contact_id`` is not sent, or None when it may be.

    ``delivered``: messages delivered to the contact within the window;
    ``in_flight``: the contact's requests being sent now. A request without a
    contact (a webhook) is never refused.
    """
    if contact_id is None or delivered + in_flight < cap.per_day:
        return None
    return f"daily cap reached ({cap.per_day} messages to this contact in 24 h)"
