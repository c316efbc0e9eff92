"""argon2id hashing with the parameters from settings.auth."""

from __future__ import annotations

import pytest

from config.settings import AuthSettings
from gateway.auth.passwords import PasswordHasher, WeakPasswordError, check_password_policy

# Cheap parameters: the algorithm is the same, the test is fast.
FAST = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


def test_hash_is_argon2id_with_configured_parameters() -> None:
    hashed = PasswordHasher(FAST).hash("correct horse battery")
    assert hashed.startswith("$argon2id$v=19$m=1024,t=1,p=1$")
    assert "correct horse battery" not in hashed


def test_default_settings_parameters_are_used() -> None:
    settings = AuthSettings()
    hashed = PasswordHasher(settings).hash("correct horse battery")
    expected = (
        f"m={settings.argon2_memory_kib},t={settings.argon2_time_cost},"
        f"p={settings.argon2_parallelism}"
    )
    assert f"$argon2id$v=19${expected}$" in hashed


def test_verify_accepts_the_password_and_rejects_others() -> None:
    hasher = PasswordHasher(FAST)
    hashed = hasher.hash("correct horse battery")
    assert hasher.verify(hashed, "correct horse battery")
    assert not hasher.verify(hashed, "correct horse batterY")
    assert not hasher.verify("not-a-hash", "correct horse battery")


def test_same_password_gets_a_new_salt_each_time() -> None:
    hasher = PasswordHasher(FAST)
    assert hasher.hash("same password") != hasher.hash("same password")


def test_needs_rehash_after_a_parameter_change() -> None:
    old = PasswordHasher(FAST).hash("correct horse battery")
    stronger = PasswordHasher(FAST.model_copy(update={"argon2_time_cost": 2}))
    assert stronger.needs_rehash(old)
    assert not PasswordHasher(FAST).needs_rehash(old)
    assert stronger.verify(old, "correct horse battery")


async def test_async_variants_agree() -> None:
    hasher = PasswordHasher(FAST)
    hashed = await hasher.hash_async("correct horse battery")
    assert await hasher.verify_async(hashed, "correct horse battery")


@pytest.mark.parametrize("password", ["", "short", "x" * 1025])
def test_policy_refuses_bad_lengths(password: str) -> None:
    with pytest.raises(WeakPasswordError):
        check_password_policy(password)


def test_policy_minimum_is_adjustable() -> None:
    check_password_policy("eight ch")
    with pytest.raises(WeakPasswordError, match="12"):
        check_password_policy("eight ch", min_length=12)
