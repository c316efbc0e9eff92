"""The local SMTP and HTTP receivers (tests/integration/receivers.py) as fixtures here."""

from tests.integration.receivers import receiver, smtp

__all__ = ["receiver", "smtp"]
