"""Cancel and duress PINs: the rules (pure) and their checking (argon2, a bounded pool).

A user sets both PINs together, with their account password (``PUT
/users/profile``); a PIN that is easy to guess (:func:`is_trivial_pin`) is
refused. Cancelling their own open alert then needs one of them:

* the cancel PIN cancels;
* the duress PIN "cancels" (the user is shown a cancelled alert, responders
  are escalated; ``actors.alert_view``);
* anything else is refused (403), and recorded. Past
  ``settings.pins.max_failures`` refusals per user or per alert within
  ``window_s`` (or once the alert is locked), no PIN cancels: the refusal
  reaches the alert with ``over_limit`` and the alert is quietly escalated as
  possible coercion. The device is answered exactly as for a wrong PIN.

:func:`cancel_verdict` decides from what was read; :class:`PinChecker` does the
argon2 work: both hashes, whichever PIN was given (an empty one if none), so
the answer's cost does not tell which PIN matched, and in a pool of its own
so guesses cannot take the cores the rest of the gateway needs.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
from concurrent.futures import ThreadPoolExecutor

from gateway.auth.passwords import PasswordHasher
from gateway.ports import PinHashesRow


class PinMatch(enum.StrEnum):
    CANCEL = "cancel"
    DURESS = "duress"
    WRONG = "wrong"


class CancelVerdict(enum.StrEnum):
    """What a user's cancel of their own open alert does."""

    #: Cancel it (the cancel PIN, or no PIN is set).
    CANCEL = "cancel"
    #: The duress PIN: shown cancelled, escalated for responders.
    DURESS = "duress"
    #: A wrong PIN within the limit: 403, recorded for responders.
    REFUSED = "refused"
    #: Past the limit (or the alert is locked): 403 as for a wrong PIN; the alert escalated.
    LOCKED = "locked"


def cancel_verdict(
    match: PinMatch | None, *, prior_failures: int, max_failures: int, locked: bool
) -> CancelVerdict:
    """The verdict on one cancel. Pure.

    ``match``: which PIN the one given is (None: the user has no PIN set, so
    there is nothing to guess); ``prior_failures``: refusals already counted
    in the window (the larger of the user's and the alert's); ``locked``: the
    alert was escalated for too many refusals already. The ``max_failures``-th
    wrong PIN is still only refused; any PIN after it is ``LOCKED``.
    """
    if match is None:
        return CancelVerdict.CANCEL
    if locked or prior_failures >= max_failures:
        return CancelVerdict.LOCKED
    if match is PinMatch.WRONG:
        return CancelVerdict.REFUSED
    return CancelVerdict.DURESS if match is PinMatch.DURESS else CancelVerdict.CANCEL


def is_trivial_pin(pin: str) -> bool:
    """True for a PIN of digits that is easy to guess. Pure.

    A repeat (``0000``), a run up or down, wrapping past 9 (``1234``,
    ``7890``, ``4321``), or a shorter block repeated (``1212``, ``123123``).
    """
    digits = [int(c) for c in pin]
    steps = {(b - a) % 10 for a, b in itertools.pairwise(digits)}
    if len(steps) <= 1 and steps <= {0, 1, 9}:
        return True
    return any(
        len(pin) % period == 0 and pin == pin[:period] * (len(pin) // period)
        for period in range(1, len(pin) // 2 + 1)
    )


class PinChecker:
    """argon2 checks of cancel PINs in a pool of ``workers`` threads; thread-safe."""

    def __init__(self, hasher: PasswordHasher, *, workers: int) -> None:
        self._hasher = hasher
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="pin-check")

    async def match(self, hashes: PinHashesRow, pin: str | None) -> PinMatch:
        """Which stored PIN ``pin`` is. Every stored hash is checked, with an
        empty PIN when none was given, so every answer costs the same work."""
        given = pin or ""
        loop = asyncio.get_running_loop()
        found = []
        for stored in (hashes.cancel, hashes.duress):
            if stored is None:
                found.append(False)
                continue
            ok = await loop.run_in_executor(self._pool, self._hasher.verify, stored, given)
            found.append(ok and pin is not None)
        is_cancel, is_duress = found
        if is_duress:
            return PinMatch.DURESS
        return PinMatch.CANCEL if is_cancel else PinMatch.WRONG

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
