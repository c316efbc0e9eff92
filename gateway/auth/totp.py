"""TOTP, the administrators' second factor (issue 16, item 7): RFC 6238 codes
of 6 digits per 30-second step (pyotp), single-use recovery codes, and the
secret's encryption at rest.

Guarantees:

* A code is checked against the steps ``now ± valid_window``; the step it
  matched is what the store accepts, once and only for a later step than the
  last one accepted (``gateway.ports.AdminTotp.accept_step``): a code, once
  used, is refused for the rest of its window.
* The secret leaves the gateway only encrypted (AES-GCM, the account id as
  associated data, so a ciphertext copied to another account does not
  decrypt), and is never logged. It is shown once, at enrolment.
* Recovery codes are 80 random bits (16 base32 characters, shown in groups
  of four); only their SHA-256 is stored. Dashes, spaces and case do not
  matter when one is typed back.
* Whether a session may do no more than enrol (:func:`enrolment_only`) is a
  pure function of the role, the deployment's rule and the enrolment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from datetime import datetime
from typing import Annotated
from uuid import UUID

import pyotp
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import StringConstraints

from actors.roles import Role

log = logging.getLogger(__name__)

#: Seconds per step (RFC 6238's default, what every authenticator app uses).
STEP_S = 30
DIGITS = 6
_NONCE_BYTES = 12
#: Bytes of randomness in a recovery code (80 bits: 16 base32 characters).
RECOVERY_CODE_BYTES = 10
#: A code as typed back: the 16 characters, maybe lowercase, maybe grouped.
RecoveryCode = Annotated[
    str, StringConstraints(min_length=16, max_length=32, pattern=r"^[A-Za-z2-7 -]{16,32}$")
]
TotpCode = Annotated[str, StringConstraints(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")]


class SecretUnreadable(Exception):
    """A stored secret does not decrypt with this deployment's key."""


def new_secret() -> str:
    """A new base32 secret (160 bits, RFC 4226's recommendation)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account_name: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI an authenticator app reads (as a QR code)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account_name, issuer_name=issuer
    )


def step_of(at: datetime) -> int:
    """The 30-second step ``at`` falls in."""
    return int(at.timestamp()) // STEP_S


def code_at(secret: str, step: int) -> str:
    """The code of ``step`` (what an authenticator shows during it)."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).at(step * STEP_S)


def matching_step(secret: str, code: str, at: datetime, valid_window: int) -> int | None:
    """The step within ``valid_window`` steps of ``at`` whose code is ``code``,
    latest first; None if none is. Every candidate is compared in constant time."""
    now = step_of(at)
    found: int | None = None
    for step in range(now + valid_window, now - valid_window - 1, -1):
        if hmac.compare_digest(code_at(secret, step), code) and found is None:
            found = step
    return found


def verified_step(
    encryption_key: str,
    account_id: UUID,
    ciphertext: bytes,
    code: str,
    at: datetime,
    valid_window: int,
) -> int | None:
    """:func:`matching_step` of the stored secret; None (logged) when the secret
    does not decrypt (a changed key: the recovery codes still work)."""
    try:
        secret = decrypt_secret(encryption_key, account_id, ciphertext)
    except SecretUnreadable:
        log.error("admin %s: the TOTP secret does not decrypt with this key", account_id)
        return None
    return matching_step(secret, code, at, valid_window)


def _key(encryption_key: str) -> bytes:
    return hashlib.sha256(encryption_key.encode("utf-8")).digest()


def encrypt_secret(encryption_key: str, account_id: UUID, secret: str) -> bytes:
    """``nonce || AES-GCM(secret)``, bound to ``account_id``."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(_key(encryption_key)).encrypt(nonce, secret.encode("ascii"), account_id.bytes)
    return nonce + sealed


def decrypt_secret(encryption_key: str, account_id: UUID, ciphertext: bytes) -> str:
    """Inverse of :func:`encrypt_secret`; :class:`SecretUnreadable` on a wrong
    key, a tampered ciphertext or another account's."""
    nonce, sealed = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
    try:
        plain = AESGCM(_key(encryption_key)).decrypt(nonce, sealed, account_id.bytes)
    except (InvalidTag, ValueError) as exc:
        raise SecretUnreadable("the TOTP secret does not decrypt with this key") from exc
    return plain.decode("ascii")


def new_recovery_codes(count: int) -> list[str]:
    """``count`` fresh codes, e.g. ``ABCD-EFGH-IJKL-MNOP``."""
    codes = []
    for _ in range(count):
        raw = base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii")
        codes.append("-".join(raw[i : i + 4] for i in range(0, len(raw), 4)))
    return codes


def hash_recovery_code(code: str) -> bytes:
    """What is stored of a recovery code, and looked up by (case, dashes and
    spaces ignored)."""
    canonical = "".join(ch for ch in code.upper() if ch not in "- ")
    return hashlib.sha256(canonical.encode("ascii", "replace")).digest()


def enrolment_only(role: Role, required: bool, enrolled: bool) -> bool:
    """Whether a session of this account may do no more than enrol a second
    factor: an administrator who must have one and has none."""
    return role is Role.ADMIN and required and not enrolled
