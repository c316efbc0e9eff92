"""The pure parts of gateway.auth.totp: codes and their window, the secret's
encryption, recovery codes, and who may only enrol."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pyotp
import pytest
from pydantic import SecretStr

from actors.roles import Role
from config.settings import Profile, Settings, TotpSettings
from gateway.auth import totp
from gateway.auth.tokens import decode_access_token, issue_access_token

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
AT = datetime(2026, 12, 4, 12, 0, 10, tzinfo=UTC)
KEY = "a test key that is long enough"


def test_the_code_of_now_matches_the_step_of_now_and_what_pyotp_shows() -> None:
    code = pyotp.TOTP(SECRET).at(AT)
    assert totp.matching_step(SECRET, code, AT, 1) == totp.step_of(AT)


@pytest.mark.parametrize(
    ("offset", "window", "matches"), [(1, 1, True), (-1, 1, True), (2, 1, False), (1, 0, False)]
)
def test_codes_match_only_within_the_window(offset: int, window: int, matches: bool) -> None:
    step = totp.step_of(AT) + offset
    found = totp.matching_step(SECRET, totp.code_at(SECRET, step), AT, window)
    assert found == (step if matches else None)


def test_a_code_of_another_secret_does_not_match() -> None:
    other = pyotp.random_base32()
    assert totp.matching_step(SECRET, pyotp.TOTP(other).at(AT), AT, 1) in (None, totp.step_of(AT))
    assert totp.matching_step(SECRET, "12345", AT, 1) is None


def test_the_secret_round_trips_encrypted_and_only_for_its_account_and_key() -> None:
    account = uuid4()
    sealed = totp.encrypt_secret(KEY, account, SECRET)
    assert SECRET.encode() not in sealed
    assert totp.encrypt_secret(KEY, account, SECRET) != sealed  # a fresh nonce each time
    assert totp.decrypt_secret(KEY, account, sealed) == SECRET
    with pytest.raises(totp.SecretUnreadable):
        totp.decrypt_secret(KEY, uuid4(), sealed)
    with pytest.raises(totp.SecretUnreadable):
        totp.decrypt_secret("another key entirely", account, sealed)
    with pytest.raises(totp.SecretUnreadable):
        totp.decrypt_secret(KEY, account, sealed[:-1] + bytes([sealed[-1] ^ 1]))
    assert totp.verified_step("another key entirely", account, sealed, "000000", AT, 1) is None


def test_recovery_codes_are_distinct_and_typed_back_in_any_form() -> None:
    codes = totp.new_recovery_codes(10)
    assert len(set(codes)) == 10
    assert all(len(code) == 19 and code.count("-") == 3 for code in codes)
    code = codes[0]
    assert totp.hash_recovery_code(code.lower().replace("-", " ")) == totp.hash_recovery_code(code)
    assert totp.hash_recovery_code(codes[1]) != totp.hash_recovery_code(code)


@pytest.mark.parametrize(
    ("role", "required", "enrolled", "limited"),
    [
        (Role.ADMIN, True, False, True),
        (Role.ADMIN, True, True, False),
        (Role.ADMIN, False, False, False),
        (Role.USER, True, False, False),
        (Role.AGENT, True, False, False),
    ],
)
def test_only_an_unenrolled_admin_who_must_enrol_is_limited(
    role: Role, required: bool, enrolled: bool, limited: bool
) -> None:
    assert totp.enrolment_only(role, required, enrolled) is limited


def _prod(**totp_settings: object) -> Settings:
    secret = SecretStr("Zq8s7d6f5g4h3j2k0123456789abcdefGHIJKLMN")  # strong enough for prod
    return Settings(
        profile=Profile.PROD,
        webhook_secret=secret,
        auth={"jwt_secret": secret},
        postgres={"password": secret},
        mongo={"password": secret},
        totp={"encryption_key": secret, **totp_settings},
        media={"master_keys": {"k1": secret}, "active_key_id": "k1"},
    )


def test_admins_need_a_second_factor_in_prod_by_default_and_by_setting_elsewhere() -> None:
    assert _prod().totp_required_for_admins
    assert not _prod(required_for_admins=False).totp_required_for_admins
    assert not Settings(profile=Profile.DEV).totp_required_for_admins
    dev = Settings(profile=Profile.DEV, totp=TotpSettings(required_for_admins=True))
    assert dev.totp_required_for_admins


def test_prod_refuses_the_development_totp_key() -> None:
    with pytest.raises(ValueError, match=r"totp\.encryption_key"):
        _prod(encryption_key=TotpSettings().encryption_key)


def test_the_enrolment_only_scope_survives_the_access_token() -> None:
    settings = Settings(profile=Profile.TEST).auth
    token, issued = issue_access_token(
        settings, account_id=uuid4(), role=Role.ADMIN, session_id="s", enrolment_only=True
    )
    assert issued.enrolment_only
    assert decode_access_token(
        settings, token, now=datetime.now(UTC) + timedelta(seconds=1)
    ).enrolment_only
    plain, _ = issue_access_token(settings, account_id=uuid4(), role=Role.ADMIN, session_id="s")
    assert not decode_access_token(settings, plain).enrolment_only
