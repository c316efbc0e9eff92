"""VAPID keys (RFC 8292) for web push: generate, derive the public key, sign.

A key is a P-256 private scalar, kept as its 32 raw bytes in unpadded
base64url (what ``vapid --gen`` and most tools exchange). The public key
the browser needs for ``PushManager.subscribe`` (``applicationServerKey``)
is the uncompressed point, 65 bytes, also unpadded base64url.

Pure but for the randomness of :func:`generate_private_key` and the
signature. The private key is never logged or put in an error message.
"""

from __future__ import annotations

import base64
from typing import Final
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

#: How long a VAPID token stays valid (RFC 8292 caps it at 24 h).
TOKEN_LIFETIME_S: Final = 12 * 3600


class InvalidVapidKey(ValueError):
    """The configured or stored VAPID private key is not a P-256 key."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Unpadded (or padded) base64url; raises ``ValueError`` on anything else."""
    raw = text.strip().encode("ascii")
    return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))


def generate_private_key() -> str:
    """A fresh VAPID private key, raw and base64url."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def _private(private_key: str) -> ec.EllipticCurvePrivateKey:
    try:
        raw = b64url_decode(private_key)
    except ValueError as exc:
        raise InvalidVapidKey("the VAPID private key is not base64url") from exc
    if len(raw) != 32:
        raise InvalidVapidKey("the VAPID private key must be 32 raw bytes")
    try:
        return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except ValueError as exc:
        raise InvalidVapidKey("the VAPID private key is not a P-256 scalar") from exc


def public_key(private_key: str) -> str:
    """The application server key of ``private_key``: 65 bytes, base64url."""
    point = (
        _private(private_key)
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64url(point)


def audience(endpoint: str) -> str:
    """The ``aud`` claim for ``endpoint``: its origin (scheme, host and port)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def authorization(private_key: str, endpoint: str, subject: str, now_s: float) -> str:
    """The ``Authorization: vapid t=…,k=…`` header value for a push to ``endpoint``."""
    signer = Vapid02(private_key=_private(private_key))
    claims = {"aud": audience(endpoint), "sub": subject, "exp": int(now_s) + TOKEN_LIFETIME_S}
    header: str = signer.sign(claims)["Authorization"]
    return header
