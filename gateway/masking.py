"""Hints of where a message went, never the address itself (pure).

The console shows an admin which of a contact's addresses a notification
used without disclosing it: a phone as its last four digits, an email as
its first character and its domain. Anything shorter or odd is masked
entirely rather than shown.
"""

from __future__ import annotations

from typing import Final

MASK: Final = "***"
#: A phone number shows its last digits only when it has at least this many.
_MIN_PHONE_DIGITS: Final = 7
_SHOWN_PHONE_DIGITS: Final = 4


def mask_phone(phone: str) -> str:
    """``***1234`` for a phone ending in 1234 (``***`` for fewer than 7 digits)."""
    digits = [c for c in phone if c.isascii() and c.isdigit()]
    if len(digits) < _MIN_PHONE_DIGITS:
        return MASK
    return MASK + "".join(digits[-_SHOWN_PHONE_DIGITS:])


def mask_email(email: str) -> str:
    """``m***@example.org`` for ``mum@example.org`` (``***`` without a local part
    or a domain)."""
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        return MASK
    return f"{local[0]}{MASK}@{domain}"


def destination_hint(channel: str, phone: str | None, email: str | None) -> str | None:
    """The masked address a channel uses (an SMS the phone, an email the email);
    None for a channel without one (an app push, a webhook) or a missing address."""
    if channel == "sms" and phone:
        return mask_phone(phone)
    if channel == "email" and email:
        return mask_email(email)
    return None
