"""Integration key texts, digests and the touch rule (gateway.auth.integration_keys)."""

from __future__ import annotations

import base64
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.auth.integration_keys import (
    KEY_PREFIX,
    TOUCH_INTERVAL,
    Integration,
    digest,
    matches,
    needs_touch,
    new_key,
    parse_key,
    revocation_session,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_a_new_key_has_the_documented_format_and_parses_back() -> None:
    made = new_key()
    assert re.fullmatch(r"pak_[0-9a-f]{32}_[A-Za-z0-9_-]{43}", made.text), made.text
    assert made.text == f"{KEY_PREFIX}{made.key_id.hex}_{made.secret}"
    assert len(base64.urlsafe_b64decode(made.secret + "=")) == 32
    assert parse_key(made.text) == (made.key_id, made.secret)


def test_new_keys_differ_in_id_and_secret() -> None:
    keys = [new_key() for _ in range(50)]
    assert len({k.key_id for k in keys}) == 50
    assert len({k.secret for k in keys}) == 50


def test_secrets_may_hold_underscores_and_still_parse() -> None:
    key_id = uuid.uuid4()
    secret = "_" * 43
    assert parse_key(f"pak_{key_id.hex}_{secret}") == (key_id, secret)


def good() -> str:
    return new_key().text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "pak_",
        "pak__",
        "not a key",
        good()[:-1],  # a character short
        good() + "A",  # one too many
        "PAK_" + good()[4:],  # the prefix is case-sensitive
        "pat_" + good()[4:],
        good().replace("_", "-", 2),  # no separator after the id
        "pak_" + uuid.uuid4().hex.upper() + "_" + "A" * 43,  # uppercase hex
        "pak_" + "g" * 32 + "_" + "A" * 43,  # not hex
        "pak_" + uuid.uuid4().hex + "_" + "A" * 42 + "=",  # padding is no base64url character
        "pak_" + uuid.uuid4().hex + "_" + "A" * 42 + "+",  # nor is +
        "pak_" + uuid.uuid4().hex + "_" + "A" * 42 + "\u00e9",
        "pak_" + uuid.uuid4().hex + "_" + "A" * 42 + "\n",
        " " + good()[1:],
        "Bearer " + good(),
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln",  # a JWT
        "pak_" + "0" * 32 + "_" + "A" * 43 + "\x00",
        "\ud800" * 80,  # an unpaired surrogate
    ],
)
def test_malformed_texts_parse_to_none(text: str) -> None:
    assert parse_key(text) is None


@pytest.mark.parametrize("value", [None, 42, b"pak_", ["pak_"], object()])
def test_parse_key_never_raises_on_non_text(value: Any) -> None:
    assert parse_key(value) is None


def test_a_very_long_text_parses_to_none() -> None:
    assert parse_key("pak_" + "a" * 1_000_000) is None


def test_digest_is_sha256_of_the_secret_and_matches_only_it() -> None:
    made = new_key()
    stored = digest(made.secret)
    assert len(stored) == 32
    assert stored == digest(made.secret)  # deterministic: looked up and compared later
    assert matches(stored, made.secret)
    assert not matches(stored, new_key().secret)
    assert not matches(stored, made.secret[:-1] + ("A" if made.secret[-1] != "A" else "B"))
    assert not matches(stored, "")
    assert not matches(b"", made.secret)
    assert made.secret.encode() not in stored


def test_the_digest_never_holds_the_secret() -> None:
    made = new_key()
    assert made.secret not in digest(made.secret).hex()
    assert made.secret.encode() not in digest(made.secret)


def test_the_revocation_session_names_the_key() -> None:
    key_id = uuid.uuid4()
    assert revocation_session(key_id) == f"integration:{key_id}"
    assert revocation_session(key_id) != revocation_session(uuid.uuid4())


def test_an_integration_is_a_frozen_value() -> None:
    key_id = uuid.uuid4()
    integration = Integration(key_id, "Fleet A")
    assert integration == Integration(key_id, "Fleet A")
    with pytest.raises(AttributeError):
        integration.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("last_used_at", "expected"),
    [
        (None, True),
        (NOW, False),
        (NOW - TOUCH_INTERVAL + timedelta(seconds=1), False),
        (NOW - TOUCH_INTERVAL, True),
        (NOW - timedelta(days=3), True),
        (NOW + timedelta(seconds=5), False),  # the database's clock is a little ahead
    ],
)
def test_last_used_at_is_refreshed_at_most_once_per_interval(
    last_used_at: datetime | None, expected: bool
) -> None:
    assert needs_touch(last_used_at, NOW) is expected
