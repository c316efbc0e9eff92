"""Access-token decoding rules (gateway.auth.tokens) and refresh-token identities."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from config.settings import AuthSettings
from gateway.auth.principal import Role
from gateway.auth.refresh import family_of_session, new_refresh_token, session_id_of
from gateway.auth.tokens import (
    InvalidToken,
    decode_access_token,
    issue_access_token,
    verify_access_token,
)
from persistence.stores.refresh_tokens import hash_token

SETTINGS = AuthSettings()
SECRET = SETTINGS.jwt_secret.get_secret_value()
ACCOUNT = uuid.uuid4()


def claims(**change: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    base: dict[str, Any] = {
        "sub": str(ACCOUNT),
        "role": "user",
        "sid": uuid.uuid4().hex,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "iss": SETTINGS.issuer,
        "aud": SETTINGS.audience,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
    }
    base.update(change)
    return {key: value for key, value in base.items() if value is not None}


def test_an_issued_token_round_trips() -> None:
    token, principal = issue_access_token(
        SETTINGS, account_id=ACCOUNT, role=Role.AGENT, session_id="s1"
    )
    assert decode_access_token(SETTINGS, token) == principal
    assert principal.role is Role.AGENT
    assert principal.session_id == "s1"


def test_verifying_also_tells_the_tokens_expiry_fresh_or_remembered() -> None:
    exp = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=42)
    token = jwt.encode(claims(exp=exp), SECRET, algorithm="HS256")
    principal, expires = verify_access_token(SETTINGS, token)
    assert expires == exp
    assert verify_access_token(SETTINGS, token) == (principal, exp)


def test_a_hand_made_valid_token_is_accepted() -> None:
    principal = decode_access_token(SETTINGS, jwt.encode(claims(), SECRET, algorithm="HS256"))
    assert principal.id == ACCOUNT


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda: jwt.encode(claims(), None, algorithm="none"), id="alg-none"),
        pytest.param(
            lambda: jwt.encode(claims(), SECRET + "x", algorithm="HS256"), id="other-secret"
        ),
        pytest.param(lambda: jwt.encode(claims(), SECRET, algorithm="HS512"), id="other-algorithm"),
        pytest.param(
            lambda: jwt.encode(
                claims(exp=datetime.now(UTC) - timedelta(minutes=1)), SECRET, algorithm="HS256"
            ),
            id="expired",
        ),
        pytest.param(
            lambda: jwt.encode(
                claims(nbf=datetime.now(UTC) + timedelta(minutes=1)), SECRET, algorithm="HS256"
            ),
            id="not-yet-valid",
        ),
        pytest.param(
            lambda: jwt.encode(claims(iss="evil"), SECRET, algorithm="HS256"), id="issuer"
        ),
        pytest.param(
            lambda: jwt.encode(claims(aud="other"), SECRET, algorithm="HS256"), id="audience"
        ),
        pytest.param(
            lambda: jwt.encode(claims(typ="refresh"), SECRET, algorithm="HS256"), id="typ"
        ),
        pytest.param(lambda: jwt.encode(claims(role="root"), SECRET, algorithm="HS256"), id="role"),
        pytest.param(
            lambda: jwt.encode(claims(sub="not-a-uuid"), SECRET, algorithm="HS256"), id="sub"
        ),
        pytest.param(lambda: jwt.encode(claims(sid=None), SECRET, algorithm="HS256"), id="no-sid"),
        pytest.param(lambda: jwt.encode(claims(exp=None), SECRET, algorithm="HS256"), id="no-exp"),
        pytest.param(lambda: "not.a.jwt", id="garbage"),
        pytest.param(lambda: "", id="empty"),
    ],
)
def test_bad_tokens_are_refused(make_token: Callable[[], str]) -> None:
    # Made at test time, not at collection: "not yet valid" must still be in
    # the future when the test runs, however long the suite took to get here.
    token = make_token()
    with pytest.raises(InvalidToken):
        decode_access_token(SETTINGS, token)


def test_clock_skew_within_the_leeway_is_tolerated() -> None:
    just_expired = claims(exp=datetime.now(UTC) - timedelta(seconds=2))
    decode_access_token(SETTINGS, jwt.encode(just_expired, SECRET, algorithm="HS256"))


def test_a_remembered_token_still_expires_and_its_forgeries_are_still_refused() -> None:
    now = datetime.now(UTC)
    token = jwt.encode(claims(exp=now + timedelta(seconds=30)), SECRET, algorithm="HS256")
    principal = decode_access_token(SETTINGS, token)  # verified, then remembered
    assert decode_access_token(SETTINGS, token, now=now + timedelta(seconds=20)) == principal
    with pytest.raises(InvalidToken, match="not yet valid"):
        decode_access_token(SETTINGS, token, now=now - timedelta(seconds=10))
    with pytest.raises(InvalidToken, match="expired"):
        decode_access_token(SETTINGS, token, now=now + timedelta(seconds=36))
    # Another signature on the same claims is another string: verified, and refused.
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(InvalidToken):
        decode_access_token(SETTINGS, forged)
    # Another deployment's secret does not share what this one remembered.
    other = AuthSettings(jwt_secret="another-secret-of-enough-length-0123456789")
    with pytest.raises(InvalidToken):
        decode_access_token(other, token)


def test_session_ids_are_refresh_families() -> None:
    family = uuid.uuid4()
    assert family_of_session(session_id_of(family)) == family
    assert family_of_session("not-hex") is None


def test_refresh_tokens_are_random_and_stored_as_sha256() -> None:
    first, second = new_refresh_token(), new_refresh_token()
    assert first != second
    assert len(first) >= 43
    assert hash_token(first) == hashlib.sha256(first.encode()).digest()
    assert len(hash_token(first)) == 32
