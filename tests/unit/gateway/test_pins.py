"""The PIN rules of ``gateway.auth.pins`` (pure) and the checker's bounded pool."""

from __future__ import annotations

import asyncio

import pytest

from config.settings import AuthSettings
from gateway.auth.passwords import PasswordHasher
from gateway.auth.pins import CancelVerdict, PinChecker, PinMatch, cancel_verdict, is_trivial_pin
from persistence.stores.accounts import PinHashes

V = CancelVerdict


@pytest.mark.parametrize(
    "pin", ["0000", "1111", "1234", "4321", "7890", "0987", "12345678", "1212", "123123", "9090"]
)
def test_finding_trivial_pins_are_refused(pin: str) -> None:
    assert is_trivial_pin(pin)


@pytest.mark.parametrize("pin", ["2468", "1357", "4826", "80215", "19283746", "1123"])
def test_other_pins_are_accepted(pin: str) -> None:
    assert not is_trivial_pin(pin)


def test_finding_pin_brute_force_the_attempt_after_the_limit_is_locked_whatever_the_pin() -> None:
    def verdict(match: PinMatch | None, prior: int, locked: bool = False) -> CancelVerdict:
        return cancel_verdict(match, prior_failures=prior, max_failures=5, locked=locked)

    assert verdict(PinMatch.WRONG, 4) is V.REFUSED  # the 5th wrong PIN
    assert verdict(PinMatch.WRONG, 5) is V.LOCKED  # the 6th
    assert verdict(PinMatch.CANCEL, 5) is V.LOCKED  # even the right one does not cancel
    assert verdict(PinMatch.DURESS, 5) is V.LOCKED
    assert verdict(PinMatch.CANCEL, 0, locked=True) is V.LOCKED
    assert verdict(PinMatch.CANCEL, 4) is V.CANCEL
    assert verdict(PinMatch.DURESS, 4) is V.DURESS
    assert verdict(None, 99) is V.CANCEL  # no PIN set: nothing to guess


async def test_the_checker_tells_which_pin_and_checks_every_hash() -> None:
    hasher = PasswordHasher(AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024))
    calls: list[str] = []
    verify = hasher.verify

    def counting(stored: str, pin: str) -> bool:
        calls.append(pin)
        return verify(stored, pin)

    hasher.verify = counting  # type: ignore[method-assign]
    checker = PinChecker(hasher, workers=1)
    hashes = PinHashes(hasher.hash("2468"), hasher.hash("1357"))
    try:
        found = await asyncio.gather(
            checker.match(hashes, "2468"), checker.match(hashes, "1357"), checker.match(hashes, "9")
        )
        assert found == [PinMatch.CANCEL, PinMatch.DURESS, PinMatch.WRONG]
        assert await checker.match(hashes, None) is PinMatch.WRONG
        assert len(calls) == 8  # two checks each, whichever PIN (or none) was given
    finally:
        checker.close()
